import { createApp } from "./app.ts";
import { consumeDeadLetters } from "./dead-letters/consumer.ts";
import { consumeDeliveries } from "./delivery/consumer.ts";
import type { Env } from "./settings.ts";

const app = createApp();

export default {
  fetch: app.fetch,
  /** DELIVERIES → downstream; the dead-letter queue (any queue named *dead-letters) → STATE records. */
  async queue(batch, env) {
    if (batch.queue.endsWith("dead-letters")) await consumeDeadLetters(batch, env);
    else await consumeDeliveries(batch, env);
  },
} satisfies ExportedHandler<Env>;
