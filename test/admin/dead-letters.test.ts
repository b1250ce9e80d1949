import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { BulkReplayAnswer } from "../../src/admin/dead-letters.ts";
import { getDeadLetter } from "../../src/ledger/dead-letters.ts";
import { getDelivery } from "../../src/ledger/deliveries.ts";
import { RESEND_BATCHES } from "../../src/ledger/resend.ts";
import { REPLAY_BATCH } from "../../src/ops/dead-letters.ts";
import type { DeadLetter } from "../../src/queues/dead-letter.ts";
import { BATCH_BUDGET, BATCH_MESSAGES } from "../../src/queues/limits.ts";
import { QUEUES } from "../../src/queues/names.ts";
import {
  admin,
  clearLedger,
  consume,
  deadLetterRecord,
  deliveryMessage,
  EXAMPLE_RULES,
  envelope,
  eventually,
  putRules,
  sentDeliveries,
} from "../helpers.ts";

let delivered: Request[];
beforeEach(async () => {
  await putRules(EXAMPLE_RULES);
  await clearLedger();
  delivered = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    delivered.push(new Request(input, init));
    return new Response("ok");
  });
});
afterEach(() => vi.restoreAllMocks());

/** Stores records the way the relay does: through the dead-letter consumer. */
async function store(...records: unknown[]) {
  expect((await consume(QUEUES.deadLetters, records)).explicitAcks).toHaveLength(records.length);
}

const isDead = async (id: string) => (await getDeadLetter(env.LEDGER, env.PAYLOADS, id)) !== null;

