/**
 * The loopback receiver the consumers deliver to: answers every POST at once with 200 and counts
 * arrivals per first path segment (the target's name: /relay/…, /main/…, /baseline, …). While held, it answers
 * nothing until released (the delivery run uses that to let a backlog build up), and counts each arrival when it
 * answers it.
 * It runs on its own thread so that counting does not share an event loop with the load generator.
 */
import { createServer } from "node:http";
import { isMainThread, parentPort, Worker } from "node:worker_threads";

export interface ArrivalStats {
  /** Arrivals per source (a target's name; "unknown" for any other path). */
  count: Record<string, number>;
  /** `Date.now()` of the first and last arrival per source. */
  first: Record<string, number>;
  last: Record<string, number>;
}

export interface Receiver {
  url: string;
  stats(): Promise<ArrivalStats>;
  reset(): Promise<void>;
  /** Stop answering: requests wait until `release`. */
  hold(): Promise<void>;
  /** Answer every waiting request now and every later one at once. */
  release(): Promise<void>;
  stop(): Promise<void>;
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  let stats: ArrivalStats = { count: {}, first: {}, last: {} };
  let held: (() => void)[] | undefined;
  const server = createServer({ keepAliveTimeout: 60_000 }, (request, response) => {
    const source = /^\/([^/?]+)/.exec(request.url ?? "")?.[1] ?? "unknown";
    const answer = () => {
      const now = Date.now();
      stats.count[source] = (stats.count[source] ?? 0) + 1;
      stats.first[source] ??= now;
      stats.last[source] = now;
      response.writeHead(200, { "Content-Length": "0" });
      response.end();
    };
    request.resume();
    request.on("end", () => (held === undefined ? answer() : held.push(answer)));
  });
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    port.postMessage({ type: "ready", port: typeof address === "object" && address ? address.port : 0 });
  });
  port.on("message", (message: { type: string; seq: number }) => {
    if (message.type === "stats") port.postMessage({ type: "stats", seq: message.seq, stats });
    else if (message.type === "reset") {
      stats = { count: {}, first: {}, last: {} };
      port.postMessage({ type: "reset", seq: message.seq });
    } else if (message.type === "hold") {
      held ??= [];
      port.postMessage({ type: "hold", seq: message.seq });
    } else if (message.type === "release") {
      const waiting = held ?? [];
      held = undefined;
      for (const answer of waiting) answer();
      port.postMessage({ type: "release", seq: message.seq });
    } else if (message.type === "stop") {
      server.close(() => port.postMessage({ type: "stopped", seq: message.seq }));
      server.closeAllConnections();
    }
  });
}

export async function startReceiver(): Promise<Receiver> {
  const worker = new Worker(new URL(import.meta.url));
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let seq = 0;
  // Once the thread is gone every question fails at once instead of waiting for an answer forever.
  let gone: Error | undefined;
  const fail = (error: Error) => {
    gone ??= error;
    for (const { reject } of waiting.values()) reject(gone);
    waiting.clear();
  };
  const port = await new Promise<number>((resolve, reject) => {
    worker.once("error", (error) => {
      reject(error);
      fail(error);
    });
    worker.once("exit", (code) => fail(new Error(`the receiver thread exited (code ${code})`)));
    worker.on("message", (message: { type: string; seq?: number; port?: number; stats?: ArrivalStats }) => {
      if (message.type === "ready") resolve(message.port!);
      else if (message.seq !== undefined) {
        waiting.get(message.seq)?.resolve(message.stats);
        waiting.delete(message.seq);
      }
    });
  });
  const ask = <T>(type: string) =>
    new Promise<T>((resolve, reject) => {
      if (gone !== undefined) return reject(gone);
      const id = ++seq;
      waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ type, seq: id });
    });
  return {
    url: `http://127.0.0.1:${port}`,
    stats: () => ask<ArrivalStats>("stats"),
    reset: () => ask<void>("reset"),
    hold: () => ask<void>("hold"),
    release: () => ask<void>("release"),
    /** Closes the server and ends the thread; safe to call twice. */
    stop: async () => {
      if (gone !== undefined) return;
      await Promise.race([ask<void>("stop").catch(() => {}), new Promise((done) => setTimeout(done, 5000).unref())]);
      await worker.terminate();
    },
  };
}
