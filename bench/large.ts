/**
 * Large calls (docs/delivery.md, "Large notifications"): the relay's door against a bare worker that streams the
 * body into R2 and enqueues a pointer (bench/baseline-r2/), for signed 5 MB calls one at a time; the peak memory
 * of each one's workerd process for a 10 MiB call; an 11 MiB call's answer; and what the relay kept in R2 per call.
 */
import { join } from "node:path";
import { ROOT, startWranglerDev, type WranglerDev } from "../scripts/lib/wrangler-dev.ts";
import { drain } from "./http.ts";
import { benchRules, RELAY_BASE_VARS, SECRETS, type SignedCall, signedCall, signedLargeCall } from "./lib/fixtures.ts";
import { resetPeak, residentSet, workerdOf } from "./lib/memory.ts";
import { byPrefix, r2Objects } from "./lib/r2.ts";
import { type Receiver, startReceiver } from "./lib/receiver.ts";
import { relayConfig } from "./lib/snapshot.ts";
import { median, percentile, sleep } from "./lib/stats.ts";

const LARGE_NAMES = ["relay-nodevtools", "bare-nodevtools", "relay", "bare"] as const;
export type LargeName = (typeof LARGE_NAMES)[number];
export const largeLabel = (name: LargeName): string =>
  ({
    "relay-nodevtools": "relay, no devtools",
    "bare-nodevtools": "bare R2 worker, no devtools",
    relay: "relay (wrangler dev)",
    bare: "bare R2 worker (wrangler dev)",
  })[name];
const isRelay = (name: LargeName) => name.startsWith("relay");

/** Deliveries per large call: the relay's three destinations; the bare worker's consumer posts three times. */
const DELIVERIES = 3;
export const LARGE_BYTES = 5_000_000;
/** Standard calls each Worker gets first, to warm its paths. */
export const WARM_SMALL_CALLS = 3;
export const PEAK_BYTES = 10 * 1024 * 1024;
export const REFUSED_BYTES = 11 * 1024 * 1024;

export interface LargeLatency {
  name: LargeName;
  calls: number;
  p50: number;
  p95: number;
  /** Answers other than 202. */
  unexpected: number;
}

export interface LargeMemory {
  name: LargeName;
  /** Per call: peak resident set above the resident set before it, until the door answered. */
  door: number[];
  /** The same until the call's deliveries had reached the receiver. */
  withDeliveries: number[];
  /** Resident set before the first measured call. */
  rssBefore: number;
}

export interface LargeRun {
  latency: LargeLatency[];
  memory: LargeMemory[];
  refusedStatus: number;
  /** What the relay (no devtools session) kept in R2 for its large calls. */
  r2: { calls: number; bodies: number; bodyBytes: number; claims: number; texts: number; other: number };
}

interface Started {
  name: LargeName;
  dev: WranglerDev;
  arrivals: number;
}

async function send(dev: WranglerDev, call: SignedCall): Promise<{ ms: number; status: number }> {
  const started = performance.now();
  const response = await fetch(`${dev.url}/webhook`, {
    method: "POST",
    headers: { "content-type": "application/json", "ms-signature": call.signature },
    body: call.body,
    signal: AbortSignal.timeout(120_000),
  });
  await response.arrayBuffer();
  return { ms: performance.now() - started, status: response.status };
}

/** Sends `call` and waits until its deliveries have reached the receiver. */
async function sendAndDrain(target: Started, receiver: Receiver, call: SignedCall) {
  const result = await send(target.dev, call);
  if (result.status === 202) target.arrivals += DELIVERIES;
  await drain(receiver, target.name, target.arrivals, 10_000, 120_000);
  return result;
}

