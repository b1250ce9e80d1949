/**
 * One autocannon run against POST /webhook with a precomputed pool of signed calls: every request
 * takes the next call from the pool (shared by all connections), so each has a fresh Id and signature
 * and the load generator only copies bytes. Latencies are collected per response (float ms).
 */
import autocannon from "autocannon";
import type { SignedCall } from "./fixtures.ts";
import { percentile } from "./stats.ts";

export interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  /** Responses other than 202 Accepted. */
  unexpected: number;
  errors: number;
}

export async function runLoad(options: {
  url: string;
  pool: readonly SignedCall[];
  connections: number;
  path?: string;
  /** Stop after this long (the pool still caps the number of requests). */
  durationSeconds?: number;
  /** Send exactly this many requests (at most the pool's size less one per connection). */
  amount?: number;
}): Promise<LoadResult> {
  const { url, pool, connections } = options;
  let next = 0;
  const latencies: number[] = [];
  let unexpected = 0;
  // autocannon builds one request per connection up front, so the pool needs a few spare calls.
  const amount = Math.min(options.amount ?? Number.POSITIVE_INFINITY, pool.length - connections - 1);
  if (amount <= 0) throw new Error("pool too small");
  const started = performance.now();
  let instance: autocannon.Instance;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    instance = autocannon(
      {
        url,
        connections,
        // With a duration, the pool caps the total; without one, exactly `amount` requests are sent.
        ...(options.durationSeconds !== undefined
          ? { duration: options.durationSeconds, maxOverallRequests: amount }
          : { amount }),
        timeout: 30,
        requests: [
          {
            setupRequest: (request) => {
              const call = pool[next++ % pool.length]!;
              return {
                ...request,
                method: "POST",
                path: options.path ?? "/webhook",
                headers: { "content-type": "application/json", "ms-signature": call.signature },
                body: call.body,
              };
            },
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
  instance!.on("response", (_client, status, _bytes, responseTime) => {
    latencies.push(responseTime);
    if (status !== 202) unexpected++;
  });
  const result = await done;
  const seconds = (performance.now() - started) / 1000;
  return {
    requests: latencies.length,
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    unexpected,
    errors: result.errors, // autocannon counts timeouts among them
  };
}
