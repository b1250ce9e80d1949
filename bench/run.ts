/**
 * `npm run bench`: every benchmark in one go, a table per section on stdout, and BENCHMARKS.md written at the
 * repository root (targets, machine, method, figures, cost per million calls, analysis). Load goes only to
 * 127.0.0.1. A full run takes 20–30 minutes on a 2-core machine; `--quick` (one round each) about five.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { ROOT, startWranglerDev } from "../scripts/lib/wrangler-dev.ts";
import { MAX_CONNECTIONS } from "../src/delivery/slots.ts";
import { ROUNDS as CORE_ROUNDS, type CoreResults, runCore } from "./core.ts";
import { type HeldBacklogRun, type LimitedRun, runFlow } from "./flow.ts";
import type { MemoryPoint, Shape } from "./growth-memory.ts";
import {
  type BacklogRun,
  DELIVERY_TARGETS,
  type DeliveryRun,
  FANOUT,
  type GrowthPoint,
  type IngressRun,
  runBacklog,
  runDelivery,
  runGrowthHttp,
  runIngress,
} from "./http.ts";
import {
  LARGE_BYTES,
  type LargeName,
  type LargeRun,
  largeLabel,
  PEAK_BYTES,
  REFUSED_BYTES,
  runLarge,
  WARM_SMALL_CALLS,
} from "./large.ts";
import { foreignCpu } from "./lib/cpu.ts";
import { benchRules, SECRETS, signedCall } from "./lib/fixtures.ts";
import { type LedgerSize, ledgerSize } from "./lib/ledger-size.ts";
import { byPrefix, r2Objects } from "./lib/r2.ts";
import { startReceiver } from "./lib/receiver.ts";
import { bytes, compactTable, fmt, median, table as paddedTable, ratio, sleep } from "./lib/stats.ts";
import { AGAINST, labelOf, startTargets, TARGET_NAMES, type TargetName } from "./lib/targets.ts";
import { type CoalesceRun, type OrderRun, runCoalesce, runOrder, runTransform, type TransformRun } from "./shaping.ts";

const QUICK = process.argv.includes("--quick");
/** "No slower than main": runs on this 2-core machine move ±10 % between rounds, so that is the line. */
const AGAINST_LIMIT = 0.9;
/** Flow control's own line: destinations without limits deliver at least this fraction of main's rate. */
const AGAINST_DELIVERY_LIMIT = 0.95;
/** The consumer with its ledger against the bare consumer, CPU per delivery (issue #20). */
const CONSUMER_CPU_LIMIT = 1.2;
/** D1 bytes per standard call (issue #20). */
const D1_BYTES_LIMIT = 700;
/** A 5 MB call's p50 against the bare worker that puts the body into R2 (issue #20). */
const LARGE_LIMIT = 1.3;
const CONNECTIONS = [10, 50];
const ROUNDS = QUICK ? 1 : 3;
const DURATION_SECONDS = QUICK ? 2 : 5;
// Distinct signed calls per load run: well above what the fastest target takes in that time.
const POOL = DURATION_SECONDS * 600;
const DELIVERY_CALLS = QUICK ? 100 : 400;
/**
 * Delivery rounds: more than the ingress rounds, since a round takes seconds and the target against main
 * (≥ 0.95×) is closer than this machine's noise between rounds (±10 %).
 */
const DELIVERY_ROUNDS = QUICK ? 1 : 7;
/** Calls in the backlog run (full runs only): 30,000 deliveries. */
const BACKLOG_CALLS = 10_000;
/** Flow control: the limit of the rate-limited destination, and the deliveries a paused one holds. */
const FLOW_RATE = 50;
const HELD_BACKLOG = 10_000;
/** Large calls: 5 MB calls per Worker, and 10 MiB calls per Worker for the memory peak. */
const LARGE_CALLS = QUICK ? 3 : 15;
const PEAK_CALLS = QUICK ? 2 : 5;
/** Shaping deliveries (bench/shaping.ts): a coalesced storm, order per key, a transform. */
const COALESCE = QUICK
  ? { calls: 1000, products: 10, seconds: 10, windowSeconds: 2 }
  : { calls: 10_000, products: 100, seconds: 60, windowSeconds: 10 };
const ORDER = QUICK ? { keys: 100, perKey: 3, failureShare: 0.1 } : { keys: 1000, perKey: 5, failureShare: 0.1 };
const TRANSFORM = QUICK ? { calls: 200, rounds: 1 } : { calls: 400, rounds: 3 };
/** Coalesced deliveries at most, as a share of calls: 700 for 10,000 BalanceChanged on 100 products in 60 s. */
const COALESCE_SHARE_LIMIT = 0.07;
/** The ordered destination's throughput against the unordered one's, the same calls to both. */
const ORDER_LIMIT = 0.7;
/** CPU ms per notification of a 10-field JSONata mapping (Node). */
const TRANSFORM_MS_LIMIT = 0.3;

/** Calls per ledger batch when the ledger queue's batches are full: 100 messages of ~10 deliveries (3⅓ calls). */
const FULL_LEDGER_BATCH = 300;

const DAY_CALLS = 100_000;
/** LEDGER_RETENTION_DAYS' default. */
const RETENTION_DAYS = 14;

const times = (n: number) => `${n.toFixed(1)}×`;
const usd = (n: number) => (n < 0.005 ? "≈ $0" : `$${n.toFixed(2)}`);

/**
 * Cloudflare's prices (Workers Paid) and what the plan includes a month, as published; the date is in the report.
 * Prices as given with issue #20; the included amounts as read from developers.cloudflare.com on 2026-12-01.
 */
const PRICES_DATE = "2026-12-07";
const PRICE = {
  request: 0.3 / 1e6,
  cpuMs: 0.02 / 1e6,
  queueOp: 0.4 / 1e6,
  d1Row: 1.0 / 1e6,
  d1GbMonth: 0.75,
  r2A: 4.5 / 1e6,
  r2B: 0.36 / 1e6,
  r2GbMonth: 0.015,
};
const INCLUDED = {
  request: 10e6,
  cpuMs: 30e6,
  queueOp: 1e6,
  d1Row: 50e6,
  d1Gb: 5,
  r2A: 1e6,
  r2B: 10e6,
  r2Gb: 10,
};