describe("the dead-letter admin API", () => {
  it("lists newest first, filters by destination and pages with a cursor", async () => {
    const old = deadLetterRecord("wms", "2026-11-20T00:00:00.000Z");
    const mid = deadLetterRecord("shop", "2026-11-21T00:00:00.000Z");
    const recent = deadLetterRecord("wms", "2026-11-22T00:00:00.000Z");
    await store(old, mid, recent);
    const all = await (await admin("/dead-letters")).json<{ items: { deliveryId: string }[] }>();
    expect(all.items.map((i) => i.deliveryId)).toEqual([recent.deliveryId, mid.deliveryId, old.deliveryId]);
    expect(all.items[0]).toEqual({
      deliveryId: recent.deliveryId,
      destination: "wms",
      reason: "permanent_failure",
      deadAt: recent.deadAt,
      attempts: 1,
      lastStatus: 410,
    });

    const wms = await (await admin("/dead-letters?destination=wms")).json<{ items: { deliveryId: string }[] }>();
    expect(wms.items.map((i) => i.deliveryId)).toEqual([recent.deliveryId, old.deliveryId]);

    const first = await (await admin("/dead-letters?limit=2")).json<{
      items: { deliveryId: string }[];
      cursor: string;
    }>();
    expect(first.items.map((i) => i.deliveryId)).toEqual([recent.deliveryId, mid.deliveryId]);
    const second = await (await admin(`/dead-letters?limit=2&cursor=${first.cursor}`)).json<{
      items: { deliveryId: string }[];
      cursor?: string;
    }>();
    expect(second.items.map((i) => i.deliveryId)).toEqual([old.deliveryId]);
    expect(second.cursor).toBeUndefined();
  });

  it("refuses a bad limit or cursor with 400 invalid_query naming the parameter", async () => {
    for (const [query, parameter] of [
      ["limit=0", "limit"],
      ["limit=101", "limit"],
      ["limit=x", "limit"],
      ["cursor=garbage", "cursor"],
    ]) {
      const response = await admin(`/dead-letters?${query}`);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: "invalid_query", parameter });
    }
  });

  it("shows one record as it was dead-lettered, and answers 404 for an unknown id", async () => {
    const r = deadLetterRecord();
    await store(r);
    expect(await (await admin(`/dead-letters/${r.deliveryId}`)).json()).toEqual(r);
    const missing = await admin("/dead-letters/nope.wms");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: "dead_letter_not_found" });
  });

  it("deletes a record", async () => {
    const r = deadLetterRecord();
    await store(r);
    expect((await admin(`/dead-letters/${r.deliveryId}`, { method: "DELETE" })).status).toBe(200);
    expect(await isDead(r.deliveryId)).toBe(false);
    expect((await admin(`/dead-letters/${r.deliveryId}`, { method: "DELETE" })).status).toBe(404);
  });

  it("replays one: the same delivery id reaches the receiver with attempts afresh, and it is no longer dead", async () => {
    const r = deadLetterRecord();
    await store(r);
    const response = await admin(`/dead-letters/${r.deliveryId}/replay`, { method: "POST" });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ replayed: [r.deliveryId], skipped: [] });
    expect(await isDead(r.deliveryId)).toBe(false);
    await eventually(() => {
      const request = delivered.find((d) => d.headers.get("x-relay-delivery-id") === r.deliveryId);
      expect(request?.url).toBe("https://wms.test/extend");
      expect(request?.headers.get("x-relay-attempt")).toBe("1");
    });
    // The ledger shows the replay's attempt after the old ones.
    const trace = await eventually(async () => {
      const delivery = await getDelivery(env.LEDGER, env.PAYLOADS, r.deliveryId);
      expect(delivery?.status).toBe("delivered");
      return delivery!;
    });
    expect(trace.attempts!.at(-1)).toMatchObject({ attempt: 1, outcome: "delivered", replay: true });
  });

  it("keeps the record when the replay cannot be enqueued", async () => {
    const r = deadLetterRecord();
    await store(r);
    vi.spyOn(env.DELIVERIES, "sendBatch").mockRejectedValue(new Error("Queue sendBatch failed"));
    const response = await admin(`/dead-letters/${r.deliveryId}/replay`, { method: "POST" });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: "queue_unavailable" });
    expect(await isDead(r.deliveryId)).toBe(true);
  });

  it("replays all of one destination and leaves the others", async () => {
    const [a, b, c] = [deadLetterRecord("wms"), deadLetterRecord("shop"), deadLetterRecord("wms")];
    await store(a!, b!, c!);
    const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
    const response = await admin("/dead-letters/replay?destination=wms", { method: "POST" });
    expect(response.status).toBe(202);
    const result = await response.json<BulkReplayAnswer>();
    expect(result.replayed.sort()).toEqual([a!.deliveryId, c!.deliveryId].sort());
    expect(result.more).toBe(false);
    expect(
      sentDeliveries(sendBatch)
        .map((m) => m.deliveryId)
        .sort(),
    ).toEqual([a!.deliveryId, c!.deliveryId].sort());
    const left = await (await admin("/dead-letters")).json<{ items: { deliveryId: string }[] }>();
    expect(left.items.map((i) => i.deliveryId)).toEqual([b!.deliveryId]);
  });

  it("names a stored record it cannot read, never picks it for a bulk replay, and still deletes it", async () => {
    const good = deadLetterRecord();
    await store(good, "what is this");
    // Only a ledger edited by hand (or by another version) holds a message that cannot be read.
    await store(
      deadLetterRecord("json", undefined, deliveryMessage("json", { deliveryId: "broken.json", callId: "broken" })),
    );
    await env.LEDGER.prepare(
      "UPDATE ledger_deliveries SET payload = '{not json' WHERE call = (SELECT seq FROM ledger_calls WHERE id = 'broken')",
    ).run();
    const listed = await (await admin("/dead-letters")).json<{ items: { deliveryId: string }[] }>();
    expect(listed.items.map((i) => i.deliveryId).sort()).toEqual(
      ["broken.json", good.deliveryId, "unreadable.m1"].sort(),
    );
    for (const response of [
      await admin("/dead-letters/broken.json"),
      await admin("/dead-letters/broken.json/replay", { method: "POST" }),
    ]) {
      expect(response.status).toBe(409);
      const body = await response.json<{ error: string; message: string }>();
      expect(body.error).toBe("dead_letter_unreadable");
      expect(body.message).toContain("DELETE /admin/dead-letters/broken.json");
    }
    // The unreadable queue message is a readable record without a message: shown, not replayable.
    expect(await (await admin("/dead-letters/unreadable.m1")).json()).toMatchObject({
      reason: "unreadable_message",
      raw: "what is this",
    });
    const notReplayable = await admin("/dead-letters/unreadable.m1/replay", { method: "POST" });
    expect(notReplayable.status).toBe(409);
    expect(await notReplayable.json()).toMatchObject({ error: "not_replayable" });

    const first = await (await admin("/dead-letters/replay", { method: "POST" })).json<BulkReplayAnswer>();
    expect(first).toMatchObject({ replayed: [good.deliveryId], more: false });
    expect(first.skipped.map((s) => s.deliveryId)).toEqual(["broken.json"]);
    // Met once, it is marked not replayable: the next call does not meet it again, so calls always progress.
    const second = await (await admin("/dead-letters/replay", { method: "POST" })).json<BulkReplayAnswer>();
    expect(second).toEqual({ replayed: [], skipped: [], more: false });
    // Shown as it is stored, never to be replayed.
    expect(await (await admin("/dead-letters/broken.json")).json()).toMatchObject({ raw: "{not json" });
    expect((await admin("/dead-letters/broken.json/replay", { method: "POST" })).status).toBe(409);

    expect((await admin("/dead-letters/broken.json", { method: "DELETE" })).status).toBe(200);
    expect((await admin("/dead-letters/broken.json")).status).toBe(404);
    expect(await isDead("unreadable.m1")).toBe(true);
  });
});

