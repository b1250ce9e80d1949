import { createApp } from "./app.ts";
import { consumeDeadLetters } from "./dead-letters/consumer.ts";
import { consumeDeliveries } from "./delivery/consumer.ts";
import type { Env } from "./env.ts";
import { QUEUES } from "./queues.ts";

const app = createApp();

export default {
  fetch: app.fetch,
  /** Each queue by its exact name (src/queues.ts); a queue this Worker does not know is an error, not a guess. */
  async queue(batch, env) {
    switch (batch.queue) {
      case QUEUES.deliveries:
        return consumeDeliveries(batch, env);
      case QUEUES.deadLetters:
        return consumeDeadLetters(batch, env, "deadLetters");
      case QUEUES.deadLettersFailed:
        return consumeDeadLetters(batch, env, "backstop");
      default:
        throw new Error(`extend-relay has no consumer for queue "${batch.queue}" (src/queues.ts lists the queues).`);
    }
  },
} satisfies ExportedHandler<Env>;