const COUNT_SHAPES: Shape[] = [1, 10, 100, 1000].map((n) => ({
  label: `${n} notification${n === 1 ? "" : "s"}`,
  notifications: n,
  notificationBytes: 480,
}));
const SIZE_SHAPES: Shape[] = [
  { label: "1 KB", notifications: 2, notificationBytes: 480 },
  { label: "16 KB", notifications: 2, notificationBytes: 8_000 },
  { label: "128 KB", notifications: 2, notificationBytes: 64_000 },
  { label: "1 MiB", notifications: 10, notificationBytes: 100_000 },
];

const started = Date.now();
const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);

// Everything started, stopped on the way out and on Ctrl-C (the Workers run in their own process
// groups, so a Ctrl-C at the terminal does not reach them). Stopping twice is harmless.
const running: Promise<{ stop(): Promise<void> }>[] = [];
function tracked<T extends { stop(): Promise<void> }>(starting: Promise<T>): Promise<T> {
  running.push(starting);
  return starting;
}
const cleanUp = () =>
  Promise.all(
    running.map((starting) =>
      starting.then(
        (it) => it.stop(),
        () => {},
      ),
    ),
  );
for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const) {
  process.once(signal, () => void cleanUp().finally(() => process.exit(code)));
}

/**
 * `--render <file>`: writes BENCHMARKS.md again from a run's saved figures (give the run's own flags too), e.g.
 * after editing bench/ANALYSIS.md. Every run saves its figures to SAVED (outside the repository).
 */
const RENDER = (() => {
  const at = process.argv.indexOf("--render");
  return at < 0 ? undefined : process.argv[at + 1];
})();
const SAVED = join(tmpdir(), "extend-relay-bench-results.json");

const results: Results =
  RENDER === undefined ? await measureAll() : (JSON.parse(readFileSync(RENDER, "utf8")) as Results);
if (RENDER === undefined) {
  writeFileSync(SAVED, JSON.stringify(results));
  log(`figures saved to ${SAVED} (npm run bench -- --render ${SAVED} ${process.argv.slice(2).join(" ")})`);
}
const markdown = render(results, false);
writeFileSync(join(ROOT, "BENCHMARKS.md"), markdown);
/** BENCHMARKS.md stays small enough to read: the latest figures and how to reproduce them; history is in git. */
const MAX_REPORT_BYTES = 15 * 1024;
if (Buffer.byteLength(markdown) > MAX_REPORT_BYTES) {
  console.warn(`BENCHMARKS.md is ${Buffer.byteLength(markdown)} bytes, over ${MAX_REPORT_BYTES}: shorten the report`);
}
console.log(
  `\n${render(results, true)}\n\nWrote BENCHMARKS.md (${Buffer.byteLength(markdown)} bytes) in ${((Date.now() - started) / 1000).toFixed(0)} s.`,
);

async function measureAll(): Promise<Results> {
  const foreign = foreignCpu();
  log("core costs (Node, tinybench)");
  const core = await runCore();

  log("growth in Node (time per step, retained memory)");
  const memory = JSON.parse(
    execFileSync(
      process.execPath,
      ["--expose-gc", join(ROOT, "bench", "growth-memory.ts"), JSON.stringify([...COUNT_SHAPES, ...SIZE_SHAPES])],
      {
        encoding: "utf8",
        maxBuffer: 16 * 1024 * 1024,
      },
    ),
  ) as MemoryPoint[];

  log("ledger writes in workerd (bench/ledger-worker, local D1)");
  const ledgerWrites = await measureLedgerInWorkerd();

  let ingress: IngressRun[];
  let delivery: DeliveryRun[];
  let growth: GrowthPoint[];
  let stored: LedgerSize;
  let r2Standard: R2Standard;
  let backlog: BacklogRun | undefined;
  try {
    log(`starting the loopback receiver and ${TARGET_NAMES.join(", ")} under wrangler dev`);
    const receiver = await tracked(startReceiver());
    const targets = await tracked(startTargets(receiver.url));
    ingress = await runIngress(
      targets,
      receiver,
      { connections: CONNECTIONS, rounds: ROUNDS, durationSeconds: DURATION_SECONDS, poolSize: POOL },
      log,
    );
    delivery = await runDelivery(targets, receiver, { calls: DELIVERY_CALLS, rounds: DELIVERY_ROUNDS }, log);
    // What the relay's ledger (D1) and PAYLOADS (R2) hold for the standard calls of the runs above (before the
    // growth calls); the ledger's last batches reach them within its queue's batch timeout.
    await sleep(5000);
    stored = ledgerSize(targets.all.relay.dev.persistTo);
    const kept = byPrefix(r2Objects(targets.all.relay.dev.persistTo), ["ledger/texts/", "ledger/waiting/", "claims/"]);
    r2Standard = {
      calls: stored.calls,
      texts: kept["ledger/texts/"]!.objects,
      textBytes: kept["ledger/texts/"]!.bytes,
      waiting: kept["ledger/waiting/"]!.objects,
      claims: kept["claims/"]!.objects + kept.other!.objects,
    };
    log(
      `ledger: ${stored.calls} calls, ${fmt(stored.bytesPerCall, 0)} D1 bytes per call; R2: ${r2Standard.texts} text objects (${fmt(r2Standard.textBytes / Math.max(1, stored.calls), 0)} B per call), ${r2Standard.waiting} waiting, ${r2Standard.claims} other`,
    );
    growth = await runGrowthHttp(
      targets.all.relay.dev,
      receiver,
      [...COUNT_SHAPES, ...SIZE_SHAPES],
      QUICK ? 5 : 15,
      log,
    );
    if (!QUICK) {
      backlog = await runBacklog(
        targets.all.relay,
        receiver,
        { calls: BACKLOG_CALLS, adminToken: SECRETS.ADMIN_TOKEN },
        log,
      );
    }
  } finally {
    await cleanUp();
  }

  log("large calls: 5 MB against a bare worker that puts the body into R2 (bench/large.ts), peak memory at 10 MiB");
  const large = await runLarge({ calls: LARGE_CALLS, memoryCalls: PEAK_CALLS }, log);

  log("flow control: a rate-limited destination, and a backlog held by a paused one (bench/flow.ts)");
  const flow = await runFlow(
    { perSecond: FLOW_RATE, seconds: QUICK ? 10 : 30, backlog: QUICK ? 1000 : HELD_BACKLOG },
    log,
  );

  log("shaping deliveries: coalescing, order per key, a JSONata transform (bench/shaping.ts)");
  const shaping = {
    coalesce: await runCoalesce(COALESCE, log),
    order: await runOrder(ORDER, log),
    transform: await runTransform(TRANSFORM, log),
  };
  const machine = {
    date: new Date().toISOString(),
    seconds: (Date.now() - started) / 1000,
    args: process.argv.slice(2).join(" "),
    foreign: foreign.stop(),
  };
  return {
    core,
    memory,
    ingress,
    delivery,
    growth,
    ledgerWrites,
    stored,
    r2Standard,
    backlog,
    flow,
    shaping,
    large,
    machine,
  };
}

