/**
 * Baseline Worker for `npm run bench`: what any relay on Workers has to do at least.
 * - POST /webhook reads the body and sends one queue message (no verification, parsing, dedupe or routing).
 * - POST /enqueue?count=K sends K messages in one sendBatch (bench-only: fills the queue for the delivery run).
 * - The queue consumer only fetches the receiver, `fetches` times per message, and acks.
 * Typed structurally so that it also type-checks under the Node tsconfig that covers bench/.
 */

interface QueueMessage {
  body: BaselineMessage;
  ack(): void;
  retry(): void;
}
interface Batch {
  messages: readonly QueueMessage[];
}
interface Producer {
  send(body: BaselineMessage, options?: { contentType?: "json" }): Promise<void>;
  sendBatch(messages: Iterable<{ body: BaselineMessage; contentType?: "json" }>): Promise<void>;
}
interface BaselineEnv {
  QUEUE: Producer;
  RECEIVER_URL: string;
}
interface BaselineMessage {
  /** The raw body as text, as a store-and-forward relay would keep it. */
  body: string;
  /** How many downstream requests the consumer makes for it (the relay's fan-out in the ingress run). */
  fetches: number;
}

/** The relay's ingress fans a benchmark call out to three destinations; the baseline consumer mirrors that. */
const INGRESS_FANOUT = 3;

export default {
  async fetch(request: Request, env: BaselineEnv): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return Response.json({ status: "ok" });
    if (request.method === "POST" && url.pathname === "/webhook") {
      const body = await request.text();
      await env.QUEUE.send({ body, fetches: INGRESS_FANOUT }, { contentType: "json" });
      return Response.json({ status: "accepted" }, { status: 202 });
    }
    if (request.method === "POST" && url.pathname === "/enqueue") {
      const body = await request.text();
      const count = Math.min(100, Math.max(1, Number(url.searchParams.get("count") ?? "1") || 1));
      await env.QUEUE.sendBatch(
        Array.from({ length: count }, () => ({ body: { body, fetches: 1 }, contentType: "json" as const })),
      );
      return Response.json({ status: "accepted", messages: count }, { status: 202 });
    }
    return new Response("not found", { status: 404 });
  },

  async queue(batch: Batch, env: BaselineEnv): Promise<void> {
    await Promise.all(
      batch.messages.map(async (message) => {
        try {
          // Concurrently, as the relay's consumer delivers the messages of a batch.
          await Promise.all(
            Array.from({ length: message.body.fetches }, async () => {
              const response = await fetch(env.RECEIVER_URL, {
                method: "POST",
                headers: { "Content-Type": "application/json" },
                body: message.body.body,
              });
              await response.body?.cancel();
              if (!response.ok) throw new Error(`receiver answered ${response.status}`);
            }),
          );
          message.ack();
        } catch {
          message.retry();
        }
      }),
    );
  },
};
