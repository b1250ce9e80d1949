import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { BulkReplayAnswer } from "../../src/admin/dead-letters.ts";
import { REPLAY_BATCH } from "../../src/dead-letters/store.ts";
import { BATCH_BUDGET, BATCH_MESSAGES } from "../../src/delivery/planner.ts";
import { type DeadLetter, type DeliveryMessage, decodeMessage, QUEUES } from "../../src/queues.ts";
import { admin, consume, deadLetterRecord, deliveryMessage, EXAMPLE_RULES, envelope, putRules } from "../helpers.ts";

let delivered: Request[];
beforeEach(async () => {
  await putRules(EXAMPLE_RULES);
  delivered = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    delivered.push(new Request(input, init));
    return new Response("ok");
  });
  // Each test starts from an empty dead-letter store.
  const { keys } = await env.STATE.list({ prefix: "dead:" });
  await Promise.all(keys.map((k) => env.STATE.delete(k.name)));
});
afterEach(() => vi.restoreAllMocks());

/** Stores records the way the relay does: through the dead-letter consumer. */
async function store(...records: unknown[]) {
  await consume(QUEUES.deadLetters, records);
}

describe("the dead-letter admin API", () => {
  it("lists newest first, filters by destination and pages with a cursor", async () => {
    const old = deadLetterRecord("wms", "2026-11-20T00:00:00.000Z");
    const mid = deadLetterRecord("shop", "2026-11-21T00:00:00.000Z");
    const recent = deadLetterRecord("wms", "2026-11-22T00:00:00.000Z");
    await store(old, mid, recent);
    const all = await (await admin("/dead-letters")).json<{ items: { deliveryId: string }[] }>();
    expect(all.items.map((i) => i.deliveryId)).toEqual([recent.deliveryId, mid.deliveryId, old.deliveryId]);

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

  it("refuses a bad limit or cursor with 400 invalid_query", async () => {
    for (const query of ["limit=0", "limit=101", "limit=x", "cursor=garbage"]) {
      const response = await admin(`/dead-letters?${query}`);
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: "invalid_query" });
    }
  });

  it("shows one record and answers 404 for an unknown id", async () => {
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
    expect(await env.STATE.get(`dead:${r.deliveryId}`)).toBeNull();
    expect((await admin(`/dead-letters/${r.deliveryId}`, { method: "DELETE" })).status).toBe(404);
  });

  it("replays one: the same delivery id reaches the receiver with attempts afresh, and the record goes", async () => {
    const r = deadLetterRecord();
    await store(r);
    const response = await admin(`/dead-letters/${r.deliveryId}/replay`, { method: "POST" });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ replayed: [r.deliveryId], skipped: [] });
    expect(await env.STATE.get(`dead:${r.deliveryId}`)).toBeNull();
    await vi.waitFor(
      () => {
        const request = delivered.find((d) => d.headers.get("x-relay-delivery-id") === r.deliveryId);
        expect(request?.url).toBe("https://wms.test/extend");
        expect(request?.headers.get("x-relay-attempt")).toBe("1");
      },
      { timeout: 15_000, interval: 100 },
    );
  });

  it("keeps the record when the replay cannot be enqueued", async () => {
    const r = deadLetterRecord();
    await store(r);
    vi.spyOn(env.DELIVERIES, "sendBatch").mockRejectedValue(new Error("Queue sendBatch failed"));
    const response = await admin(`/dead-letters/${r.deliveryId}/replay`, { method: "POST" });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: "queue_unavailable" });
    expect(await env.STATE.get(`dead:${r.deliveryId}`)).not.toBeNull();
  });

  it("replays all of one destination and leaves the others", async () => {
    const [a, b, c] = [deadLetterRecord("wms"), deadLetterRecord("shop"), deadLetterRecord("wms")];
    await store(a!, b!, c!);
    const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
    const response = await admin("/dead-letters/replay?destination=wms", { method: "POST" });
    expect(response.status).toBe(202);
    const result = await response.json<{ replayed: string[]; more: boolean }>();
    expect(result.replayed.sort()).toEqual([a!.deliveryId, c!.deliveryId].sort());
    expect(result.more).toBe(false);
    expect(
      sendBatch.mock.calls
        .flatMap(([batch]) => [...batch].map((m) => (decodeMessage(m.body) as DeliveryMessage).deliveryId))
        .sort(),
    ).toEqual([a!.deliveryId, c!.deliveryId].sort());
    const left = await (await admin("/dead-letters")).json<{ items: { deliveryId: string }[] }>();
    expect(left.items.map((i) => i.deliveryId)).toEqual([b!.deliveryId]);
  });

  it("names a stored record it cannot read, skips it in a bulk replay and still deletes it", async () => {
    const good = deadLetterRecord();
    await store(good);
    const meta = { destination: "wms", reason: "permanent_failure", deadAt: new Date().toISOString(), attempts: 1 };
    // Only STATE edited by hand (or by another version) holds such records.
    await env.STATE.put("dead:broken.json", "{not json", { metadata: meta });
    await env.STATE.put("dead:broken.shape", JSON.stringify({ kind: "dead-letter", deliveryId: 7 }), {
      metadata: meta,
    });

    const listed = await (await admin("/dead-letters")).json<{ items: { deliveryId: string }[] }>();
    expect(listed.items.map((i) => i.deliveryId).sort()).toEqual(
      ["broken.json", "broken.shape", good.deliveryId].sort(),
    );
    for (const [id, problem] of [
      ["broken.json", "it is not JSON"],
      ["broken.shape", "deliveryId"],
    ] as const) {
      for (const response of [
        await admin(`/dead-letters/${id}`),
        await admin(`/dead-letters/${id}/replay`, { method: "POST" }),
      ]) {
        expect(response.status).toBe(409);
        const body = await response.json<{ error: string; message: string }>();
        expect(body.error).toBe("dead_letter_unreadable");
        expect(body.message).toContain(problem);
        expect(body.message).toContain(`DELETE /admin/dead-letters/${id}`);
      }
    }

    const replayed = await admin("/dead-letters/replay", { method: "POST" });
    expect(replayed.status).toBe(202);
    const result = await replayed.json<{ replayed: string[]; skipped: { deliveryId: string; reason: string }[] }>();
    expect(result.replayed).toEqual([good.deliveryId]);
    expect(result.skipped.map((s) => s.deliveryId).sort()).toEqual(["broken.json", "broken.shape"]);
    expect(result.skipped[0]!.reason).toContain("not one this relay can read");

    expect((await admin("/dead-letters/broken.json", { method: "DELETE" })).status).toBe(200);
    expect((await admin("/dead-letters/broken.json")).status).toBe(404);
    expect(await env.STATE.get("dead:broken.shape")).not.toBeNull();
  });

  it("refuses to replay a record without a readable message with 409", async () => {
    await store(42);
    const response = await admin("/dead-letters/unreadable.m0/replay", { method: "POST" });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ error: "not_replayable" });
  });
});

