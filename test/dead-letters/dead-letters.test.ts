import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { DeadLetter } from "../../src/dead-letters/record.ts";
import type { DeliveryMessage } from "../../src/delivery/message.ts";
import worker from "../../src/index.ts";
import type { Env } from "../../src/settings.ts";
import { admin, EXAMPLE_RULES, freshId, putRules } from "../helpers.ts";

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

function message(destination = "wms"): DeliveryMessage {
  const id = freshId();
  return {
    v: 1,
    deliveryId: `${id}.${destination}`,
    destination,
    routes: ["orders"],
    envelope: { Id: id, Attempt: 1, Properties: { NotificationId: "n" } },
    notifications: [{ Action: "OrderCreated", Details: { OrderNumber: "1", OrderType: "NormalOrder" } }],
    receivedAt: Date.parse("2026-11-28T09:00:00Z"),
  };
}

function record(destination = "wms", deadAt = new Date().toISOString()): DeadLetter {
  const m = message(destination);
  return {
    kind: "dead-letter",
    deliveryId: m.deliveryId,
    destination,
    reason: "permanent_failure",
    detail: "The receiver answered HTTP 410, which is not retried.",
    lastStatus: 410,
    attempts: 1,
    firstAttemptAt: deadAt,
    lastAttemptAt: deadAt,
    deadAt,
    source: "relay",
    message: m,
  };
}

