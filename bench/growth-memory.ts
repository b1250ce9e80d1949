/**
 * Growth in Node (run by bench/run.ts as `node --expose-gc bench/growth-memory.ts <shapes JSON>`):
 * for each call shape, the time of each pipeline step the relay runs per call (the door's read of the body,
 * verified as it streams with `readSignedBody`, then parse, match, plan, and the JSON that sendBatch serialises), and the memory one call holds at the moment it is
 * handed to the queue: V8 heap + ArrayBuffers still reachable after a full GC, minus the same before.
 * Prints one JSON document on stdout.
 */
import { getHeapStatistics } from "node:v8";
import { fanOut, planMessages } from "../src/delivery/planner.ts";
import { parseCall } from "../src/extend/envelope.ts";
import { parseSignatureHeader } from "../src/extend/signature.ts";
import { readSignedBody } from "../src/ingress/body.ts";
import { batchMessages } from "../src/queues/limits.ts";
import { compileRules } from "../src/rules/matcher.ts";
import { validateRules } from "../src/rules/schema.ts";
import { benchRules, SECRETS, signedCall } from "./lib/fixtures.ts";
import { median } from "./lib/stats.ts";

export interface Shape {
  label: string;
  notifications: number;
  notificationBytes: number;
}

export interface MemoryPoint {
  label: string;
  /** Median ms per step (verify: the door's `readSignedBody`, reading, verifying and decoding the body). */
  steps: { verify: number; parse: number; match: number; plan: number; serialize: number };
  /** Bytes reachable while one call's results are held (body excluded). */
  retainedBytes: number;
}

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --expose-gc");
const collect = gc;

const shapes = JSON.parse(process.argv[2] ?? "[]") as Shape[];
const validation = validateRules(benchRules("http://127.0.0.1:9"));
if (!validation.ok) throw new Error("bench rules invalid");
const compiled = compileRules(validation.rules);
const secrets = [SECRETS.EXTEND_WEBHOOK_SECRET];
/** The door's default MAX_BODY_BYTES (wrangler.toml). */
const LIMIT = 10 * 1024 * 1024;

/**
 * workerd's `ReadableStreamBYOBReader.readAtLeast` (not in Node), which `readSignedBody` reads a request's body
 * with: reads into `view` until at least `min` bytes are in it, or the stream ended.
 */
const byob = ReadableStreamBYOBReader.prototype as Partial<Pick<ReadableStreamBYOBReader, "readAtLeast">>;
byob.readAtLeast ??= async function (this: ReadableStreamBYOBReader, min: number, view: Uint8Array) {
  const { byteOffset, byteLength } = view;
  let buffer = view.buffer;
  let filled = 0;
  while (filled < min) {
    // Each read transfers the buffer: the next goes into the one it returned.
    const { done, value } = await this.read(new Uint8Array(buffer, byteOffset + filled, byteLength - filled));
    if (value !== undefined) {
      buffer = value.buffer;
      filled += value.byteLength;
    }
    if (done) break;
  }
  return filled === 0
    ? { done: true as const, value: undefined }
    : { done: false as const, value: new Uint8Array(buffer, byteOffset, filled) };
};

/** What the door does with a call: read it once, verifying the signature as it streams. */
async function readCall(body: Buffer, signature: Uint8Array): Promise<void> {
  const request = new Request("http://relay.invalid/webhook", {
    method: "POST",
    headers: { "content-length": String(body.byteLength) },
    body,
  });
  const read = await readSignedBody(request, LIMIT, signature, secrets);
  if (!read.verified) throw new Error("bench signature does not verify");
}

function used(): number {
  collect();
  collect();
  return getHeapStatistics().used_heap_size + process.memoryUsage().arrayBuffers;
}

async function time(fn: () => unknown, minMs = 150): Promise<number> {
  const samples: number[] = [];
  const until = performance.now() + minMs;
  while (samples.length < 5 || (performance.now() < until && samples.length < 2000)) {
    const started = performance.now();
    await fn();
    samples.push(performance.now() - started);
  }
  return median(samples);
}

/** Module-level, so that the optimiser cannot prove the results dead before they are measured. */
const held: unknown[] = [];

/** Runs one call's pipeline and keeps its results; no local of the caller's frame refers to them. */
function holdOneCall(body: Buffer): void {
  const parsed = parseCall(body);
  const planned = batchMessages(planMessages(parsed, fanOut(compiled, parsed.envelope.Notifications), compiled, 0));
  held.push(parsed, planned);
}

const points: MemoryPoint[] = [];
for (const shape of shapes) {
  const call = signedCall(shape.notifications, shape.notificationBytes);
  const signature = parseSignatureHeader(call.signature);
  if (typeof signature === "string") throw new Error("bad signature");
  const parsed = parseCall(call.body);
  const fanouts = fanOut(compiled, parsed.envelope.Notifications);
  const batches = batchMessages(planMessages(parsed, fanouts, compiled, 0));
  const steps = {
    verify: await time(() => readCall(call.body, signature)),
    parse: await time(() => parseCall(call.body)),
    match: await time(() => fanOut(compiled, parsed.envelope.Notifications)),
    plan: await time(() => batchMessages(planMessages(parsed, fanouts, compiled, 0))),
    serialize: await time(() => batches.map((batch) => batch.map((m) => JSON.stringify(m.body)))),
  };

  // Memory held by one call's intermediate results when they are handed to sendBatch.
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const before = used();
    holdOneCall(call.body);
    const after = used();
    samples.push(after - before);
    held.length = 0;
  }
  points.push({
    label: shape.label,
    steps,
    retainedBytes: median(samples),
  });
}
process.stdout.write(JSON.stringify(points));
