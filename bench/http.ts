/**
 * The HTTP benchmarks against `wrangler dev`: ingress (relay vs baseline under autocannon), delivery
 * (consumer → loopback receiver), and ingress latency growth with call size.
 */
import { groupCpuMs } from "./lib/cpu.ts";
import { signedCall, signedPool, type SignedCall } from "./lib/fixtures.ts";
import { runLoad, type LoadResult } from "./lib/load.ts";
import type { Receiver } from "./lib/receiver.ts";
import { median, percentile, sleep } from "./lib/stats.ts";
import type { Targets } from "./lib/targets.ts";
import type { WranglerDev } from "../scripts/lib/wrangler-dev.ts";

/** Deliveries per standard call: the relay sends three messages, the baseline consumer three fetches. */
export const FANOUT = 3;

export interface IngressRun extends LoadResult {
  target: "relay" | "baseline";
  connections: number;
  /** CPU ms per accepted call, all processes of that wrangler dev, until its deliveries arrived. */
  cpuMs: number;
  /** Whether every delivery of the run reached the receiver before the next run started. */
  drained: boolean;
}

/** Waits until `source` has `expected` arrivals or none arrive for `quietMs`; true when all arrived. */
async function drain(receiver: Receiver, source: string, expected: number, quietMs = 5000, maxMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const count = (await receiver.stats()).count[source] ?? 0;
    if (count >= expected) return true;
    if (count !== last) {
      last = count;
      lastChange = Date.now();
    }
    if (Date.now() - lastChange > quietMs || Date.now() > deadline) return false;
    await sleep(100);
  }
}

export async function runIngress(
  targets: Targets,
  receiver: Receiver,
  options: { connections: number[]; rounds: number; durationSeconds: number; poolSize: number },
  progress: (line: string) => void,
): Promise<IngressRun[]> {
  const runs: IngressRun[] = [];
  const pair = [
    ["relay", targets.relay],
    ["baseline", targets.baseline],
  ] as const;
  // Warm both isolates (and the relay's rules cache) before timing.
  for (const [, target] of pair) await runLoad({ url: target.url, pool: signedPool(120), connections: 10, expectStatus: 202 });
  await sleep(3000);
  for (let round = 0; round < options.rounds; round++) {
    for (const connections of options.connections) {
      // Alternate which goes first, so that neither always runs on a warmer or cooler machine.
      const order = round % 2 === 0 ? pair : ([pair[1], pair[0]] as const);
      for (const [name, target] of order) {
        const pool = signedPool(options.poolSize);
        await receiver.reset();
        const before = cpu(target);
        const result = await runLoad({
          url: target.url,
          pool,
          connections,
          expectStatus: 202,
          durationSeconds: options.durationSeconds,
        });
        const drained = await drain(receiver, name, (result.requests - result.unexpected) * FANOUT);
        const after = cpu(target);
        const run: IngressRun = {
          ...result,
          target: name,
          connections,
          cpuMs: (after - before) / Math.max(1, result.requests),
          drained,
        };
        runs.push(run);
        progress(
          `ingress round ${round + 1} c=${connections} ${name}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, ${run.cpuMs.toFixed(2)} CPU ms/call${result.unexpected + result.errors > 0 ? `, ${result.unexpected} unexpected / ${result.errors} errors` : ""}${drained ? "" : ", NOT drained"}`,
        );
      }
    }
  }
  return runs;
}

function cpu(target: WranglerDev): number {
  const { workerd, other } = groupCpuMs(target.process.pid!);
  return workerd + other;
}

export interface DeliveryRun {
  target: "relay" | "baseline";
  deliveries: number;
  perSecond: number;
  cpuMsPerDelivery: number;
}

/**
 * Fills each Worker's DELIVERIES-like queue through its own front door (the relay: signed standard
 * calls, three messages each; the baseline: POST /enqueue?count=3, three messages each with one fetch)
 * and times the arrivals at the receiver: deliveries / (last arrival − first arrival).
 */
export async function runDelivery(
  targets: Targets,
  receiver: Receiver,
  options: { calls: number; rounds: number },
  progress: (line: string) => void,
): Promise<DeliveryRun[]> {
  const runs: DeliveryRun[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? (["relay", "baseline"] as const) : (["baseline", "relay"] as const);
    for (const name of order) {
      const target = name === "relay" ? targets.relay : targets.baseline;
      await receiver.reset();
      const before = cpu(target);
      const pool = signedPool(options.calls + 20);
      const load = await runLoad({
        url: target.url,
        pool,
        connections: 10,
        expectStatus: 202,
        path: name === "relay" ? "/webhook" : `/enqueue?count=${FANOUT}`,
        amount: options.calls,
      });
      const expected = (load.requests - load.unexpected) * FANOUT;
      const drained = await drain(receiver, name, expected, 5000, 120_000);
      const after = cpu(target);
      const stats = await receiver.stats();
      const count = stats.count[name] ?? 0;
      const seconds = ((stats.last[name] ?? 0) - (stats.first[name] ?? 0)) / 1000;
      const run: DeliveryRun = {
        target: name,
        deliveries: count,
        perSecond: seconds > 0 ? (count - 1) / seconds : Number.NaN,
        cpuMsPerDelivery: (after - before) / Math.max(1, count),
      };
      runs.push(run);
      progress(
        `delivery round ${round + 1} ${name}: ${count}/${expected} deliveries, ${run.perSecond.toFixed(0)}/s, ${run.cpuMsPerDelivery.toFixed(2)} CPU ms/delivery${drained ? "" : ", NOT drained"}`,
      );
    }
  }
  return runs;
}

export interface GrowthPoint {
  label: string;
  notifications: number;
  bodyBytes: number;
  p50: number;
  p99: number;
  status: number;
}

/** One call at a time (no contention): the relay's latency per call shape, median of `repeat` calls. */
export async function runGrowthHttp(
  relay: WranglerDev,
  receiver: Receiver,
  shapes: { label: string; notifications: number; notificationBytes: number }[],
  repeat: number,
  progress: (line: string) => void,
): Promise<GrowthPoint[]> {
  const points: GrowthPoint[] = [];
  for (const shape of shapes) {
    const calls: SignedCall[] = Array.from({ length: repeat + 2 }, () => signedCall(shape.notifications, shape.notificationBytes));
    const latencies: number[] = [];
    let status = 0;
    for (const [i, call] of calls.entries()) {
      const started = performance.now();
      const response = await fetch(`${relay.url}/webhook`, {
        method: "POST",
        headers: { "content-type": "application/json", "ms-signature": call.signature },
        body: call.body,
      });
      await response.arrayBuffer();
      status = response.status;
      if (i >= 2) latencies.push(performance.now() - started); // the first two warm the path
    }
    // Let this shape's deliveries arrive before the next shape is timed.
    await drain(receiver, "relay", Number.POSITIVE_INFINITY, 1500, 30_000);
    const point: GrowthPoint = {
      label: shape.label,
      notifications: shape.notifications,
      bodyBytes: calls[0]!.body.length,
      p50: median(latencies),
      p99: percentile(latencies, 99),
      status,
    };
    points.push(point);
    progress(`growth ${shape.label}: ${point.bodyBytes} B, HTTP ${status}, p50 ${point.p50.toFixed(1)} ms`);
  }
  return points;
}
