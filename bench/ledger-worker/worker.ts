/**
 * GET /healthz → 200. POST / with {"rules": …, "bodies": [call text, …], "callsPerBatch": k}: runs the relay's
 * own planner and ledger statements (src/delivery/planner.ts, src/ledger/write.ts) for those calls, each
 * delivered at its first attempt, k calls per consumer batch, one db.batch each, on the local D1; answers the
 * median and p95 ms per db.batch, D1's count of rows written per call, and the database's growth per call.
 * Bench-only.
 */
import { planCallRecord, planMessages, route } from "../../src/delivery/planner.ts";
import { parseCall } from "../../src/extend/envelope.ts";
import { ensureLedger } from "../../src/ledger/schema.ts";
import { ledgerStatements } from "../../src/ledger/write.ts";
import type { LedgerRecord } from "../../src/queues/ledger.ts";
import { compileRules } from "../../src/rules/matcher.ts";
import { validateRules } from "../../src/rules/schema.ts";
import { median } from "../lib/stats.ts";

interface Env {
  LEDGER: D1Database;
  PAYLOADS: R2Bucket;
}

const encoder = new TextEncoder();

function recordsOf(
  text: string,
  compiled: ReturnType<typeof compileRules>,
): { records: LedgerRecord[]; deliveries: number } {
  const call = parseCall(encoder.encode(text));
  const routing = route(compiled, call.envelope.Notifications);
  const messages = planMessages(call, routing.fanouts, compiled, Date.now());
  const records: LedgerRecord[] = planCallRecord(call, routing, messages, Date.now(), { inline: true })!.map(
    (p) => p.body,
  );
  for (const { body: m } of messages) {
    records.push({
      kind: "attempt",
      deliveryId: m.deliveryId,
      destination: m.destination,
      callId: m.callId,
      routes: m.routes,
      indices: m.indices,
      receivedAt: m.receivedAt,
      run: 0,
      attempt: 1,
      at: Date.now(),
      status: 200,
      durationMs: 12,
      outcome: "delivered",
    });
  }
  return { records, deliveries: messages.length };
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return Response.json({ status: "ok" });
    const { rules, bodies, callsPerBatch } = (await request.json()) as {
      rules: unknown;
      bodies: string[];
      callsPerBatch: number;
    };
    const validation = validateRules(rules);
    if (!validation.ok) return Response.json({ issues: validation.issues }, { status: 422 });
    const compiled = compileRules(validation.rules);
    await ensureLedger(env.LEDGER);
    const before = (await env.LEDGER.prepare("SELECT 1").run()).meta.size_after;
    let after = before;
    const times: number[] = [];
    let rows = 0;
    let deliveries = 0;
    for (let start = 0; start < bodies.length; start += callsPerBatch) {
      const records: LedgerRecord[] = [];
      for (const text of bodies.slice(start, start + callsPerBatch)) {
        const planned = recordsOf(text, compiled);
        records.push(...planned.records);
        deliveries += planned.deliveries;
      }
      const statements = await ledgerStatements(env.LEDGER, env.PAYLOADS, records, Date.now());
      const started = performance.now();
      const results = await env.LEDGER.batch(statements);
      times.push(performance.now() - started);
      rows += results.reduce((sum, r) => sum + r.meta.rows_written, 0);
      after = results.at(-1)?.meta.size_after ?? after;
    }
    times.sort((a, b) => a - b);
    return Response.json({
      calls: bodies.length,
      callsPerBatch,
      deliveriesPerCall: deliveries / bodies.length,
      bodyBytes: bodies.reduce((sum, b) => sum + encoder.encode(b).byteLength, 0) / bodies.length,
      medianMs: median(times),
      p95Ms: times[Math.ceil(0.95 * times.length) - 1],
      rowsWrittenPerCall: rows / bodies.length,
      bytesPerCall: (after - before) / bodies.length,
    });
  },
};
