/**
 * The HTTP benchmarks against `wrangler dev`: ingress (every target in lib/targets.ts under autocannon),
 * delivery (each consumer alone → loopback receiver), and ingress latency growth with call size.
 */

import type { WranglerDev } from "../scripts/lib/wrangler-dev.ts";
import { groupCpuMs } from "./lib/cpu.ts";
import { type SignedCall, signedCall, signedPool } from "./lib/fixtures.ts";
import { type LoadResult, runLoad } from "./lib/load.ts";
import type { Receiver } from "./lib/receiver.ts";
import { median, sleep } from "./lib/stats.ts";
import { isNoDevtools, TARGET_NAMES, type Target, type TargetName, type Targets } from "./lib/targets.ts";

/** Deliveries per standard call: the relay sends three messages, the baseline consumer three fetches. */
export const FANOUT = 3;

/** Every target's consumer is timed, except the pair without a devtools session (ingress only). */
export const DELIVERY_TARGETS: readonly TargetName[] = TARGET_NAMES.filter((name) => !isNoDevtools(name));

export interface IngressRun extends LoadResult {
  target: TargetName;
  connections: number;
  /** CPU ms per accepted call, all processes of that wrangler dev, until its deliveries arrived. */
  cpuMs: number;
  /** Structured log lines the Worker printed per call (ingress and delivery), until its deliveries arrived. */
  logLines: number;
  /** Whether every delivery of the run reached the receiver before the next run started. */
  drained: boolean;
}

/** Waits until `source` has `expected` arrivals or none arrive for `quietMs`; true when all arrived. */
export async function drain(
  receiver: Receiver,
  source: string,
  expected: number,
  quietMs = 5000,
  maxMs = 60_000,
): Promise<boolean> {
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
  const all = TARGET_NAMES.map((name) => targets.all[name]);
  // Warm every isolate (and the relays' rules caches) before timing.
  for (const target of all) await runLoad({ url: target.dev.url, pool: signedPool(120), connections: 10 });
  await sleep(3000);
  for (let round = 0; round < options.rounds; round++) {
    for (const [c, connections] of options.connections.entries()) {
      // Rotate which goes first, so that none always runs on a warmer or cooler machine.
      const order = rotate(all, round + c);
      for (const target of order) {
        const name = target.name;
        const pool = signedPool(options.poolSize);
        await receiver.reset();
        const before = cpu(target.dev);
        const linesBefore = target.logLines();
        const result = await runLoad({
          url: target.dev.url,
          pool,
          connections,
          durationSeconds: options.durationSeconds,
        });
        const drained = await drain(receiver, name, (result.requests - result.unexpected) * FANOUT);
        const after = cpu(target.dev);
        const run: IngressRun = {
          ...result,
          target: name,
          connections,
          cpuMs: (after - before) / Math.max(1, result.requests),
          logLines: (target.logLines() - linesBefore) / Math.max(1, result.requests),
          drained,
        };
        runs.push(run);
        progress(
          `ingress round ${round + 1} c=${connections} ${name}: ${result.rps.toFixed(0)} req/s, p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, ${run.cpuMs.toFixed(2)} CPU ms/call, ${run.logLines.toFixed(1)} log lines/call${result.unexpected + result.errors > 0 ? `, ${result.unexpected} unexpected / ${result.errors} errors` : ""}${drained ? "" : ", NOT drained"}`,
        );
      }
    }
  }
  return runs;
}

/** `items` rotated left by `by` places. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

const cpu = (target: WranglerDev): number => groupCpuMs(target.process.pid!);

export interface DeliveryRun {
  target: TargetName;
  deliveries: number;
  perSecond: number;
  cpuMsPerDelivery: number;
  logLinesPerDelivery: number;
}

/**
 * Fills each Worker's DELIVERIES-like queue through its own front door (the relays: signed standard
 * calls, three messages each; the baseline: POST /enqueue?count=3, three messages each with one fetch)
 * while the receiver holds its answers, so the consumer's first batch waits and the rest queue up;
 * then releases the receiver and times the drain: deliveries / (last arrival − first arrival). Only
 * the consumer runs in that window, so its figures carry no share of the front door's work.
 */
export async function runDelivery(
  targets: Targets,
  receiver: Receiver,
  options: { calls: number; rounds: number },
  progress: (line: string) => void,
): Promise<DeliveryRun[]> {
  const runs: DeliveryRun[] = [];
  const all: Target[] = DELIVERY_TARGETS.map((name) => targets.all[name]);
  for (let round = 0; round < options.rounds; round++) {
    for (const target of rotate(all, round)) {
      const name = target.name;
      // Whatever is still on its way from earlier runs (retries included) arrives before the count starts.
      await drain(receiver, name, Number.POSITIVE_INFINITY, 1500, 30_000);
      await receiver.reset();
      await receiver.hold();
      const pool = signedPool(options.calls + 20);
      const load = await runLoad({
        url: target.dev.url,
        pool,
        connections: 10,
        path: name === "baseline" ? `/enqueue?count=${FANOUT}` : "/webhook",
        amount: options.calls,
      });
      const expected = (load.requests - load.unexpected) * FANOUT;
      await sleep(500); // the last calls' messages reach the queue
      const before = cpu(target.dev);
      const linesBefore = target.logLines();
      await receiver.release();
      const drained = await drain(receiver, name, expected, 5000, 120_000);
      const after = cpu(target.dev);
      const stats = await receiver.stats();
      const count = stats.count[name] ?? 0;
      const seconds = ((stats.last[name] ?? 0) - (stats.first[name] ?? 0)) / 1000;
      const run: DeliveryRun = {
        target: name,
        deliveries: count,
        perSecond: seconds > 0 ? (count - 1) / seconds : Number.NaN,
        cpuMsPerDelivery: (after - before) / Math.max(1, count),
        logLinesPerDelivery: (target.logLines() - linesBefore) / Math.max(1, count),
      };
      runs.push(run);
      progress(
        `delivery round ${round + 1} ${name}: ${count}/${expected} deliveries, ${run.perSecond.toFixed(0)}/s, ${run.cpuMsPerDelivery.toFixed(2)} CPU ms/delivery, ${run.logLinesPerDelivery.toFixed(2)} log lines/delivery${drained ? "" : ", NOT drained"}`,
      );
    }
  }
  return runs;
}

