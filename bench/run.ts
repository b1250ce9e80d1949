/**
 * `npm run bench`: every benchmark in one go, a table per section on stdout, and
 * BENCHMARKS.md written at the repository root (method, machine, figures, targets, analysis).
 * Load goes only to 127.0.0.1. Runs in about ten minutes on a 2-core machine (sections 5 and 6 included).
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import { join } from "node:path";
import { ROOT, startWranglerDev } from "../scripts/lib/wrangler-dev.ts";
import { MAX_CONNECTIONS } from "../src/delivery/slots.ts";
import { ROUNDS as CORE_ROUNDS, type CoreResults, runCore, type SignatureRow } from "./core.ts";
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
import { benchRules, SECRETS, signedCall } from "./lib/fixtures.ts";
import { type LedgerSize, ledgerSize } from "./lib/ledger-size.ts";
import { startReceiver } from "./lib/receiver.ts";
import { bytes, fmt, median, ratio, sleep, table } from "./lib/stats.ts";
import {
  AGAINST,
  isNoDevtools,
  labelOf,
  NO_DEVTOOLS,
  RELAY_NAMES,
  type RelayName,
  settingOf,
  startTargets,
  TARGET_NAMES,
  type TargetName,
} from "./lib/targets.ts";

const QUICK = process.argv.includes("--quick");
/** "No slower than main": runs on this 2-core machine move ±10 % between rounds, so that is the line. */
const AGAINST_LIMIT = 0.9;
/** Flow control's own line: destinations without limits deliver at least this fraction of main's rate. */
const AGAINST_DELIVERY_LIMIT = 0.95;
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

log("signature verification in workerd (bench/signature-worker)");
const signatureWorkerd = await measureSignatureInWorkerd();

log("ledger writes in workerd (bench/ledger-worker, local D1)");
const ledgerWrites = await measureLedgerInWorkerd();

let ingress: IngressRun[];
let delivery: DeliveryRun[];
let growth: GrowthPoint[];
let stored: LedgerSize;
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
  // What the relay's ledger holds for the standard calls of the runs above (before the growth calls).
  await sleep(5000);
  stored = ledgerSize(targets.all.relay.dev.persistTo);
  log(`ledger: ${stored.calls} calls, ${fmt(stored.bytesPerCall, 0)} bytes per call`);
  growth = await runGrowthHttp(targets.all.relay.dev, receiver, [...COUNT_SHAPES, ...SIZE_SHAPES], QUICK ? 5 : 15, log);
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

log("flow control: a rate-limited destination, and a backlog held by a paused one (bench/flow.ts)");
const flow = await runFlow(
  { perSecond: FLOW_RATE, seconds: QUICK ? 10 : 30, backlog: QUICK ? 1000 : HELD_BACKLOG },
  log,
);

const report = render({
  core,
  signatureWorkerd,
  memory,
  ingress,
  delivery,
  growth,
  ledgerWrites,
  stored,
  backlog,
  flow,
});
writeFileSync(join(ROOT, "BENCHMARKS.md"), report.markdown);
console.log(`\n${report.summary}\n\nWrote BENCHMARKS.md in ${((Date.now() - started) / 1000).toFixed(0)} s.`);

// ---------------------------------------------------------------------------------------------------

interface WorkerdSignatureRow {
  size: number;
  relayMicros: number;
  nodeMicros: number | null;
}

/** The same comparison on the Workers runtime: a bench-only Worker times both in workerd. */
async function measureSignatureInWorkerd(): Promise<WorkerdSignatureRow[]> {
  const worker = await tracked(startWranglerDev({ config: join(ROOT, "bench", "signature-worker", "wrangler.toml") }));
  try {
    const rows: WorkerdSignatureRow[] = [];
    for (const [size, iterations] of [
      [1024, 2000],
      [16 * 1024, 1000],
      [128 * 1024, 200],
      [1024 * 1024, 150],
    ] as const) {
      const response = await fetch(`${worker.url}/?size=${size}&iterations=${iterations}`, {
        signal: AbortSignal.timeout(120_000),
      });
      if (!response.ok) throw new Error(`signature worker answered ${response.status}: ${await response.text()}`);
      rows.push((await response.json()) as WorkerdSignatureRow);
    }
    return rows;
  } finally {
    await worker.stop();
  }
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
 * The consumer's ledger write, timed on the local D1 in workerd, for two shapes of call: the bench's standard
 * call (two ~480-byte notifications, three deliveries) and Extend's own OrderCreated sample (one notification,
 * two deliveries by rules.example.json), each through a fresh database.
 */