async function consumeDeadLetters(bodies: unknown[]) {
  const batch = createMessageBatch(
    "extend-relay-dead-letters",
    bodies.map((body, i) => ({ id: `d${i}`, timestamp: new Date("2026-11-28T10:00:00Z"), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, env as Env);
  return getQueueResult(batch, ctx);
}

describe("the dead-letter consumer", () => {
  it("stores the relay's record under dead:<deliveryId>, idempotently", async () => {
    const r = record();
    expect((await consumeDeadLetters([r, r])).explicitAcks).toEqual(["d0", "d1"]);
    const { keys } = await env.STATE.list({ prefix: "dead:" });
    expect(keys.map((k) => k.name)).toEqual([`dead:${r.deliveryId}`]);
    expect(keys[0]!.metadata).toEqual({
      destination: "wms",
      reason: "permanent_failure",
      deadAt: r.deadAt,
      attempts: 1,
      lastStatus: 410,
    });
    expect(JSON.parse((await env.STATE.get(`dead:${r.deliveryId}`))!)).toEqual(r);
  });

  it("turns a raw delivery message from Queues' own dead-letter path into a replayable record", async () => {
    const m = message("shop");
    await consumeDeadLetters([m]);
    const stored = JSON.parse((await env.STATE.get(`dead:${m.deliveryId}`))!) as DeadLetter;
    expect(stored).toMatchObject({
      reason: "queue_retries_exhausted",
      source: "queue",
      destination: "shop",
      message: m,
    });
    expect(stored.firstAttemptAt).toBe("2026-11-28T09:00:00.000Z");
  });

  it("keeps even an unreadable message, as a record that says so", async () => {
    await consumeDeadLetters(["what is this"]);
    const stored = JSON.parse((await env.STATE.get("dead:unreadable.d0"))!) as DeadLetter;
    expect(stored).toMatchObject({ reason: "unreadable_message", raw: "what is this" });
  });

  it("retries a message whose record could not be written", async () => {
    const failing = { put: () => Promise.reject(new Error("KV PUT failed")) } as unknown as KVNamespace;
    const batch = createMessageBatch("extend-relay-dead-letters", [
      { id: "x", timestamp: new Date(), attempts: 1, body: record() },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, { ...env, STATE: failing } as Env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages.map((r) => r.msgId)).toEqual(["x"]);
  });
});

describe("the dead-letter admin API", () => {
  async function store(...records: DeadLetter[]) {
    await consumeDeadLetters(records);
  }

  it("lists newest first, filters by destination and pages with a cursor", async () => {
    const old = record("wms", "2026-11-20T00:00:00.000Z");
    const mid = record("shop", "2026-11-21T00:00:00.000Z");
    const recent = record("wms", "2026-11-22T00:00:00.000Z");
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
    const r = record();
    await store(r);
    expect(await (await admin(`/dead-letters/${r.deliveryId}`)).json()).toEqual(r);
    const missing = await admin("/dead-letters/nope.wms");
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: "dead_letter_not_found" });
  });

  it("deletes a record", async () => {
    const r = record();
    await store(r);
    expect((await admin(`/dead-letters/${r.deliveryId}`, { method: "DELETE" })).status).toBe(200);
    expect(await env.STATE.get(`dead:${r.deliveryId}`)).toBeNull();
    expect((await admin(`/dead-letters/${r.deliveryId}`, { method: "DELETE" })).status).toBe(404);
  });

  it("replays one: the same delivery id reaches the receiver with attempts afresh, and the record goes", async () => {
    const r = record();
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
    const r = record();
    await store(r);
    vi.spyOn(env.DELIVERIES, "sendBatch").mockRejectedValue(new Error("Queue sendBatch failed"));
    const response = await admin(`/dead-letters/${r.deliveryId}/replay`, { method: "POST" });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: "queue_unavailable" });
    expect(await env.STATE.get(`dead:${r.deliveryId}`)).not.toBeNull();
  });

  it("replays all of one destination and leaves the others", async () => {
    const [a, b, c] = [record("wms"), record("shop"), record("wms")];
    await store(a!, b!, c!);
    const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
    const response = await admin("/dead-letters/replay?destination=wms", { method: "POST" });
    expect(response.status).toBe(202);
    const result = await response.json<{ replayed: string[]; more: boolean }>();
    expect(result.replayed.sort()).toEqual([a!.deliveryId, c!.deliveryId].sort());
    expect(result.more).toBe(false);
    expect(
      sendBatch.mock.calls.flatMap(([batch]) => [...batch].map((m) => (m.body as DeliveryMessage).deliveryId)).sort(),
    ).toEqual([a!.deliveryId, c!.deliveryId].sort());
    const left = await (await admin("/dead-letters")).json<{ items: { deliveryId: string }[] }>();
    expect(left.items.map((i) => i.deliveryId)).toEqual([b!.deliveryId]);
  });

  it("names a stored record it cannot read, skips it in a bulk replay and still deletes it", async () => {
    const good = record();
    await consumeDeadLetters([good]);
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
    await consumeDeadLetters([42]);
    const response = await admin("/dead-letters/unreadable.d0/replay", { method: "POST" });
    expect(response.status).toBe(409);
    expect(await response.json()).toMatchObject({ error: "not_replayable" });
  });
});

describe("admin authentication", () => {
  it("answers 401 without a token, with a WWW-Authenticate challenge", async () => {
    const response = await admin("/dead-letters", { headers: { authorization: "" } });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await response.json()).toMatchObject({ error: "unauthorized" });
  });

  it.each(["Bearer wrong", "Bearer test-admin-tokenX", "Basic dGVzdDp0ZXN0", "Bearer", "test-admin-token"])(
    "answers 401 to %j",
    async (authorization) => {
      const response = await admin("/dead-letters", { headers: { authorization } });
      expect(response.status).toBe(401);
      const text = await response.text();
      expect(text).not.toContain("test-admin-token");
    },
  );

  it("accepts the scheme in any case", async () => {
    expect((await admin("/dead-letters", { headers: { authorization: "bearer test-admin-token" } })).status).toBe(200);
  });

  it("is disabled with 503 admin_disabled when ADMIN_TOKEN is unset", async () => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(
      new Request("https://relay.test/admin/dead-letters", { headers: { authorization: "Bearer anything" } }) as never,
      { ...env, ADMIN_TOKEN: undefined } as Env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: "admin_disabled" });
  });
});