describe("bulk replay", () => {
  /** A dead letter whose message is about `bytes` long. */
  function sized(bytes: number): DeadLetter {
    const call = envelope([{ Action: "OrderCreated", Details: { OrderNumber: "1", Note: "x".repeat(bytes) } }]);
    return deadLetterRecord("wms", undefined, deliveryMessage("wms", {}, call));
  }

  it("replays any backlog in calls of bounded work, batches within Queues' limits, answering more until done", async () => {
    const records = Array.from({ length: 250 }, () => sized(3000));
    for (let i = 0; i < records.length; i += 50) await store(...records.slice(i, i + 50));
    const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
    const ledgerBatch = vi.spyOn(env.LEDGER, "batch");
    const replayed: string[] = [];
    for (let call = 1; ; call++) {
      expect(call).toBeLessThanOrEqual(Math.ceil(250 / REPLAY_BATCH));
      sendBatch.mockClear();
      ledgerBatch.mockClear();
      const response = await admin("/dead-letters/replay", { method: "POST" });
      expect(response.status).toBe(202);
      const answer = await response.json<BulkReplayAnswer>();
      expect(answer.skipped).toEqual([]);
      replayed.push(...answer.replayed);
      // Bounded work per call: a few ledger round trips and at most RESEND_BATCHES sendBatch calls.
      expect(sendBatch.mock.calls.length).toBeLessThanOrEqual(RESEND_BATCHES);
      expect(ledgerBatch.mock.calls.length).toBeLessThanOrEqual(2);
      for (const [batch] of sendBatch.mock.calls) {
        const messages = [...batch];
        expect(messages.length).toBeLessThanOrEqual(BATCH_MESSAGES);
        const bytes = messages.reduce((sum, m) => sum + new TextEncoder().encode(String(m.body)).byteLength + 100, 0);
        expect(bytes).toBeLessThanOrEqual(BATCH_BUDGET);
      }
      if (!answer.more) break;
    }
    expect(replayed.sort()).toEqual(records.map((r) => r.deliveryId).sort());
    expect((await (await admin("/dead-letters")).json<{ items: unknown[] }>()).items).toEqual([]);
  });

  it("reports what was enqueued before a sendBatch failed as replayed, and keeps the rest dead", async () => {
    // 20 records of about 40 KB: Queues' 256 KB per sendBatch makes that several batches.
    const records = Array.from({ length: 20 }, () => sized(40_000));
    await store(...records);
    const real = env.DELIVERIES.sendBatch.bind(env.DELIVERIES);
    let calls = 0;
    vi.spyOn(env.DELIVERIES, "sendBatch").mockImplementation(async (batch) => {
      if (++calls === 2) throw new Error("Queue sendBatch failed");
      return real(batch);
    });
    const response = await admin("/dead-letters/replay", { method: "POST" });
    expect(response.status).toBe(202);
    const answer = await response.json<BulkReplayAnswer>();
    expect(answer.replayed.length).toBeGreaterThan(0);
    expect(answer.skipped.length).toBe(20 - answer.replayed.length);
    expect(answer.skipped.every((s) => s.reason.startsWith("not enqueued"))).toBe(true);
    expect(answer.more).toBe(true);
    for (const id of answer.replayed) expect(await isDead(id)).toBe(false);
    for (const { deliveryId } of answer.skipped) expect(await isDead(deliveryId)).toBe(true);
  });
});
