import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { getCall, listCalls } from "../../src/ledger/calls.ts";
import { getDelivery } from "../../src/ledger/deliveries.ts";
import { writeLedger } from "../../src/ledger/write.ts";
import type { CallRecord } from "../../src/queues/call.ts";
import type { AttemptRecord, HeldRecord } from "../../src/queues/ledger.ts";
import { clearLedger, deadLetterRecord, deliveryMessage, freshId } from "../helpers.ts";

beforeEach(() => clearLedger());

const T0 = Date.parse("2026-12-01T08:00:00Z");

function callRecord(id: string, deliveries: string[] = ["wms"]): CallRecord {
  return {
    kind: "call",
    v: 1,
    id,
    at: T0,
    attempt: "1",
    outcome: "accepted",
    summary: { notifications: 1, deliveries: deliveries.length, actions: ["OrderCreated"], keys: ["3339977"] },
    notifications: [
      { i: 0, action: "OrderCreated", warehouse: null, key: "3339977", routes: ["orders"], destinations: deliveries },
    ],
    deliveries: deliveries.map((d) => ({ id: `${id}.${d}`, destination: d, routes: ["orders"], indices: [0] })),
  };
}

function attempt(
  id: string,
  n: number,
  outcome: AttemptRecord["outcome"],
  extra: Partial<AttemptRecord> = {},
): AttemptRecord {
  return {
    kind: "attempt",
    deliveryId: `${id}.wms`,
    destination: "wms",
    callId: id,
    routes: ["orders"],
    indices: [0],
    receivedAt: T0,
    run: 0,
    attempt: n,
    at: T0 + n * 1000,
    ...(outcome === "delivered" ? { status: 200 } : { status: 503 }),
    durationMs: 10 * n,
    outcome,
    payload: JSON.stringify(deliveryMessage("wms")),
    ...extra,
  };
}

const status = async (id: string) => (await getDelivery(env.LEDGER, env.PAYLOADS, `${id}.wms`))?.status;