export interface GrowthPoint {
  label: string;
  bodyBytes: number;
  p50: number;
  /** The slowest of the `repeat` calls (too few for a p99). */
  max: number;
  status: number;
}

/**
 * One call at a time: the relay's latency per call shape, median and slowest of `repeat` calls (each
 * shape's deliveries run beside its later calls; the next shape starts once they have arrived).
 */
export async function runGrowthHttp(
  relay: WranglerDev,
  receiver: Receiver,
  shapes: { label: string; notifications: number; notificationBytes: number }[],
  repeat: number,
  progress: (line: string) => void,
): Promise<GrowthPoint[]> {
  const points: GrowthPoint[] = [];
  for (const shape of shapes) {
    const calls: SignedCall[] = Array.from({ length: repeat + 2 }, () =>
      signedCall(shape.notifications, shape.notificationBytes),
    );
    const latencies: number[] = [];
    let status = 0;
    for (const [i, call] of calls.entries()) {
      const started = performance.now();
      const response = await fetch(`${relay.url}/webhook`, {
        method: "POST",
        headers: { "content-type": "application/json", "ms-signature": call.signature },
        body: call.body,
        signal: AbortSignal.timeout(60_000),
      });
      await response.arrayBuffer();
      status = response.status;
      if (i >= 2) latencies.push(performance.now() - started); // the first two warm the path
    }
    // Let this shape's deliveries arrive before the next shape is timed.
    await drain(receiver, "relay", Number.POSITIVE_INFINITY, 1500, 30_000);
    const point: GrowthPoint = {
      label: shape.label,
      bodyBytes: calls[0]!.body.length,
      p50: median(latencies),
      max: Math.max(...latencies),
      status,
    };
    points.push(point);
    progress(`growth ${shape.label}: ${point.bodyBytes} B, HTTP ${status}, p50 ${point.p50.toFixed(1)} ms`);
  }
  return points;
}

export interface BacklogRun {
  calls: number;
  deliveries: number;
  /** From the release of the receiver to the last arrival. */
  drainSeconds: number;
  perSecond: number;
  /** From the last arrival until the ledger showed every delivery delivered. */
  ledgerLagSeconds: number;
}

/**
 * A backlog of `calls` standard calls (three deliveries each) builds up while the receiver holds its
 * answers; then it is released and the drain is timed: arrivals, and how long the ledger takes to show them
 * all delivered (GET /admin/stats).
 */
export async function runBacklog(
  target: Target,
  receiver: Receiver,
  options: { calls: number; adminToken: string },
  progress: (line: string) => void,
): Promise<BacklogRun> {
  const name = target.name;
  await drain(receiver, name, Number.POSITIVE_INFINITY, 1500, 30_000);
  const deliveredBefore = await deliveredInLedger(target, options.adminToken);
  await receiver.reset();
  await receiver.hold();
  const load = await runLoad({
    url: target.dev.url,
    pool: signedPool(options.calls + 60),
    connections: 20,
    amount: options.calls,
  });
  const expected = (load.requests - load.unexpected) * FANOUT;
  progress(`backlog ${name}: ${load.requests} calls enqueued (${load.rps.toFixed(0)}/s), releasing the receiver`);
  await sleep(2000);
  await receiver.release();
  const released = Date.now();
  await drain(receiver, name, expected, 20_000, 900_000);
  const stats = await receiver.stats();
  const lastArrival = stats.last[name] ?? Date.now();
  const count = stats.count[name] ?? 0;
  const deadline = Date.now() + 300_000;
  while ((await deliveredInLedger(target, options.adminToken)) - deliveredBefore < expected && Date.now() < deadline) {
    await sleep(1000);
  }
  const run: BacklogRun = {
    calls: load.requests - load.unexpected,
    deliveries: count,
    drainSeconds: (lastArrival - released) / 1000,
    perSecond: count / Math.max(0.001, (lastArrival - released) / 1000),
    ledgerLagSeconds: Math.max(0, (Date.now() - lastArrival) / 1000),
  };
  progress(
    `backlog ${name}: ${count}/${expected} deliveries in ${run.drainSeconds.toFixed(1)} s (${run.perSecond.toFixed(0)}/s), ledger ${run.ledgerLagSeconds.toFixed(1)} s behind`,
  );
  return run;
}

async function deliveredInLedger(target: Target, token: string): Promise<number> {
  const response = await fetch(`${target.dev.url}/admin/stats?since=0`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(30_000),
  });
  const stats = (await response.json()) as { destinations: Record<string, { delivered: number }> };
  return Object.values(stats.destinations).reduce((sum, d) => sum + d.delivered, 0);
}