export async function runLarge(
  options: { calls: number; memoryCalls: number },
  progress: (line: string) => void,
): Promise<LargeRun> {
  const receiver = await startReceiver();
  const starting = LARGE_NAMES.map((name) =>
    isRelay(name)
      ? startWranglerDev({ config: relayConfig(), secrets: SECRETS, vars: RELAY_BASE_VARS, devtools: name === "relay" })
      : startWranglerDev({
          config: join(ROOT, "bench", "baseline-r2", "wrangler.toml"),
          vars: { RECEIVER_URL: `${receiver.url}/${name}` },
          devtools: name === "bare",
        }),
  );
  const settled = await Promise.allSettled(starting);
  const stop = () =>
    Promise.all([...settled.map((s) => (s.status === "fulfilled" ? s.value.stop() : undefined)), receiver.stop()]);
  try {
    const failed = settled.find((s) => s.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    const targets: Started[] = settled.map((s, i) => ({
      name: LARGE_NAMES[i]!,
      dev: (s as PromiseFulfilledResult<WranglerDev>).value,
      arrivals: 0,
    }));
    for (const target of targets.filter((t) => isRelay(t.name))) {
      const response = await fetch(`${target.dev.url}/admin/rules`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${SECRETS.ADMIN_TOKEN}`, "Content-Type": "application/json" },
        body: JSON.stringify(benchRules(receiver.url, target.name)),
        signal: AbortSignal.timeout(30_000),
      });
      if (!response.ok) throw new Error(`PUT /admin/rules answered ${response.status}: ${await response.text()}`);
    }
    // Warm each Worker's paths: small calls, then one large call (1.2 MB, streamed to R2 as it arrives).
    for (const target of targets) {
      for (let i = 0; i < WARM_SMALL_CALLS; i++) await sendAndDrain(target, receiver, signedCall());
      await sendAndDrain(target, receiver, signedLargeCall(1_200_000));
    }
    await sleep(3000);

    // Peak memory at 10 MiB, on the pair with no devtools session, before the 5 MB runs grow their heaps.
    const measured = targets.filter((t) => t.name.endsWith("nodevtools"));
    const memory: LargeMemory[] = measured.map((t) => ({
      name: t.name,
      door: [],
      withDeliveries: [],
      rssBefore: residentSet(workerdOf(t.dev)).rss,
    }));
    for (let i = 0; i < options.memoryCalls; i++) {
      for (const [k, target] of rotate(measured, i).entries()) {
        const m = memory.find((x) => x.name === target.name)!;
        const pid = workerdOf(target.dev);
        const call = signedLargeCall(PEAK_BYTES);
        resetPeak(pid);
        const before = residentSet(pid).rss;
        const result = await send(target.dev, call);
        const door = residentSet(pid).peak - before;
        if (result.status !== 202) throw new Error(`${target.name} answered a 10 MiB call ${result.status}`);
        target.arrivals += DELIVERIES;
        await drain(receiver, target.name, target.arrivals, 10_000, 120_000);
        await sleep(1000);
        const withDeliveries = residentSet(pid).peak - before;
        m.door.push(door);
        m.withDeliveries.push(withDeliveries);
        progress(
          `large: 10 MiB call ${i + 1}.${k + 1} ${target.name}: door +${mib(door)} MiB, with deliveries +${mib(withDeliveries)} MiB (RSS before ${mib(before)} MiB)`,
        );
        await sleep(2000);
      }
    }

    // The door's latency for 5 MB calls, one at a time, rotating which Worker goes first; each call's deliveries
    // arrive before the next call.
    const times = new Map<LargeName, number[]>(LARGE_NAMES.map((name) => [name, []]));
    const unexpected = new Map<LargeName, number>(LARGE_NAMES.map((name) => [name, 0]));
    const warm = 2;
    for (let i = 0; i < options.calls + warm; i++) {
      for (const target of rotate(targets, i)) {
        const result = await sendAndDrain(target, receiver, signedLargeCall(LARGE_BYTES));
        if (result.status !== 202) unexpected.set(target.name, unexpected.get(target.name)! + 1);
        else if (i >= warm) times.get(target.name)!.push(result.ms);
        await sleep(300);
      }
    }
    const latency = LARGE_NAMES.map((name) => {
      const list = times.get(name)!;
      return {
        name,
        calls: list.length,
        p50: median(list),
        p95: percentile(list, 95),
        unexpected: unexpected.get(name)!,
      };
    });
    for (const l of latency) {
      progress(`large: 5 MB ${l.name}: p50 ${l.p50.toFixed(1)} ms, p95 ${l.p95.toFixed(1)} ms over ${l.calls} calls`);
    }

    const relay = targets.find((t) => t.name === "relay-nodevtools")!;
    const refusedStatus = (await send(relay.dev, signedLargeCall(REFUSED_BYTES))).status;
    progress(`large: 11 MiB call answered ${refusedStatus}`);

    // The ledger's batches reach R2 within its queue's batch timeout (2 s).
    await sleep(5000);
    const kept = byPrefix(r2Objects(relay.dev.persistTo), ["claims/bodies/", "claims/", "ledger/texts/"]);
    const large = 1 + options.memoryCalls + options.calls + warm; // each Worker's large calls (1.2 MB warm-up included)
    const r2 = {
      calls: large,
      bodies: kept["claims/bodies/"]!.objects,
      bodyBytes: kept["claims/bodies/"]!.bytes,
      claims: kept["claims/"]!.objects,
      texts: kept["ledger/texts/"]!.objects,
      other: kept.other!.objects,
    };
    progress(
      `large: R2 holds ${r2.bodies} bodies, ${r2.claims} other claims, ${r2.texts} text objects for ${large} large calls`,
    );
    return { latency, memory, refusedStatus, r2 };
  } finally {
    await stop();
  }
}

const mib = (n: number) => (n / 1024 / 1024).toFixed(1);

function rotate<T>(items: readonly T[], by: number): T[] {
  const k = by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
