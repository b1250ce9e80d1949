/**
 * The large calls' bare worker for `npm run bench` (section "Large calls"): what any relay that keeps a large
 * body in R2 has to do at least.
 * - POST /webhook streams the request body into R2 with one put() (no copy, no verification, no parsing) and
 *   enqueues one small message pointing at it.
 * - The queue consumer reads the object back and posts it to the receiver `fetches` times (the relay's large
 *   call in the bench goes to three destinations), then acks.
 * Typed structurally so that it also type-checks under the Node tsconfig that covers bench/.
 */

interface QueueMessage {
  body: Pointer;
  ack(): void;
  retry(): void;
}
interface Batch {
  messages: readonly QueueMessage[];
}
interface Producer {
  send(body: Pointer, options?: { contentType?: "json" }): Promise<void>;
}
interface Bucket {
  put(key: string, value: ReadableStream | null): Promise<unknown>;
  get(key: string): Promise<{ arrayBuffer(): Promise<ArrayBuffer> } | null>;
}
interface Env {
  BODIES: Bucket;
  QUEUE: Producer;
  RECEIVER_URL: string;
}
interface Pointer {
  key: string;
  fetches: number;
}

/** The relay's large bench call goes to three destinations; the consumer mirrors that. */
const FANOUT = 3;

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return Response.json({ status: "ok" });
    if (request.method === "POST" && url.pathname === "/webhook") {
      const key = `bodies/${crypto.randomUUID()}`;
      await env.BODIES.put(key, request.body);
      await env.QUEUE.send({ key, fetches: FANOUT }, { contentType: "json" });
      return Response.json({ status: "accepted" }, { status: 202 });
    }
    return new Response("not found", { status: 404 });
  },

  async queue(batch: Batch, env: Env): Promise<void> {
    for (const message of batch.messages) {
      try {
        const object = await env.BODIES.get(message.body.key);
        if (object === null) throw new Error(`${message.body.key} is gone`);
        const body = await object.arrayBuffer();
        await Promise.all(
          Array.from({ length: message.body.fetches }, async () => {
            const response = await fetch(env.RECEIVER_URL, {
              method: "POST",
              headers: { "Content-Type": "application/json" },
              body,
            });
            await response.body?.cancel();
            if (!response.ok) throw new Error(`receiver answered ${response.status}`);
          }),
        );
        message.ack();
      } catch {
        message.retry();
      }
    }
  },
};