// ---------------------------------------------------------------------------------------------------

/** What the shipped relay's PAYLOADS bucket holds after the standard calls of the HTTP runs. */
interface R2Standard {
  calls: number;
  /** The ledger's call texts: one object per ledger batch that wrote calls. */
  texts: number;
  textBytes: number;
  /** Ledger records waiting for D1 (none when D1 answered throughout). */
  waiting: number;
  /** Claims and anything else (none for standard calls). */
  claims: number;
}

interface LedgerWrites {
  label: string;
  calls: number;
  callsPerBatch: number;
  deliveriesPerCall: number;
  bodyBytes: number;
  medianMs: number;
  p95Ms: number;
  rowsWrittenPerCall: number;
  bytesPerCall: number;
}

/**
 * The consumer's ledger write, timed on the local D1 in workerd: the bench's standard call (two ~480-byte
 * notifications, three deliveries) 3 calls to a batch (one consumer batch) and FULL_LEDGER_BATCH to a batch (a full
 * ledger queue batch), and Extend's own OrderCreated sample (one notification, two deliveries by
 * rules.example.json), each through a fresh database.
 */
async function measureLedgerInWorkerd(): Promise<LedgerWrites[]> {
  const calls = QUICK ? 300 : 3000;
  const sample = readFileSync(join(ROOT, "fixtures", "extend", "OrderCreated.json"), "utf8");
  const standard = () => Array.from({ length: calls }, () => signedCall().body.toString("utf8"));
  const shapes = [
    { label: "standard bench call", rules: benchRules("http://127.0.0.1:9"), bodies: standard(), callsPerBatch: 3 },
    {
      label: "standard bench call",
      rules: benchRules("http://127.0.0.1:9"),
      bodies: standard(),
      callsPerBatch: FULL_LEDGER_BATCH,
    },
    {
      label: "Extend's OrderCreated sample",
      rules: JSON.parse(readFileSync(join(ROOT, "rules.example.json"), "utf8")) as unknown,
      bodies: Array.from({ length: calls }, () =>
        sample.replace(/"Id":"[0-9a-f]+"/, `"Id":"${crypto.randomUUID().replaceAll("-", "")}"`),
      ),
      callsPerBatch: 3,
    },
  ];
  const results: LedgerWrites[] = [];
  for (const shape of shapes) {
    const worker = await tracked(startWranglerDev({ config: join(ROOT, "bench", "ledger-worker", "wrangler.toml") }));
    try {
      const response = await fetch(worker.url, {
        method: "POST",
        body: JSON.stringify({ rules: shape.rules, bodies: shape.bodies, callsPerBatch: shape.callsPerBatch }),
        signal: AbortSignal.timeout(600_000),
      });
      if (!response.ok) throw new Error(`ledger worker answered ${response.status}: ${await response.text()}`);
      results.push({ label: shape.label, ...((await response.json()) as Omit<LedgerWrites, "label">) });
    } finally {
      await worker.stop();
    }
  }
  return results;
}

interface Results {
  /** When and how the figures were taken, and what else used the machine meanwhile (CPUs on average, busiest 30 s). */
  machine: { date: string; seconds: number; args: string; foreign: { average: number; busiest30s: number } };
  flow: { limited: LimitedRun; backlog: HeldBacklogRun };
  shaping: { coalesce: CoalesceRun; order: OrderRun; transform: TransformRun };
  ledgerWrites: LedgerWrites[];
  stored: LedgerSize;
  r2Standard: R2Standard;
  backlog: BacklogRun | undefined;
  core: CoreResults;
  memory: MemoryPoint[];
  ingress: IngressRun[];
  delivery: DeliveryRun[];
  growth: GrowthPoint[];
  large: LargeRun;
}

/** A ratio for the Targets table: two decimals, or three where two would round onto the limit. */
function measured(value: number, limit: number): string {
  const two = value.toFixed(2);
  return `${Number(two) === limit && value !== limit ? value.toFixed(3) : two}×`;
}

function verdict(ok: boolean): string {
  return ok ? "met" : "**missed**";
}

/** A Targets row for one figure measured several ways (c=10 / c=50, …): "met" when every one is, else each. */
function targetRow(what: string, wanted: string, values: readonly number[], ok: (v: number) => boolean, limit: number) {
  const verdicts = values.map(ok);
  return [
    what,
    wanted,
    values.map((v) => measured(v, limit)).join(" / "),
    verdicts.every(Boolean) ? "met" : verdicts.map(verdict).join(" / "),
  ];
}

function version(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version: string })
      .version;
  } catch {
    return "?";
  }
}

/** Flags a value that grew more than 1.25× faster than the input from the previous one. */
function superlinear(values: readonly number[], sizes: readonly number[]): string[] {
  return values.map((value, i) => {
    if (i === 0) return "";
    const grew = value / values[i - 1]!;
    const input = sizes[i]! / sizes[i - 1]!;
    return grew > 1.25 * input ? " ⚠" : "";
  });
}