describe("a delivery's status in the ledger", () => {
  it("goes pending → retrying → delivered, with every attempt kept in order", async () => {
    const id = freshId();
    await writeLedger(env.LEDGER, env.PAYLOADS, [callRecord(id)]);
    expect(await status(id)).toBe("pending");
    await writeLedger(env.LEDGER, env.PAYLOADS, [attempt(id, 1, "retry")]);
    expect(await status(id)).toBe("retrying");
    await writeLedger(env.LEDGER, env.PAYLOADS, [attempt(id, 2, "retry"), attempt(id, 3, "delivered")]);
    const delivery = (await getDelivery(env.LEDGER, env.PAYLOADS, `${id}.wms`))!;
    expect(delivery).toMatchObject({ status: "delivered", attemptCount: 3, lastStatus: 200 });
    expect(delivery.attempts!.map((a) => [a.attempt, a.status, a.outcome])).toEqual([
      [1, 503, "retry"],
      [2, 503, "retry"],
      [3, 200, "delivered"],
    ]);
  });

  it("never moves backwards, whatever order the writes arrive in, and a write repeated changes nothing", async () => {
    const id = freshId();
    await writeLedger(env.LEDGER, env.PAYLOADS, [attempt(id, 2, "delivered")]);
    // Late arrivals: the call's pending row and an earlier attempt's retry.
    await writeLedger(env.LEDGER, env.PAYLOADS, [callRecord(id), attempt(id, 1, "retry")]);
    await writeLedger(env.LEDGER, env.PAYLOADS, [attempt(id, 2, "delivered")]);
    const delivery = (await getDelivery(env.LEDGER, env.PAYLOADS, `${id}.wms`))!;
    expect(delivery).toMatchObject({ status: "delivered", attemptCount: 2 });
    expect(delivery.attempts!.map((a) => a.attempt)).toEqual([1, 2]);
    expect((await getCall(env.LEDGER, id))!.senderAttempts).toEqual([1]);
  });

  it("turns dead from the consumer's own attempt or the dead-letter record, in either order", async () => {
    const id = freshId();
    const ofCall = (call: string) => deliveryMessage("wms", { deliveryId: `${call}.wms`, callId: call });
    const record = { ...deadLetterRecord("wms", undefined, ofCall(id)), attempts: 0, source: "queue" as const };
    await writeLedger(env.LEDGER, env.PAYLOADS, [attempt(id, 3, "retry"), { kind: "dead", record }]);
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, `${id}.wms`)).toMatchObject({
      status: "dead",
      attemptCount: 3, // Queues' own dead letter counts no attempt; the ones made stay counted
      dead: { reason: "permanent_failure", source: "queue" },
    });
    const other = freshId();
    const dead = attempt(other, 1, "dead_letter", {
      status: 410,
      dead: { reason: "permanent_failure", detail: "HTTP 410" },
    });
    await writeLedger(env.LEDGER, env.PAYLOADS, [
      dead,
      { kind: "dead", record: deadLetterRecord("wms", undefined, ofCall(other)) },
    ]);
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, `${other}.wms`)).toMatchObject({
      status: "dead",
      attemptCount: 1,
      lastStatus: 410,
    });
  });

  it("starts a new run on a replay: attempts afresh, shown as replays, older runs unable to overwrite it", async () => {
    const id = freshId();
    await writeLedger(env.LEDGER, env.PAYLOADS, [
      attempt(id, 1, "dead_letter", { dead: { reason: "permanent_failure", detail: "x" } }),
    ]);
    await writeLedger(env.LEDGER, env.PAYLOADS, [attempt(id, 1, "delivered", { run: 1, at: T0 + 60_000 })]);
    await writeLedger(env.LEDGER, env.PAYLOADS, [attempt(id, 2, "retry", { run: 0, at: T0 + 70_000 })]); // a straggler of run 0
    const delivery = (await getDelivery(env.LEDGER, env.PAYLOADS, `${id}.wms`))!;
    expect(delivery).toMatchObject({ status: "delivered", attemptCount: 1 });
    expect(delivery.dead).toBeUndefined();
    expect(delivery.attempts!.map((a) => [a.attempt, a.outcome, a.replay ?? false])).toEqual([
      [1, "dead_letter", false],
      [2, "retry", false],
      [1, "delivered", true],
    ]);
  });

  it("shows a delivery held by its gate between attempts, keeping the last error, and a late hold changes nothing", async () => {
    const id = freshId();
    const held = (attempts: number, reason: HeldRecord["reason"], at = T0 + 5000): HeldRecord => ({
      kind: "held",
      deliveryId: `${id}.wms`,
      destination: "wms",
      callId: id,
      routes: ["orders"],
      indices: [0],
      receivedAt: T0,
      run: 0,
      attempts,
      at,
      reason,
    });
    // Held before its first attempt, in the same write as its call.
    await writeLedger(env.LEDGER, env.PAYLOADS, [callRecord(id), held(0, "rate_limit")]);
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, `${id}.wms`)).toMatchObject({
      status: "held",
      attemptCount: 0,
      held: { reason: "rate_limit", since: new Date(T0 + 5000).toISOString() },
    });
    await writeLedger(env.LEDGER, env.PAYLOADS, [attempt(id, 1, "retry"), held(1, "circuit_open", T0 + 6000)]);
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, `${id}.wms`)).toMatchObject({
      status: "held",
      attemptCount: 1,
      lastStatus: 503,
      held: { reason: "circuit_open" },
    });
    await writeLedger(env.LEDGER, env.PAYLOADS, [attempt(id, 2, "delivered")]);
    // The hold of attempt 1 arriving late, again: the delivery stays delivered.
    await writeLedger(env.LEDGER, env.PAYLOADS, [held(1, "circuit_open")]);
    const view = await getDelivery(env.LEDGER, env.PAYLOADS, `${id}.wms`);
    expect(view).toMatchObject({ status: "delivered", attemptCount: 2 });
    expect(view?.held).toBeUndefined();
    expect(view?.attempts?.map((a) => a.outcome)).toEqual(["retry", "delivered"]);
  });

  it("records each of the sender's attempts, accepted and duplicate, in arrival order", async () => {
    const id = freshId();
    const duplicate: CallRecord = { kind: "call", v: 1, id, at: T0 + 60_000, attempt: "2", outcome: "duplicate" };
    await writeLedger(env.LEDGER, env.PAYLOADS, [duplicate]);
    await writeLedger(env.LEDGER, env.PAYLOADS, [callRecord(id), { ...duplicate, at: T0 + 300_000, attempt: "3" }]);
    expect((await getCall(env.LEDGER, id))!.senderAttempts).toEqual([1, 2, 3]);
  });
});

describe("one write of many records", () => {
  it("keeps every row and value exactly, across statements cut by size", async () => {
    // 40 attempts with ~100 KB payloads (unicode and escapes included) pass one statement's 1 MB of JSON.
    const ids = Array.from({ length: 40 }, () => freshId());
    const payload = (i: number) => JSON.stringify({ n: i, text: `ÅÄÖ "x" \\ ${"å".repeat(50_000)}` });
    const records = ids.flatMap((id, i) => {
      const call = callRecord(id);
      return [
        { ...call, notifications: call.notifications!.map((n) => ({ ...n, key: "0012" })) },
        attempt(id, 1, "delivered", { payload: payload(i), durationMs: 12.5 }),
      ];
    });
    await writeLedger(env.LEDGER, env.PAYLOADS, records);
    const rows = await env.LEDGER.prepare(
      `SELECT c.id, d.status, d.payload, a.duration_ms AS ms, typeof(a.status) AS t, k.key FROM ledger_deliveries d
       JOIN ledger_attempts a ON a.call = d.call AND a.destination = d.destination AND a.part = d.part
       JOIN ledger_calls c ON c.seq = d.call JOIN ledger_keys k ON k.call = c.seq ORDER BY c.seq`,
    ).all<{ id: string; status: number; payload: string; ms: number; t: string; key: string }>();
    expect(rows.results).toHaveLength(40);
    const byId = new Map(rows.results.map((r) => [r.id, r]));
    ids.forEach((id, i) => {
      expect(byId.get(id)).toEqual({ id, status: 0, payload: payload(i), ms: 12.5, t: "integer", key: "0012" });
    });
    expect((await listCalls(env.LEDGER, { key: "0012", limit: 100 })).items).toHaveLength(40);
  });
});