describe("bulk replay", () => {
  /** A dead letter whose message is about `bytes` long. */
  function sized(bytes: number): DeadLetter {
    const call = envelope([{ Action: "OrderCreated", Details: { OrderNumber: "1", Note: "x".repeat(bytes) } }]);
    return deadLetterRecord("wms", undefined, deliveryMessage("wms", {}, call));
  }

  it("replays any backlog in calls of bounded work, batches within Queues' limits, answering more until done", async () => {
    const records = Array.from({ length: 100 }, () => sized(3000));
    for (let i = 0; i < records.length; i += 25) await store(...records.slice(i, i + 25));
    const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
    const operations = [
      vi.spyOn(env.STATE, "list"),
      vi.spyOn(env.STATE, "get"),
      vi.spyOn(env.STATE, "delete"),
      sendBatch,
    ];
    const replayed: string[] = [];
    for (let call = 1; ; call++) {
      expect(call).toBeLessThanOrEqual(100 / REPLAY_BATCH + 1);
      for (const spy of operations) spy.mockClear();
      const response = await admin("/dead-letters/replay", { method: "POST" });
      expect(response.status).toBe(202);
      const answer = await response.json<BulkReplayAnswer>();
      expect(answer.skipped).toEqual([]);
      replayed.push(...answer.replayed);
      // A free-plan Worker may make 50 subrequests per invocation.
      expect(operations.reduce((sum, spy) => sum + spy.mock.calls.length, 0)).toBeLessThanOrEqual(50);
      for (const [batch] of sendBatch.mock.calls) {
        const messages = [...batch];
        expect(messages.length).toBeLessThanOrEqual(BATCH_MESSAGES);
        const bytes = messages.reduce((sum, m) => sum + new TextEncoder().encode(String(m.body)).byteLength + 100, 0);
        expect(bytes).toBeLessThanOrEqual(BATCH_BUDGET);
      }
      if (!answer.more) break;
    }
    expect(replayed.sort()).toEqual(records.map((r) => r.deliveryId).sort());
    expect((await env.STATE.list({ prefix: "dead:" })).keys).toEqual([]);
  });

  it("reports what was enqueued before a sendBatch failed as replayed, and keeps the rest", async () => {
    // 20 records of about 40 KB: Queues' 256 KB per sendBatch makes that several batches.
    const records = Array.from({ length: REPLAY_BATCH }, () => sized(40_000));
    for (const record of records) await store(record);
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
    expect(answer.skipped.length).toBe(REPLAY_BATCH - answer.replayed.length);
    expect(answer.skipped.every((s) => s.reason.startsWith("not enqueued"))).toBe(true);
    expect(answer.more).toBe(true);
    for (const id of answer.replayed) expect(await env.STATE.get(`dead:${id}`)).toBeNull();
    for (const { deliveryId } of answer.skipped) expect(await env.STATE.get(`dead:${deliveryId}`)).not.toBeNull();
  });
});