async function measureLedgerInWorkerd(): Promise<LedgerWrites[]> {
  const calls = QUICK ? 300 : 3000;
  const sample = readFileSync(join(ROOT, "fixtures", "extend", "OrderCreated.json"), "utf8");
  const shapes = [
    {
      label: "standard bench call",
      rules: benchRules("http://127.0.0.1:9"),
      bodies: Array.from({ length: calls }, () => signedCall().body.toString("utf8")),
    },
    {
      label: "Extend's OrderCreated sample",
      rules: JSON.parse(readFileSync(join(ROOT, "rules.example.json"), "utf8")) as unknown,
      bodies: Array.from({ length: calls }, () =>
        sample.replace(/"Id":"[0-9a-f]+"/, `"Id":"${crypto.randomUUID().replaceAll("-", "")}"`),
      ),
    },
  ];
  const results: LedgerWrites[] = [];
  for (const shape of shapes) {
    const worker = await tracked(startWranglerDev({ config: join(ROOT, "bench", "ledger-worker", "wrangler.toml") }));
    try {
      const response = await fetch(worker.url, {
        method: "POST",
        body: JSON.stringify({ rules: shape.rules, bodies: shape.bodies, callsPerBatch: 3 }),
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
  flow: { limited: LimitedRun; backlog: HeldBacklogRun };
  ledgerWrites: LedgerWrites[];
  stored: LedgerSize;
  backlog: BacklogRun | undefined;
  signatureWorkerd: WorkerdSignatureRow[];
  core: CoreResults;
  memory: MemoryPoint[];
  ingress: IngressRun[];
  delivery: DeliveryRun[];
  growth: GrowthPoint[];
}

/** A ratio for the Targets table: two decimals, or three where two would round onto the limit. */
function measured(value: number, limit: number): string {
  const two = value.toFixed(2);
  return `${Number(two) === limit && value !== limit ? value.toFixed(3) : two}×`;
}

function verdict(ok: boolean): string {
  return ok ? "met" : "**missed**";
}

function version(pkg: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version: string })
      .version;
  } catch {
    return "?";
  }
}

/** Flags steps whose cost grows more than 1.25× faster than the input from one point to the next. */
function superlinear(values: readonly number[], sizes: readonly number[]): string[] {
  return values.map((value, i) => {
    if (i === 0) return "";
    const grew = value / values[i - 1]!;
    const input = sizes[i]! / sizes[i - 1]!;
    return grew > 1.25 * input ? ` ⚠ ×${grew.toFixed(1)} for ×${input.toFixed(1)} input` : "";
  });
}

function render(r: Results): { markdown: string; summary: string } {
  const sections: string[] = [];
  const verdicts: string[][] = [];

  // Ingress: the relay as shipped is the headline; each operator setting gets its own rows and verdicts.
  const ingressRows: string[][] = [];
  const settingVerdicts = new Map<RelayName, string[][]>(RELAY_NAMES.map((name) => [name, []]));
  const againstVerdicts: string[][] = [];
  const noDevtoolsVerdicts: string[][] = [];
  const suffix = (name: RelayName) => (settingOf(name) === "" ? "" : `, ${settingOf(name)}`);
  for (const connections of CONNECTIONS) {
    const of = (target: TargetName) =>
      r.ingress.filter((run) => run.target === target && run.connections === connections);
    const m = (runs: IngressRun[], key: "rps" | "p50" | "p99" | "cpuMs" | "logLines") =>
      median(runs.map((run) => run[key]));
    const base = of("baseline");
    for (const name of TARGET_NAMES) {
      const runs = of(name);
      ingressRows.push([
        String(connections),
        labelOf(name),
        fmt(m(runs, "rps"), 0),
        fmt(m(runs, "p50"), 1),
        fmt(m(runs, "p99"), 1),
        fmt(m(runs, "cpuMs"), 2),
        fmt(m(runs, "logLines"), 1),
        `${runs.reduce((n, run) => n + run.requests, 0)}${runs.some((run) => run.unexpected + run.errors > 0) ? " (some not 202!)" : ""}${runs.every((run) => run.drained) ? "" : " (not all drained)"}`,
      ]);
    }
    /** A row of ratios, `runs` ÷ `base`, for every measured column. */
    const ratioRow = (label: string, runs: IngressRun[], base: IngressRun[]): string[] => [
      String(connections),
      label,
      ...(["rps", "p50", "p99", "cpuMs"] as const).map((key) => ratio(m(runs, key), m(base, key))),
      "",
      "",
    ];
    /** The door's two targets against a baseline: throughput and p99. */
    const doorVerdicts = (what: string, runs: IngressRun[], base: IngressRun[]): string[][] => {
      const rpsRatio = m(runs, "rps") / m(base, "rps");
      const p99Ratio = m(runs, "p99") / m(base, "p99");
      return [
        [`Ingress throughput ${what}`, "≥ 0.80× baseline", measured(rpsRatio, 0.8), verdict(rpsRatio >= 0.8)],
        [`Ingress p99 ${what}`, "≤ 1.25× baseline", measured(p99Ratio, 1.25), verdict(p99Ratio <= 1.25)],
      ];
    };
    for (const name of RELAY_NAMES) {
      ingressRows.push(ratioRow(`${labelOf(name)} ÷ baseline`, of(name), base));
      settingVerdicts.get(name)!.push(...doorVerdicts(`c=${connections}${suffix(name)}`, of(name), base));
    }
    // The same comparison with no devtools session on either isolate, as in production.
    const [relay, bare] = [of("relay-nodevtools"), of("baseline-nodevtools")];
    ingressRows.push(ratioRow(`${labelOf("relay-nodevtools")} ÷ ${labelOf("baseline-nodevtools")}`, relay, bare));
    noDevtoolsVerdicts.push(...doorVerdicts(`c=${connections}, both with no devtools session`, relay, bare));
    if (AGAINST !== undefined) {
      const relay = of("relay");
      const main = of("main");
      const rpsRatio = m(relay, "rps") / m(main, "rps");
      ingressRows.push(ratioRow(`relay ÷ ${labelOf("main")}`, relay, main));
      againstVerdicts.push([
        `Ingress throughput c=${connections} vs ${labelOf("main")}`,
        `≥ ${AGAINST_LIMIT.toFixed(2)}× (no slower, within noise)`,
        measured(rpsRatio, AGAINST_LIMIT),
        verdict(rpsRatio >= AGAINST_LIMIT),
      ]);
    }
  }
  for (const rows of settingVerdicts.values()) verdicts.push(...rows);
  verdicts.push(...noDevtoolsVerdicts);
  verdicts.push(...againstVerdicts);
  sections.push(
    `## 1. Ingress over HTTP (wrangler dev, autocannon)\n\nSigned ~1.1 KB calls, two notifications matching three routes to three destinations; the baseline reads the body and sends one queue message. *relay* is the relay as shipped (LOG_LEVEL=info: one log line per sender call at the door, and per delivery only what is not a first-time success; the ledger written by the consumers in one D1 batch per queue batch); *relay (LOG_LEVEL=warn)* is the same Worker and rules started with \`--var LOG_LEVEL:warn\` (logs only refusals, retries and dead letters); *relay, no devtools session* and *baseline, no devtools session* are the relay as shipped and the baseline without the devtools session of the \`wrangler dev\` command (see "Method"). Medians over ${ROUNDS} round(s) of ${DURATION_SECONDS} s per concurrency and target. *CPU ms/call* is the CPU time of all processes of that \`wrangler dev\` (workerd and wrangler's Node), from the start of the run until the call's ${FANOUT} deliveries reached the receiver, divided by the calls; *log lines/call* counts the Worker's JSON log lines in wrangler's output over the same span.\n\n` +
      table(["conns", "target", "req/s", "p50 ms", "p99 ms", "CPU ms/call", "log lines/call", "requests"], ingressRows),
  );

  // Core
  const sig = r.core.signature.map((row) => [
    bytes(row.size),
    fmt(row.relayMs * 1000, 1),
    fmt(row.nodeMs * 1000, 1),
    fmt(row.size / row.relayMs / 1000, 0),
    fmt(row.size / row.nodeMs / 1000, 0),
    ratio(row.nodeMs, row.relayMs),
  ]);
  // Per KB: the marginal cost of one more KB between the two largest bodies (fixed per-call costs cancel).
  const [small, large] = r.core.signature.slice(-2) as [SignatureRow, SignatureRow];
  const kb = (large.size - small.size) / 1024;
  const relayPerKb = ((large.relayMs - small.relayMs) / kb) * 1000;
  const nodePerKb = ((large.nodeMs - small.nodeMs) / kb) * 1000;
  sig.push([
    `per KB (${bytes(small.size)} → ${bytes(large.size)})`,
    fmt(relayPerKb, 3),
    fmt(nodePerKb, 3),
    fmt(1024 / relayPerKb, 0),
    fmt(1024 / nodePerKb, 0),
    ratio(nodePerKb, relayPerKb),
  ]);
  verdicts.push([
    "Signature per KB (marginal)",
    "≥ 0.70× node:crypto",
    measured(nodePerKb / relayPerKb, 0.7),
    verdict(nodePerKb / relayPerKb >= 0.7),
  ]);
  const sigWorkerd = r.signatureWorkerd.map((row) => [
    bytes(row.size),
    fmt(row.relayMicros, 1),
    row.nodeMicros === null ? "–" : fmt(row.nodeMicros, 1),
    row.nodeMicros === null ? "–" : ratio(row.nodeMicros, row.relayMicros),
  ]);
  for (const row of r.signatureWorkerd) {
    if (row.nodeMicros === null) continue;
    const speed = row.nodeMicros / row.relayMicros;
    verdicts.push([
      `Signature in workerd, ${bytes(row.size)}`,
      "≥ 0.70× node:crypto",
      measured(speed, 0.7),
      verdict(speed >= 0.7),
    ]);
  }
  const first = r.core.matching[0]!;
  const match = r.core.matching.map((row) => [
    String(row.routes),
    fmt(row.ns, 0),
    String(row.matched),
    ratio(row.ns, first.ns),
  ]);
  const last = r.core.matching.at(-1)!;
  verdicts.push([
    "Matching 10,000 vs 10 routes",
    "≤ 2×",
    measured(last.ns / first.ns, 2),
    verdict(last.ns / first.ns <= 2),
  ]);
  const p = r.core.planning;
  sections.push(
    `## 2. Core costs (Node ${process.version}, tinybench)\n\nMedian per-operation latency, median of ${CORE_ROUNDS} tinybench runs.\n\n### Signature verification\n\n\`verifySignature\` (src/extend/signature.ts, WebCrypto, key imported once per secret) against a bare \`createHmac\` + \`timingSafeEqual\`. The target is per KB (the last row: the marginal cost of one more KB, where fixed per-call costs cancel); per call, small bodies in Node pay WebCrypto's fixed cost of an async call, which workerd does not (next table).\n\n` +
      table(["body", "relay µs", "node:crypto µs", "relay MB/s", "node:crypto MB/s", "relay speed"], sig) +
      `\n\nThe same comparison inside workerd (bench/signature-worker: \`node:crypto\` through nodejs_compat; median of 5 batches, µs per call from \`Date.now()\` over each batch):\n\n` +
      table(["body", "relay µs", "node:crypto µs", "relay speed"], sigWorkerd) +
      `\n\n### Matching one notification\n\nAn OrderCreated in warehouse YX against N routes of which three can match (the rest name other Actions, warehouses or prefixes).\n\n` +
      table(["routes", "ns/match", "matched", "vs 10 routes"], match) +
      `\n\n### Planning a ${p.notifications}-notification call\n\n` +
      table(
        ["step", "ms/call"],
        [
          ["parseCall (UTF-8, outline of the sender's text, JSON.parse, Zod)", fmt(p.parseMs, 3)],
          ["for comparison: JSON.parse + Zod alone (no outline)", fmt(p.plainParseMs, 3)],
          [
            `fanOut + planMessages (message text included) + batchMessages → ${p.messages} messages in ${p.batches} batch(es)`,
            fmt(p.planMs, 3),
          ],
        ],
      ),
  );

  // Delivery
  const dRows: string[][] = [];
  const dm = (target: TargetName, key: "perSecond" | "cpuMsPerDelivery" | "logLinesPerDelivery") =>
    median(r.delivery.filter((run) => run.target === target).map((run) => run[key]));
  for (const target of DELIVERY_TARGETS) {
    dRows.push([
      labelOf(target),
      fmt(dm(target, "perSecond"), 0),
      fmt(dm(target, "cpuMsPerDelivery"), 2),
      fmt(dm(target, "logLinesPerDelivery"), 2),
      String(r.delivery.filter((run) => run.target === target).reduce((n, run) => n + run.deliveries, 0)),
    ]);
  }
  for (const target of DELIVERY_TARGETS) {
    if (target === "baseline" || isNoDevtools(target)) continue;
    const dRatio = dm(target, "perSecond") / dm("baseline", "perSecond");
    dRows.push([
      `${labelOf(target)} ÷ baseline`,
      ratio(dm(target, "perSecond"), dm("baseline", "perSecond")),
      ratio(dm(target, "cpuMsPerDelivery"), dm("baseline", "cpuMsPerDelivery")),
      "",
      "",
    ]);
    if (target === "main") continue;
    verdicts.push([
      `Delivery rate${suffix(target)}`,
      "≥ 0.80× baseline consumer",
      measured(dRatio, 0.8),
      verdict(dRatio >= 0.8),
    ]);
  }
  if (AGAINST !== undefined) {
    const dRatio = dm("relay", "perSecond") / dm("main", "perSecond");
    dRows.push([
      `relay ÷ ${labelOf("main")}`,
      ratio(dm("relay", "perSecond"), dm("main", "perSecond")),
      ratio(dm("relay", "cpuMsPerDelivery"), dm("main", "cpuMsPerDelivery")),
      "",
      "",
    ]);
    verdicts.push([
      `Delivery rate vs ${labelOf("main")} (destinations without limits)`,
      `≥ ${AGAINST_DELIVERY_LIMIT.toFixed(2)}×`,
      measured(dRatio, AGAINST_DELIVERY_LIMIT),
      verdict(dRatio >= AGAINST_DELIVERY_LIMIT),
    ]);
  }
  sections.push(
    `## 3. Delivery (queue consumer → loopback receiver)\n\n${DELIVERY_CALLS} calls per round through each Worker's front door (relays: signed standard calls, ${FANOUT} messages each; baseline: \`POST /enqueue?count=${FANOUT}\`, ${FANOUT} messages each) while the receiver holds its answers, so each consumer's first batch waits and the rest of the messages queue up; then the receiver is released and answers 200 at once, and deliveries/s = arrivals ÷ (last − first arrival). Only the consumer runs in that window (the relays' consumers write the ledger in it too: each call's record and every attempt). All consumers: batch size 10, batch timeout 1 s. Medians over ${DELIVERY_ROUNDS} round(s), in an order rotated per round. *CPU ms/delivery* is all CPU of that \`wrangler dev\` from the release to the last arrival, divided by the deliveries; *log lines/delivery* likewise.\n\n` +
      table(["consumer", "deliveries/s", "CPU ms/delivery", "log lines/delivery", "deliveries"], dRows),
  );

  // Growth
  const growthRows = (shapes: Shape[]) => {
    const labels = shapes.map((s) => s.label);
    const g = labels.map((label) => r.growth.find((point) => point.label === label)!);
    const mem = labels.map((label) => r.memory.find((point) => point.label === label)!);
    const sizes = g.map((point) => point.bodyBytes);
    const flags = {
      latency: superlinear(
        g.map((point) => point.p50),
        sizes,
      ),
      retained: superlinear(
        mem.map((point) => point.retainedBytes),
        sizes,
      ),
      parse: superlinear(
        mem.map((point) => point.steps.parse),
        sizes,
      ),
      match: superlinear(
        mem.map((point) => point.steps.match),
        sizes,
      ),
      plan: superlinear(
        mem.map((point) => point.steps.plan),
        sizes,
      ),
    };
    return g.map((point, i) => [
      point.label,
      bytes(point.bodyBytes),
      String(point.status),
      fmt(point.p50, 1) + flags.latency[i],
      fmt(point.max, 1),
      fmt(mem[i]!.steps.verify, 3),
      fmt(mem[i]!.steps.parse, 3) + flags.parse[i],
      fmt(mem[i]!.steps.match, 3) + flags.match[i],
      fmt(mem[i]!.steps.plan, 3) + flags.plan[i],
      fmt(mem[i]!.steps.serialize, 3),
      bytes(mem[i]!.retainedBytes) + flags.retained[i],
      `${(mem[i]!.retainedBytes / point.bodyBytes).toFixed(1)}×`,
    ]);
  };
  const growthHeader = [
    "call",
    "body",
    "HTTP",
    "p50 ms",
    "max ms",
    "verify ms",
    "parse ms",
    "match ms",
    "plan ms",
    "JSON ms",
    "held",
    "held ÷ body",
  ];
  const countRows = growthRows(COUNT_SHAPES);
  const sizeRows = growthRows(SIZE_SHAPES);
  const allFlags = [...countRows, ...sizeRows].some((row) => row.some((cell) => cell.includes("⚠")));
  sections.push(
    `## 4. Growth with call size\n\n*p50/max ms*: the relay under wrangler dev, one call at a time, median and slowest of the ${QUICK ? 5 : 15} calls per shape (each shape's deliveries run beside its later calls). *verify … JSON ms*: the same pipeline functions in Node (median time per call from bench/growth-memory.ts's own timing loop; *JSON* is the serialisation sendBatch performs). *held*: bytes of V8 heap + ArrayBuffers still reachable, after a full GC, while one call's parsed envelope, planned messages and their JSON are held (what one call keeps alive at the moment it is enqueued; the raw body is excluded). ⚠ marks a step that grew more than 1.25× faster than the body from the previous row.\n\n### Notifications per call (~480 B each)\n\n` +
      table(growthHeader, countRows) +
      `\n\n### Body size\n\n2 notifications up to 128 KB; 10 of ~100 KB for 1 MiB (one notification must fit a 128 KB queue message).\n\n` +
      table(growthHeader, sizeRows) +
      `\n\n${allFlags ? "Steps marked ⚠ grew faster than linearly between those two rows; see the analysis." : "No step grew faster than linearly."}`,
  );

  // The ledger
  const DAY_CALLS = 100_000;
  const RETENTION_DAYS = 14;
  const gbOf = (bytesPerCall: number) => (bytesPerCall * DAY_CALLS * RETENTION_DAYS) / 1e9;
  for (const w of r.ledgerWrites) {
    verdicts.push([
      `Ledger at ${DAY_CALLS.toLocaleString("en")} calls a day kept ${RETENTION_DAYS} days, ${w.label}`,
      "far below D1's 10 GB (≤ 5 GB)",
      `${gbOf(w.bytesPerCall).toFixed(2)} GB`,
      verdict(gbOf(w.bytesPerCall) <= 5),
    ]);
  }
  const writeRows = r.ledgerWrites.map((w) => [
    w.label,
    bytes(w.bodyBytes),
    fmt(w.deliveriesPerCall, 1),
    fmt(w.medianMs, 2),
    fmt(w.p95Ms, 2),
    fmt(w.rowsWrittenPerCall, 1),
    fmt(w.bytesPerCall, 0),
    `${gbOf(w.bytesPerCall).toFixed(2)} GB`,
  ]);
  const rows = Object.entries(r.stored.rowsPerCall).map(([tableName, n]) => [tableName, fmt(n, 2)]);
  const backlogText =
    r.backlog === undefined
      ? "The backlog run is part of full runs only."
      : table(
          ["calls", "deliveries", "drain s", "deliveries/s", "ledger lag s"],
          [
            [
              String(r.backlog.calls),
              String(r.backlog.deliveries),
              fmt(r.backlog.drainSeconds, 1),
              fmt(r.backlog.perSecond, 0),
              fmt(r.backlog.ledgerLagSeconds, 1),
            ],
          ],
        );
  sections.push(
    `## 5. The ledger (D1)\n\n### The consumer's write, rows and bytes\n\nbench/ledger-worker runs the relay's own planner and ledger statements (src/delivery/planner.ts, src/ledger/write.ts) on the local D1 in workerd for ${r.ledgerWrites[0]?.calls ?? 0} calls of each shape, every delivery delivered at its first attempt, ${r.ledgerWrites[0]?.callsPerBatch ?? 3} calls per consumer batch (about ten queue messages), one \`db.batch\` each. *rows written* is D1's own count (each index entry counts, as D1 bills it); *bytes* is the database's growth (D1's \`size_after\`), indexes included; *at 100k/day* is bytes × ${DAY_CALLS.toLocaleString("en")} calls × ${RETENTION_DAYS} days (LEDGER_RETENTION_DAYS' default), against D1's 10 GB per database.\n\n` +
      table(
        [
          "call",
          "body",
          "deliveries",
          "D1 ms per batch (median)",
          "p95",
          "rows written per call",
          "bytes per call",
          "at 100k/day",
        ],
        writeRows,
      ) +
      `\n\nThe shipped relay's own ledger after the HTTP runs above (its local D1 file, ${r.stored.calls} standard calls): ${fmt(r.stored.bytesPerCall, 0)} bytes per call, free pages included, and these rows per call:\n\n` +
      table(["table", "rows per call"], rows) +
      `\n\n### A 10,000-call backlog\n\nThe receiver holds its answers while ${BACKLOG_CALLS.toLocaleString("en")} standard calls go through the shipped relay's door (${(BACKLOG_CALLS * FANOUT).toLocaleString("en")} deliveries queue up); then it answers everything at once. *drain s*: from the release to the last arrival; *ledger lag s*: from the last arrival until \`GET /admin/stats\` counts every delivery delivered.\n\n${backlogText}`,
  );

  // Flow control
  const { limited, backlog: held } = r.flow;
  const rateRatio = limited.measuredPerSecond / limited.perSecond;
  verdicts.push([
    `Limited destination's rate over ${limited.windowSeconds} s`,
    "within 10 % of rateLimit, 0 lost, 0 extra attempts",
    `${fmt(limited.measuredPerSecond, 1)}/s of ${limited.perSecond}/s (${rateRatio.toFixed(2)}×), ${limited.lost} lost, ${limited.extraAttempts} extra`,
    verdict(Math.abs(rateRatio - 1) <= 0.1 && limited.lost === 0 && limited.extraAttempts === 0),
  ]);
  verdicts.push([
    `${held.deliveries.toLocaleString("en")}-delivery backlog of a paused destination, after resume`,
    "drains in order (started in the gate's order, ≤ 6 in flight: no arrival more than 5 places off), 0 lost, 0 extra attempts; time reported",
    `${fmt(held.drainSeconds, 1)} s (${fmt(held.perSecond, 0)}/s), ${held.inOrder ? "in order" : `at most ${held.maxDisplacement} places off order`}, ${held.lost} lost, ${held.extraAttempts} extra`,
    verdict(held.lost === 0 && held.extraAttempts === 0 && held.maxDisplacement <= MAX_CONNECTIONS - 1),
  ]);
  sections.push(
    `## 6. Flow control (bench/flow.ts)\n\nA relay of its own under \`wrangler dev\` and a loopback receiver that records every request's delivery id, attempt and arrival.\n\n` +
      `**A rate-limited destination** (\`rateLimit: {perSecond: ${limited.perSecond}}\`) gets ${limited.expected.toLocaleString("en")} calls, one delivery each, at ${limited.offeredPerSecond}/s for ${limited.windowSeconds} s, more than its limit, so its gate holds the excess and sends it itself. *measured* counts arrivals in the ${limited.windowSeconds} s from the first one; *lost* are deliveries that never arrived; *extra* counts requests beyond one per delivery and any with an attempt other than 1.\n\n` +
      table(
        ["limit", "offered", "measured", "÷ limit", "delivered", "lost", "extra attempts"],
        [
          [
            `${limited.perSecond}/s`,
            `${limited.offeredPerSecond}/s`,
            `${fmt(limited.measuredPerSecond, 1)}/s`,
            `${rateRatio.toFixed(3)}×`,
            String(limited.delivered),
            String(limited.lost),
            String(limited.extraAttempts),
          ],
        ],
      ) +
      `\n\n**A paused destination's backlog**: the destination (no limits, \`mode: single\`) is paused by hand, ${Math.ceil(held.deliveries / 100)} calls of 100 notifications go through the door, and once its gate holds all ${held.deliveries.toLocaleString("en")} deliveries it is resumed. *hold s*: from the first call until the gate held them all; *drain s*: from the resume until the last arrival; *order*: the arrivals against the gate's own order of what it held (its rows by sequence, read from the Durable Object's SQLite file).\n\n` +
      table(
        ["deliveries", "hold s", "drain s", "deliveries/s", "order", "lost", "extra attempts"],
        [
          [
            held.deliveries.toLocaleString("en"),
            fmt(held.holdSeconds, 1),
            fmt(held.drainSeconds, 1),
            fmt(held.perSecond, 0),
            held.inOrder ? "exact" : `at most ${held.maxDisplacement} places off`,
            String(held.lost),
            String(held.extraAttempts),
          ],
        ],
      ) +
      `\n\nThe delivery rate of destinations without limits, against main, is section 3's *relay ÷ main* row.`,
  );

  const verdictTable = table(["target", "wanted", "measured", "verdict"], verdicts);
  const machine = [
    `- CPUs: ${availableParallelism()} (\`nproc\`), ${cpus()[0]?.model ?? "?"}`,
    `- Memory: ${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `- Node ${process.version}, wrangler ${version("wrangler")}, workerd ${version("workerd")}, autocannon ${version("autocannon")}, tinybench ${version("tinybench")}`,
    `- Run: ${new Date().toISOString()}, ${((Date.now() - started) / 1000).toFixed(0)} s${QUICK ? " (--quick)" : ""}`,
  ].join("\n");
  let notes = "";
  try {
    notes = readFileSync(join(ROOT, "bench", "ANALYSIS.md"), "utf8").trim();
  } catch {
    notes = "";
  }
  const markdown = `# Benchmarks

Written by \`npm run bench\` (bench/run.ts); do not edit by hand — the analysis section comes from bench/ANALYSIS.md.

## Targets

${verdictTable}

## Machine

${machine}

## Method

- **HTTP runs** start ${TARGET_NAMES.length - NO_DEVTOOLS.length} Workers under \`wrangler dev\` with scripts/lib/wrangler-dev.ts, each with its own fresh
  local state: the relay (this repository's wrangler.toml as shipped, bench rules pushed with \`PUT /admin/rules\`),
  the same relay with ${RELAY_NAMES.filter((name) => settingOf(name) !== "")
    .map((name) => `\`${settingOf(name)}\``)
    .join(" and with ")}
  (as \`--var\`s; same rules, everything else equal), and the baseline (bench/baseline/: own wrangler.toml with the
  relay's compatibility_date, one queue producer and a consumer with the relay's batch settings). All run all the
  time; they are loaded one after the other, rotating the order per round and concurrency so that none always runs first.
- **No devtools session**: two more Workers for section 1 only, the relay as shipped and the baseline, started through
  wrangler's own API instead of the \`wrangler dev\` command (scripts/lib/start-worker.ts: \`unstable_startWorker\` with
  \`dev.inspector: false\`). Same local runtime, config, bindings, rules and log output; what is missing is the devtools
  session that the command keeps on each isolate and relays every console line through, which production does not have.
${
  AGAINST === undefined
    ? ""
    : `- **${labelOf("main")}** is the relay as commit \`${AGAINST}\` has it (its own wrangler.toml as shipped there, checked out
  into a temporary git worktree), loaded beside this tree's relay in the same rounds, with the same rules and calls.
`
}- **Load**: autocannon from this process; every request takes the next call from a pool of distinct, pre-signed
  bodies (fresh Id and signature each, so the relay's dedupe sees new Ids), so the generator only copies bytes.
- **Consumers are live in every Worker**, as in production: each relay's DELIVERIES consumer delivers each call's
  three messages to a loopback receiver (own thread, answers 200 at once, counts arrivals per Worker), and the
  baseline's consumer makes the same three requests per call (three concurrent fetches per message), so every
  Worker carries the same downstream traffic. Each ingress run waits until its deliveries have arrived before the next starts, so one run's backlog
  never runs into the next; CPU per call covers ingress and delivery. The delivery run (section 3) times the consumers alone.
- **Latency** per response as autocannon reports it (float ms), percentiles over all responses of a run; every figure
  in a table is the median over rounds, except the *requests* and *deliveries* columns, which are totals.
- **Core** figures run the relay's functions directly in Node ${process.version} (tinybench).
- Load only ever goes to 127.0.0.1; the whole run is bounded (${ROUNDS} round(s), ${DURATION_SECONDS} s per load run).

${sections.join("\n\n")}

${notes}
`;
  const summary = [verdictTable, "", ...sections.map((s) => s.replace(/^## /, "== "))].join("\n");
  return { markdown, summary };
}