function render(r: Results, padded: boolean): string {
  const table = padded ? paddedTable : compactTable;
  const sections: string[] = [];
  const verdicts: string[][] = [];

  // 1. Ingress
  const ingressRows: string[][] = [];
  const per = (target: TargetName, key: "rps" | "p50" | "p99" | "cpuMs" | "logLines", connections: number) =>
    median(r.ingress.filter((run) => run.target === target && run.connections === connections).map((run) => run[key]));
  const against = (a: TargetName, b: TargetName, key: "rps" | "p99") =>
    CONNECTIONS.map((c) => per(a, key, c) / per(b, key, c));
  for (const connections of CONNECTIONS) {
    const m = (target: TargetName, key: "rps" | "p50" | "p99" | "cpuMs" | "logLines") => per(target, key, connections);
    for (const name of TARGET_NAMES) {
      const runs = r.ingress.filter((run) => run.target === name && run.connections === connections);
      const flags = `${runs.some((run) => run.unexpected + run.errors > 0) ? " (some not 202!)" : ""}${runs.every((run) => run.drained) ? "" : " (not all drained)"}`;
      ingressRows.push([
        String(connections),
        labelOf(name) + flags,
        fmt(m(name, "rps"), 0),
        fmt(m(name, "p50"), 1),
        fmt(m(name, "p99"), 1),
        fmt(m(name, "cpuMs"), 2),
        fmt(m(name, "logLines"), 1),
      ]);
    }
    const ratioRow = (a: TargetName, b: TargetName, label = `${labelOf(a)} ÷ ${labelOf(b)}`) => [
      String(connections),
      label,
      ...(["rps", "p50", "p99", "cpuMs"] as const).map((key) => ratio(m(a, key), m(b, key))),
      "",
    ];
    ingressRows.push(ratioRow("relay", "baseline"));
    ingressRows.push(ratioRow("relay-nodevtools", "baseline-nodevtools", "no devtools: relay ÷ baseline"));
    if (AGAINST !== undefined) ingressRows.push(ratioRow("relay", "main"));
  }
  const cs = `c=${CONNECTIONS.join(" / ")}`;
  verdicts.push(
    targetRow(`Door req/s ÷ baseline, ${cs}`, "≥ 0.80×", against("relay", "baseline", "rps"), (v) => v >= 0.8, 0.8),
    targetRow(`Door p99 ÷ baseline, ${cs}`, "≤ 1.25×", against("relay", "baseline", "p99"), (v) => v <= 1.25, 1.25),
    targetRow(
      `Door req/s ÷ baseline, both no devtools, ${cs}`,
      "≥ 0.80×",
      against("relay-nodevtools", "baseline-nodevtools", "rps"),
      (v) => v >= 0.8,
      0.8,
    ),
    targetRow(
      `Door p99 ÷ baseline, both no devtools, ${cs}`,
      "≤ 1.25×",
      against("relay-nodevtools", "baseline-nodevtools", "p99"),
      (v) => v <= 1.25,
      1.25,
    ),
  );
  if (AGAINST !== undefined) {
    verdicts.push(
      targetRow(
        `Door req/s ÷ ${labelOf("main")}, ${cs}`,
        `≥ ${AGAINST_LIMIT.toFixed(2)}×`,
        against("relay", "main", "rps"),
        (v) => v >= AGAINST_LIMIT,
        AGAINST_LIMIT,
      ),
    );
  }
  sections.push(
    `## 1. Ingress: standard calls under load\n\nautocannon, ${ROUNDS} round(s) of ${DURATION_SECONDS} s per concurrency (c) and Worker. *CPU ms/call* runs until the call's ${FANOUT} deliveries arrived.\n\n` +
      table(["c", "target", "req/s", "p50 ms", "p99 ms", "CPU ms/call", "log lines/call"], ingressRows),
  );

  // 2. Core
  const first = r.core.matching[0]!;
  const last = r.core.matching.at(-1)!;
  verdicts.push(targetRow("Matching 10,000 vs 10 routes", "≤ 2×", [last.ns / first.ns], (v) => v <= 2, 2));
  const p = r.core.planning;
  sections.push(
    `## 2. Core costs (Node ${process.version}, tinybench)\n\nMedians of ${CORE_ROUNDS} runs. Matching one notification against ${r.core.matching.map((row) => row.routes.toLocaleString("en")).join(" / ")} routes: ${r.core.matching.map((row) => fmt(row.ns, 0)).join(" / ")} ns (${first.matched} matched). A ${p.notifications}-notification call: parse ${fmt(p.parseMs, 3)} ms (JSON.parse + Zod alone ${fmt(p.plainParseMs, 3)}), fan-out and planning ${fmt(p.planMs, 3)} ms → ${p.messages} messages in ${p.batches} batch(es).`,
  );

  // 3. Delivery
  const dm = (target: TargetName, key: "perSecond" | "cpuMsPerDelivery") =>
    median(r.delivery.filter((run) => run.target === target).map((run) => run[key]));
  const dRows: string[][] = DELIVERY_TARGETS.map((target) => [
    labelOf(target),
    fmt(dm(target, "perSecond"), 0),
    fmt(dm(target, "cpuMsPerDelivery"), 2),
    String(r.delivery.filter((run) => run.target === target).reduce((n, run) => n + run.deliveries, 0)),
  ]);
  const dRatio = (a: TargetName, b: TargetName) => [
    `${labelOf(a)} ÷ ${labelOf(b)}`,
    ratio(dm(a, "perSecond"), dm(b, "perSecond")),
    ratio(dm(a, "cpuMsPerDelivery"), dm(b, "cpuMsPerDelivery")),
    "",
  ];
  for (const target of DELIVERY_TARGETS) if (target !== "baseline") dRows.push(dRatio(target, "baseline"));
  if (AGAINST !== undefined) dRows.push(dRatio("relay", "main"));
  verdicts.push(
    targetRow(
      "Consumer CPU per delivery ÷ bare consumer",
      `≤ ${CONSUMER_CPU_LIMIT.toFixed(2)}×`,
      [dm("relay", "cpuMsPerDelivery") / dm("baseline", "cpuMsPerDelivery")],
      (v) => v <= CONSUMER_CPU_LIMIT,
      CONSUMER_CPU_LIMIT,
    ),
  );
  if (AGAINST !== undefined) {
    verdicts.push(
      targetRow(
        `Delivery rate ÷ ${labelOf("main")}`,
        `≥ ${AGAINST_DELIVERY_LIMIT.toFixed(2)}×`,
        [dm("relay", "perSecond") / dm("main", "perSecond")],
        (v) => v >= AGAINST_DELIVERY_LIMIT,
        AGAINST_DELIVERY_LIMIT,
      ),
    );
  }
  sections.push(
    `## 3. Delivery: the consumers alone\n\n${DELIVERY_CALLS} calls a round (baseline: \`POST /enqueue?count=${FANOUT}\`) queue up while the receiver holds its answers, then it answers at once: deliveries/s = arrivals ÷ (last − first arrival); *CPU ms/delivery* from the release to the last arrival. ${DELIVERY_ROUNDS} round(s); batches of 10. The relays' consumers write the ledger meanwhile, which locally shares their one workerd thread: the rate ÷ baseline is reported, the CPU ratio is the target.\n\n` +
      table(["consumer", "deliveries/s", "CPU ms/delivery", "deliveries"], dRows),
  );

  // 4. Growth
  const shapes = [...COUNT_SHAPES, ...SIZE_SHAPES];
  const g = shapes.map((s) => r.growth.find((point) => point.label === s.label)!);
  const mem = shapes.map((s) => r.memory.find((point) => point.label === s.label)!);
  const nodeMs = mem.map((point) => Object.values(point.steps).reduce((a, b) => a + b, 0));
  const flagged = (part: number[]) => [
    ...superlinear(
      part.slice(0, COUNT_SHAPES.length),
      g.slice(0, COUNT_SHAPES.length).map((x) => x.bodyBytes),
    ),
    ...superlinear(
      part.slice(COUNT_SHAPES.length),
      g.slice(COUNT_SHAPES.length).map((x) => x.bodyBytes),
    ),
  ];
  const nodeFlags = flagged(nodeMs);
  const latencyFlags = flagged(g.map((x) => x.p50));
  const growthRows = g.map((point, i) => [
    point.label,
    bytes(point.bodyBytes),
    String(point.status),
    fmt(point.p50, 1) + latencyFlags[i],
    fmt(point.max, 1),
    fmt(nodeMs[i]!, 3) + nodeFlags[i],
    times(mem[i]!.retainedBytes / point.bodyBytes),
  ]);
  sections.push(
    `## 4. Growth with call size\n\n*p50/max ms*: the relay under \`wrangler dev\`, one call at a time, ${QUICK ? 5 : 15} per shape. *Node ms*: the door's read and verify (\`readSignedBody\`), parse, match, plan and JSON in Node; *held*: what one call keeps reachable when enqueued (bench/growth-memory.ts). ⚠: grew > 1.25× faster than the body.\n\n` +
      table(["call", "body", "HTTP", "p50 ms", "max ms", "Node ms", "held ÷ body"], growthRows),
  );

  // 5. The ledger
  const gbOf = (bytesPerCall: number) => (bytesPerCall * DAY_CALLS * RETENTION_DAYS) / 1e9;
  const at3 = r.ledgerWrites.filter((w) => w.callsPerBatch !== FULL_LEDGER_BATCH);
  verdicts.push(
    targetRow(
      "D1 bytes per standard call",
      `≤ ${D1_BYTES_LIMIT}`,
      [r.stored.bytesPerCall],
      (v) => v <= D1_BYTES_LIMIT,
      D1_BYTES_LIMIT,
    ).map((cell, i) => (i === 2 ? fmt(r.stored.bytesPerCall, 0) : cell)),
    [
      `D1 at ${DAY_CALLS / 1000}k calls/day × ${RETENTION_DAYS} days, standard / OrderCreated call`,
      "≤ 5 GB (D1: 10 GB)",
      at3.map((w) => `${gbOf(w.bytesPerCall).toFixed(2)} GB`).join(" / "),
      verdict(at3.every((w) => gbOf(w.bytesPerCall) <= 5)),
    ],
  );
  const s = r.r2Standard;
  const classA = s.texts / Math.max(1, s.calls);
  verdicts.push([
    "R2 operations per standard call",
    "measured",
    `Class A ${fmt(classA, 3)} (≤ 1), Class B 0`,
    "reported",
  ]);
  const writeRows = r.ledgerWrites.map((w) => [
    w.label,
    String(w.callsPerBatch),
    fmt(w.deliveriesPerCall, 1),
    `${fmt(w.medianMs, 1)} / ${fmt(w.p95Ms, 1)}`,
    fmt((w.callsPerBatch / w.medianMs) * 1000, 0),
    fmt(w.rowsWrittenPerCall, 1),
    fmt(w.bytesPerCall, 0),
    `${gbOf(w.bytesPerCall).toFixed(2)} GB`,
  ]);
  const rowsText = Object.entries(r.stored.rowsPerCall)
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${name.replace(/^ledger_/, "")} ${fmt(n, 0)}`)
    .join(", ");
  const backlogText =
    r.backlog === undefined
      ? "The 10,000-call backlog runs in full runs only."
      : `**A ${r.backlog.calls.toLocaleString("en")}-call backlog** (${r.backlog.deliveries.toLocaleString("en")} deliveries held by the receiver, then released): drained in ${fmt(r.backlog.drainSeconds, 1)} s (${fmt(r.backlog.perSecond, 0)} deliveries/s); the ledger showed them all delivered ${fmt(r.backlog.ledgerLagSeconds, 1)} s after the last arrival.`;
  sections.push(
    `## 5. The ledger (D1 and R2)\n\nbench/ledger-worker runs the relay's planner and ledger statements on the local D1, ${r.ledgerWrites[0]?.calls ?? 0} calls a row, one \`db.batch\` per batch of calls (3: a consumer batch; ${FULL_LEDGER_BATCH}: a full ledger queue batch). *rows written*: D1's count (index entries included, as billed); *bytes*: growth of \`size_after\`; *calls/s*: calls ÷ median batch time.\n\n` +
      table(
        [
          "call",
          "calls/batch",
          "deliveries",
          "ms/batch p50 / p95",
          "calls/s",
          "rows written/call",
          "bytes/call",
          "at 100k/day",
        ],
        writeRows,
      ) +
      `\n\nThe relay's own ledger after the HTTP runs (${r.stored.calls.toLocaleString("en")} standard calls): **${fmt(r.stored.bytesPerCall, 0)} D1 bytes per call** (the file ÷ calls); rows per call: ${rowsText}. Its R2 bucket: ${s.texts} objects of call texts (${fmt(s.textBytes / Math.max(1, s.calls), 0)} B a call, deflated), ${s.waiting} records waiting, ${s.claims} claims. R2 operations are counted from the local bucket's object index (v3/r2 in the state folder): each put makes a new key and nothing here deletes, so Class A puts = objects; reads (Class B) come only from claims, traces and resends, which standard calls do not use.\n\n${backlogText}`,
  );

  // 6. Flow control
  const { limited, backlog: held } = r.flow;
  const rateRatio = limited.measuredPerSecond / limited.perSecond;
  verdicts.push([
    `Limited destination's rate over ${limited.windowSeconds} s`,
    "±10 % of its limit, 0 lost, 0 extra",
    `${fmt(limited.measuredPerSecond, 1)}/s of ${limited.perSecond}/s, ${limited.lost} lost, ${limited.extraAttempts} extra`,
    verdict(Math.abs(rateRatio - 1) <= 0.1 && limited.lost === 0 && limited.extraAttempts === 0),
  ]);
  verdicts.push([
    `Paused destination's ${held.deliveries.toLocaleString("en")} held deliveries, resumed`,
    `gate's order (≤ ${MAX_CONNECTIONS - 1} off), 0 lost, 0 extra`,
    `${fmt(held.drainSeconds, 1)} s, ${held.inOrder ? "in order" : `≤ ${held.maxDisplacement} off`}, ${held.lost} lost, ${held.extraAttempts} extra`,
    verdict(held.lost === 0 && held.extraAttempts === 0 && held.maxDisplacement <= MAX_CONNECTIONS - 1),
  ]);
  sections.push(
    `## 6. Flow control (bench/flow.ts)\n\nA destination limited to ${limited.perSecond}/s offered ${limited.offeredPerSecond}/s for ${limited.windowSeconds} s; a paused one holding ${held.deliveries.toLocaleString("en")} deliveries, then resumed. *extra*: requests beyond one a delivery, or not attempt 1.\n\n` +
      table(
        ["run", "measured", "delivered", "lost", "extra", "order"],
        [
          [
            `${limited.perSecond}/s limit, ${limited.offeredPerSecond}/s offered`,
            `${fmt(limited.measuredPerSecond, 1)}/s (${rateRatio.toFixed(3)}×)`,
            String(limited.delivered),
            String(limited.lost),
            String(limited.extraAttempts),
            "–",
          ],
          [
            `${held.deliveries.toLocaleString("en")} held, resumed`,
            `held in ${fmt(held.holdSeconds, 1)} s, drained in ${fmt(held.drainSeconds, 1)} s (${fmt(held.perSecond, 0)}/s)`,
            String(held.deliveries - held.lost),
            String(held.lost),
            String(held.extraAttempts),
            held.inOrder ? "exact" : `≤ ${held.maxDisplacement} off`,
          ],
        ],
      ),
  );

  // 7. Large calls
  const L = r.large;
  const lat = (name: LargeName) => L.latency.find((l) => l.name === name)!;
  const memOf = (name: LargeName) => L.memory.find((m) => m.name === name);
  const largeRatio = lat("relay-nodevtools").p50 / lat("bare-nodevtools").p50;
  const peakText = (values: readonly number[] | undefined) =>
    values === undefined || values.length === 0
      ? "–"
      : `${times(values[0]! / PEAK_BYTES)} / ${times(median(values) / PEAK_BYTES)}`;
  const largeRows = (["relay-nodevtools", "bare-nodevtools", "relay", "bare"] as const).map((name) => [
    largeLabel(name) + (lat(name).unexpected > 0 ? ` (${lat(name).unexpected} not 202!)` : ""),
    fmt(lat(name).p50, 0),
    fmt(lat(name).p95, 0),
    name.startsWith("relay") ? ratio(lat(name).p50, lat(name === "relay" ? "bare" : "bare-nodevtools").p50) : "",
    peakText(memOf(name)?.door),
    peakText(memOf(name)?.withDeliveries),
  ]);
  verdicts.push(
    targetRow(
      "5 MB call p50 ÷ bare R2 worker, both no devtools",
      `≤ ${LARGE_LIMIT.toFixed(2)}×`,
      [largeRatio],
      (v) => v <= LARGE_LIMIT,
      LARGE_LIMIT,
    ),
    [`${REFUSED_BYTES / 1024 / 1024} MiB call`, "413", String(L.refusedStatus), verdict(L.refusedStatus === 413)],
  );
  const relayDoor = memOf("relay-nodevtools")?.door ?? [];
  const bareDoor = memOf("bare-nodevtools")?.door ?? [];
  verdicts.push([
    `Door's peak memory growth at ${PEAK_BYTES / 1024 / 1024} MiB, relay / bare R2 worker`,
    "measured",
    `${times(relayDoor[0]! / PEAK_BYTES)} / ${times(bareDoor[0]! / PEAK_BYTES)} the body (first call), median ${times(median(relayDoor) / PEAK_BYTES)} / ${times(median(bareDoor) / PEAK_BYTES)}`,
    "reported",
  ]);
  const perLarge = (n: number) => fmt(n / Math.max(1, L.r2.calls), 2);
  sections.push(
    `## 7. Large calls\n\nSigned ${(LARGE_BYTES / 1e6).toFixed(0)} MB calls (the standard call plus a padded OrderCreated, claimed; two of three deliveries carry it), one at a time to each Worker in turn, each call's deliveries arriving before the next; ${L.latency[0]!.calls} timed calls per Worker. The bare R2 worker (bench/baseline-r2) streams the body into R2 with one \`put()\` and enqueues a pointer; its consumer posts the object three times. *Peak ÷ body*: the workerd process's peak resident set (VmHWM, reset through /proc/<pid>/clear_refs) above its resident set before a 10 MiB call, until the answer (*door*) or the deliveries, for the first of ${L.memory[0]?.door.length ?? 0} calls / their median (a process keeps what it took, so later calls grow it less). The local R2 runs in the same process.\n\n` +
      table(["Worker", "5 MB p50 ms", "p95 ms", "÷ bare", "door peak ÷ body", "with deliveries"], largeRows) +
      `\n\nAn ${REFUSED_BYTES / 1024 / 1024} MiB call was answered ${L.refusedStatus}. R2 per large call: ${perLarge(L.r2.bodies)} put of its body, ${perLarge(L.r2.claims)} other claims, a share of the ledger's text objects (${L.r2.texts} for ${L.r2.calls} large and ${WARM_SMALL_CALLS} small calls), and a get per delivery carrying the claim (2; from src/payloads.ts, as the local R2 counts no reads).`,
  );

  // 8. Shaping deliveries
  const { coalesce: co, order: or, transform: tr } = r.shaping;
  const coalesceLimit = Math.round(co.calls * COALESCE_SHARE_LIMIT);
  const orderRatio = or.ordered.perSecond / or.unordered.perSecond;
  const storm = `${co.calls.toLocaleString("en")} BalanceChanged on ${co.products} products in ${co.seconds} s, ${co.windowSeconds} s window`;
  const orderRun = `${or.keys.toLocaleString("en")} keys × ${or.perKey}, ${fmt(or.failureShare * 100, 0)} % first attempts failing`;
  verdicts.push(
    [
      `Coalescing ${storm}`,
      `≤ ${coalesceLimit} deliveries, 0 stale, 0 missing`,
      `${co.deliveries} deliveries, ${co.stale} stale, ${co.lastStateMissing} missing`,
      verdict(co.deliveries <= coalesceLimit && co.stale === 0 && co.lastStateMissing === 0),
    ],
    [
      `Order per key, ${orderRun}: ordered ÷ unordered rate`,
      `≥ ${ORDER_LIMIT.toFixed(2)}×, 0 out of order`,
      `${measured(orderRatio, ORDER_LIMIT)}, ${or.outOfOrder} out of order`,
      verdict(orderRatio >= ORDER_LIMIT && or.outOfOrder === 0),
    ],
    targetRow(
      "10-field JSONata mapping, CPU ms per notification (Node)",
      `≤ ${TRANSFORM_MS_LIMIT}`,
      [tr.cpuMsPerNotification],
      (v) => v <= TRANSFORM_MS_LIMIT,
      TRANSFORM_MS_LIMIT,
    ).map((cell, i) => (i === 2 ? fmt(tr.cpuMsPerNotification, 3) : cell)),
    [
      "Consumer rate with that transform ÷ without",
      "measured",
      ratio(tr.withPerSecond, tr.withoutPerSecond),
      "reported",
    ],
  );
  sections.push(
    `## 8. Shaping deliveries (bench/shaping.ts)\n\nEach run starts its own relay (no devtools) and receiver. *Stale*: arrived after a newer balance of its product; *missing*: products whose last balance never arrived; *rate*: delivered ÷ (last − first arrival), the same calls failing their first attempt at both destinations (RETRY_SCHEDULE=1). Transform rates as in section 3, ${tr.deliveries} calls a round.\n\n` +
      table(
        ["run", "delivered", "measured"],
        [
          [
            `coalescing ${storm}`,
            `${co.deliveries} (${fmt((co.deliveries / co.calls) * 100, 1)} % of calls)`,
            `${co.stale} stale, ${co.lastStateMissing} missing; last delivery ${fmt(co.tailSeconds, 1)} s after the last call`,
          ],
          [
            `ordered, ${orderRun}`,
            String(or.ordered.delivered),
            `${fmt(or.ordered.perSecond, 0)}/s over ${fmt(or.ordered.seconds, 1)} s, ${or.outOfOrder} out of order`,
          ],
          [
            "unordered, the same calls",
            String(or.unordered.delivered),
            `${fmt(or.unordered.perSecond, 0)}/s over ${fmt(or.unordered.seconds, 1)} s`,
          ],
          [
            "consumer with / without a 10-field transform",
            `${tr.deliveries} each`,
            `${fmt(tr.withPerSecond, 0)} / ${fmt(tr.withoutPerSecond, 0)} deliveries/s (${ratio(tr.withPerSecond, tr.withoutPerSecond)})`,
          ],
        ],
      ),
  );

  // The cost per million calls, from the figures above.
  sections.push(costModel(r, classA, table));

  const verdictTable = table(["target", "wanted", "measured", "verdict"], verdicts);
  const m = r.machine;
  const machine = `${availableParallelism()} CPUs (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB; Node ${process.version}, wrangler ${version("wrangler")}, workerd ${version("workerd")}, autocannon ${version("autocannon")}. Run ${m.date.slice(0, 16)}Z, ${(m.seconds / 60).toFixed(0)} min, \`npm run bench${m.args === "" ? "" : ` -- ${m.args}`}\`. Other processes meanwhile: ${fmt(m.foreign.average, 2)} CPUs on average, ${fmt(m.foreign.busiest30s, 2)} in the busiest 30 s.`;
  let notes = "";
  try {
    notes = readFileSync(join(ROOT, "bench", "ANALYSIS.md"), "utf8").trim();
  } catch {
    notes = "";
  }
  const markdown = `# Benchmarks

Written by \`npm run bench\` (bench/run.ts); the analysis is bench/ANALYSIS.md; earlier runs are in git history.

## Targets

${verdictTable}

## Machine

${machine}

## Method

- **Reproduce**: \`npm ci && npm run bench -- --against <ref>\` (20–30 min on 2 cores); \`--quick\` checks that it runs; \`--render <file>\` rewrites this file from a run's saved figures.
- **Workers** on loopback, each with fresh local D1, R2, Queues and KV inside its workerd: *relay* (wrangler.toml as shipped, bench rules: three loopback destinations)${AGAINST === undefined ? "" : `, *${labelOf("main")}* (that commit, from a git worktree)`}, and *baseline* (bench/baseline: reads the body, enqueues it; its consumer makes the same three requests per call). *No devtools*: started through wrangler's API (scripts/lib/start-worker.ts), without the devtools session the \`wrangler dev\` command keeps on each isolate and relays every console line through; production has none.
- **Calls** are pre-signed, each with a fresh Id; the *standard call* is ~1.1 KB, two notifications, three deliveries. Receivers answer 200 on their own thread.
- **Figures**: medians over rounds, the Workers' order rotated per round. *CPU*: utime + stime of a Worker's whole process group (/proc), simulators and wrangler's Node included.

${sections.join("\n\n")}

${notes}
`;
  if (padded) return [verdictTable, "", ...sections.map((section) => section.replace(/^## /, "== "))].join("\n");
  return markdown;
}

/** The cost of a million standard calls, item by item, from the measured figures; and of a month of them. */
function costModel(r: Results, classA: number, table: typeof paddedTable): string {
  const million = 1e6;
  // Calls kept at any time when a million come in a month and each is kept RETENTION_DAYS.
  const kept = (million * RETENTION_DAYS) / 30.44;
  const cpu = median(
    r.ingress.filter((run) => run.target === "relay-nodevtools" && run.connections === 10).map((run) => run.cpuMs),
  );
  const rows = r.ledgerWrites.find((w) => w.label === "standard bench call")?.rowsWrittenPerCall ?? Number.NaN;
  const d1Gb = (r.stored.bytesPerCall * kept) / 1e9;
  const textBytes = r.r2Standard.textBytes / Math.max(1, r.r2Standard.calls);
  const r2Gb = (textBytes * kept) / 1e9;
  const items: { item: string; perCall: string; lo: number; hi: number; price: number; included: number }[] = [
    {
      item: "Workers requests",
      perCall: "1.3–3: the door, consumer batches",
      lo: 1.3 * million,
      hi: 3 * million,
      price: PRICE.request,
      included: INCLUDED.request,
    },
    {
      item: "Workers CPU ms",
      perCall: `≤ ${fmt(cpu, 1)} (all local CPU, section 1)`,
      lo: cpu * million,
      hi: cpu * million,
      price: PRICE.cpuMs,
      included: INCLUDED.cpuMs,
    },
    {
      item: "Queues operations",
      perCall: `9.9–12: (${FANOUT} + 0.3–1 messages) × 3`,
      lo: 9.9 * million,
      hi: 12 * million,
      price: PRICE.queueOp,
      included: INCLUDED.queueOp,
    },
    {
      item: "D1 rows written",
      perCall: fmt(rows, 1),
      lo: rows * million,
      hi: rows * million,
      price: PRICE.d1Row,
      included: INCLUDED.d1Row,
    },
    {
      item: "D1 storage, GB-month",
      perCall: `${fmt(r.stored.bytesPerCall, 0)} B, kept ${RETENTION_DAYS} days`,
      lo: d1Gb,
      hi: d1Gb,
      price: PRICE.d1GbMonth,
      included: INCLUDED.d1Gb,
    },
    {
      item: "R2 Class A (puts)",
      perCall: `${fmt(classA, 3)}–1 (a put per ledger batch)`,
      lo: classA * million,
      hi: million,
      price: PRICE.r2A,
      included: INCLUDED.r2A,
    },
    {
      item: "R2 Class B (gets)",
      perCall: "0",
      lo: 0,
      hi: 0,
      price: PRICE.r2B,
      included: INCLUDED.r2B,
    },
    {
      item: "R2 storage, GB-month",
      perCall: `${fmt(textBytes, 0)} B, kept ${RETENTION_DAYS} days`,
      lo: r2Gb,
      hi: r2Gb,
      price: PRICE.r2GbMonth,
      included: INCLUDED.r2Gb,
    },
  ];
  const range = (lo: number, hi: number, f: (n: number) => string) => (f(lo) === f(hi) ? f(lo) : `${f(lo)}–${f(hi)}`);
  const amount = (n: number) => (n >= 1e5 ? `${fmt(n / 1e6, 1)} M` : n >= 1e3 ? `${fmt(n / 1e3, 0)} k` : fmt(n, 2));
  const rowsOut = items.map((i) => [
    i.item,
    i.perCall,
    range(i.lo, i.hi, amount),
    range(i.lo * i.price, i.hi * i.price, usd),
    range(Math.max(0, i.lo - i.included) * i.price, Math.max(0, i.hi - i.included) * i.price, usd),
  ]);
  const total = (f: (i: (typeof items)[number]) => number) => items.reduce((sum, i) => sum + f(i), 0);
  rowsOut.push([
    "**total**",
    "",
    "",
    range(
      total((i) => i.lo * i.price),
      total((i) => i.hi * i.price),
      usd,
    ),
    `$5.00 plan + ${range(
      total((i) => Math.max(0, i.lo - i.included) * i.price),
      total((i) => Math.max(0, i.hi - i.included) * i.price),
      usd,
    )}`,
  ]);
  const largeKeptGb = (LARGE_BYTES * kept) / 1e9;
  return (
    `## Cost per million calls\n\nStandard calls, each delivery at its first attempt. Prices as published on ${PRICES_DATE}, check current: Workers $0.30/M requests, $0.02/M CPU ms; Queues $0.40/M operations; D1 $1.00/M rows written, $0.001/M read, $0.75/GB-month; R2 Class A $4.50/M, Class B $0.36/M, $0.015/GB-month. *a month*: a million calls in a month on Workers Paid, beyond its allowances (10 M requests, 30 M CPU ms, 1 M Queues operations, 50 M D1 rows, 5 GB; R2 1 M A, 10 M B, 10 GB). D1 rows read (one replay check per consumer batch) ≈ $0.\n\n` +
    table(["item", "per call", "per million calls", "cost", "a month"], rowsOut) +
    `\n\nA million ${(LARGE_BYTES / 1e6).toFixed(0)} MB calls add ${usd(million * PRICE.r2A)} of puts, ${usd(2 * million * PRICE.r2B)} of gets (two deliveries carry the claim) and ${usd(largeKeptGb * PRICE.r2GbMonth)} a month for the ${fmt(largeKeptGb / 1000, 1)} TB kept.`
  );
}
