/**
 * Real HTTP receivers on loopback for the end-to-end tests: each records every request it gets (raw body
 * bytes, headers, what it answered) and answers as its behaviour says: at once, after a delay (slower
 * than a destination's timeout), with a failure, a 410, a 429 with Retry-After or a redirect.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { Socket } from "node:net";

export interface Received {
  /** Order of arrival at this receiver, from 0. */
  seq: number;
  /** When it arrived (ms since epoch). */
  at: number;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  deliveryId: string | undefined;
  attempt: number | undefined;
  /** How many requests with this delivery id this receiver had seen, this one included. */
  seen: number;
  /** The status answered, or "aborted" when the relay hung up first (it timed out). */
  answered?: number | "aborted";
  /** When it was answered (ms since epoch). */
  answeredAt?: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering (longer than the destination's timeoutMs means a timeout). */
  delayMs?: number;
}

export type Behaviour = (request: Received) => Reply;

export const ok: Behaviour = () => ({ status: 200, body: "ok" });

/** Fails the first `failures` requests of every delivery id with `status`, then answers 200. */
export const failFirst =
  (failures: number, status = 503, headers?: Record<string, string>): Behaviour =>
  (request) =>
    request.seen <= failures ? { status, ...(headers && { headers }) } : { status: 200 };

export interface Receiver {
  name: string;
  url: string;
  port: number;
  requests: Received[];
  /** Replace the behaviour, e.g. to "fix" a receiver before a replay. */
  behave(behaviour: Behaviour): void;
  /** Requests answered 2xx (the relay counts those as delivered). */
  delivered(): Received[];
  /** The most requests that were ever in flight here at once (arrived, not yet answered). */
  maxInFlight(): number;
  stop(): Promise<void>;
}

export async function startReceiver(name: string, behaviour: Behaviour = ok): Promise<Receiver> {
  const requests: Received[] = [];
  const seenCount = new Map<string, number>();
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let current = behaviour;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const deliveryHeader = req.headers["x-relay-delivery-id"];
      const deliveryId = typeof deliveryHeader === "string" ? deliveryHeader : undefined;
      const attemptHeader = req.headers["x-relay-attempt"];
      const seen = (seenCount.get(deliveryId ?? "") ?? 0) + 1;
      seenCount.set(deliveryId ?? "", seen);
      const received: Received = {
        seq: requests.length,
        at: Date.now(),
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks),
        deliveryId,
        attempt: typeof attemptHeader === "string" ? Number(attemptHeader) : undefined,
        seen,
      };
      requests.push(received);
      let reply: Reply;
      try {
        reply = current(received);
      } catch {
        reply = { status: 500 };
      }
      const answer = () => {
        if (res.destroyed || req.socket.destroyed) {
          received.answered = "aborted";
          return;
        }
        received.answered = reply.status;
        received.answeredAt = Date.now();
        res.writeHead(reply.status, { "content-type": "text/plain", ...reply.headers });
        res.end(reply.body ?? "");
      };
      if (reply.delayMs !== undefined && reply.delayMs > 0) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer();
        }, reply.delayMs);
        timers.add(timer);
      } else answer();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (typeof address !== "object" || address === null) throw new Error("receiver has no address");
  const port = address.port;

  return {
    name,
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    behave(next) {
      current = next;
    },
    delivered: () => requests.filter((r) => typeof r.answered === "number" && r.answered >= 200 && r.answered < 300),
    maxInFlight() {
      const events = requests.flatMap((r) => [
        { at: r.at, d: 1 },
        { at: r.answeredAt ?? Number.POSITIVE_INFINITY, d: -1 },
      ]);
      // An answer at the same millisecond as an arrival counts first.
      events.sort((a, b) => a.at - b.at || a.d - b.d);
      let now = 0;
      let max = 0;
      for (const e of events) max = Math.max(max, (now += e.d));
      return max;
    },
    async stop() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
