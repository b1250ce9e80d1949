/**
 * Core costs in Node (tinybench): the relay's pure functions, timed without any runtime around them.
 * Each figure is the median over ROUNDS tinybench runs of the per-operation median latency.
 */
import { Bench } from "tinybench";
import { fanOut, planMessages } from "../src/delivery/planner.ts";
import { envelopeSchema, parseCall } from "../src/extend/envelope.ts";
import { batchMessages } from "../src/queues/limits.ts";
import { compileRules } from "../src/rules/matcher.ts";
import { validateRules } from "../src/rules/schema.ts";
import { benchRules, manyRoutes, signedCall } from "./lib/fixtures.ts";
import { median } from "./lib/stats.ts";

export const ROUNDS = 3;

/** Median per-operation latency (ms) of each task, over ROUNDS runs. */
async function measure(tasks: Record<string, () => unknown>, time = 250): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = {};
  for (let round = 0; round < ROUNDS; round++) {
    const bench = new Bench({ time, warmupTime: 50 });
    for (const [name, fn] of Object.entries(tasks)) bench.add(name, fn as () => void);
    await bench.run();
    for (const task of bench.tasks) {
      const result = task.result;
      if (result.state !== "completed") throw new Error(`bench task ${task.name} did not complete (${result.state})`);
      (samples[task.name] ??= []).push(result.latency.p50);
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]));
}

interface MatchRow {
  routes: number;
  ns: number;
  matched: number;
}
export interface CoreResults {
  matching: MatchRow[];
  planning: {
    notifications: number;
    parseMs: number;
    /** JSON.parse and the schema alone, without the outline: what locating the sender's text costs. */
    plainParseMs: number;
    planMs: number;
    messages: number;
    batches: number;
  };
}

export async function runCore(): Promise<CoreResults> {
  // Matching: one OrderCreated in YX against N routes of which three can match.
  const notification = parseCall(signedCall(1).body).envelope.Notifications[0]!;
  const matching: MatchRow[] = [];
  for (const routes of [10, 100, 1000, 10_000]) {
    const validation = validateRules(manyRoutes(routes));
    if (!validation.ok) throw new Error(`bench rules invalid: ${JSON.stringify(validation.issues.slice(0, 3))}`);
    const compiled = compileRules(validation.rules);
    const matched = compiled.match(notification).length;
    const result = await measure({ match: () => compiled.match(notification) });
    matching.push({ routes, ns: result.match! * 1e6, matched });
  }

  // Planning: a 250-notification call (bench rules: three destinations) into queue messages and batches.
  const validation = validateRules(benchRules("http://127.0.0.1:9"));
  if (!validation.ok) throw new Error("bench rules invalid");
  const compiled = compileRules(validation.rules);
  const call = signedCall(250, 480);
  const parsed = parseCall(call.body);
  const plan = () => batchMessages(planMessages(parsed, fanOut(compiled, parsed.envelope.Notifications), compiled, 0));
  const batches = plan();
  const decoder = new TextDecoder();
  const result = await measure({
    parse: () => parseCall(call.body),
    plainParse: () => envelopeSchema.safeParse(JSON.parse(decoder.decode(call.body))),
    plan,
  });
  return {
    matching,
    planning: {
      notifications: 250,
      parseMs: result.parse!,
      plainParseMs: result.plainParse!,
      planMs: result.plan!,
      messages: batches.reduce((n, b) => n + b.length, 0),
      batches: batches.length,
    },
  };
}
