import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { hasCall } from "../../src/ledger/calls.ts";
import { getDeadLetter, listDeadLetters } from "../../src/ledger/dead-letters.ts";
import { listDeliveries } from "../../src/ledger/deliveries.ts";
import { redrive } from "../../src/ledger/waiting.ts";
import type { DeadLetter } from "../../src/queues/dead-letter.ts";
import { QUEUES } from "../../src/queues/names.ts";
import {
  clearLedger,
  consume,
  deadLetterRecord,
  deliveryMessage,
  EXAMPLE_RULES,
  failingLedger,
  freshId,
  putRules,
} from "../helpers.ts";

beforeEach(async () => {
  await putRules(EXAMPLE_RULES);
  await clearLedger();
  vi.spyOn(globalThis, "fetch").mockResolvedValue(new Response("ok"));
});
afterEach(() => vi.restoreAllMocks());

const stored = async (deliveryId: string): Promise<DeadLetter | null> => {
  const found = await getDeadLetter(env.LEDGER, env.PAYLOADS, deliveryId);
  return found === null ? null : "record" in found ? found.record : null;
};

describe("the dead-letter consumer", () => {
  it("writes the relay's record into the ledger as a dead delivery, idempotently", async () => {
    const r = deadLetterRecord();
    expect((await consume(QUEUES.deadLetters, [r, r])).explicitAcks).toEqual(["m0", "m1"]);
    expect(await stored(r.deliveryId)).toEqual(r);
    const rows = await listDeliveries(env.LEDGER, { limit: 10 });
    expect(rows.items.map((d) => [d.deliveryId, d.status])).toEqual([[r.deliveryId, "dead"]]);
  });

  it("turns a raw delivery message from Queues' own dead-letter path into a replayable record", async () => {
    const m = deliveryMessage("shop", { receivedAt: Date.parse("2026-11-28T09:00:00Z") });
    await consume(QUEUES.deadLetters, [m]);
    const record = await stored(m.deliveryId);
    expect(record).toMatchObject({
      reason: "queue_retries_exhausted",
      source: "queue",
      destination: "shop",
      message: m,
    });
    expect(record!.firstAttemptAt).toBe("2026-11-28T09:00:00.000Z");
  });

  it("keeps even an unreadable message, as a record that says so", async () => {
    await consume(QUEUES.deadLetters, ["what is this"]);
    expect(await stored("unreadable.m0")).toMatchObject({ reason: "unreadable_message", raw: "what is this" });
  });

  it("needs none of the vars: a bad one does not hold dead letters up", async () => {
    const r = deadLetterRecord();
    const result = await consume(QUEUES.deadLetters, [r], {
      env: { RETRY_SCHEDULE: "10,30,2m", MAX_BODY_BYTES: "lots", DEAD_LETTER_TTL_SECONDS: "forever" },
    });
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(await stored(r.deliveryId)).toEqual(r);
  });

  it("reads the backstop queue into the store too, so nothing ends where no one looks", async () => {
    const r = deadLetterRecord("shop");
    expect((await consume(QUEUES.deadLettersFailed, [r])).explicitAcks).toEqual(["m0"]);
    expect(await stored(r.deliveryId)).toEqual(r);
  });

  it("retries a record it could not write, waiting longer each time, and says so at error", async () => {
    const failing = failingLedger();
    const error = vi.spyOn(console, "error");
    const first = await consume(QUEUES.deadLetters, [deadLetterRecord()], { env: { LEDGER: failing } });
    const later = await consume(QUEUES.deadLetters, [deadLetterRecord()], { attempts: 5, env: { LEDGER: failing } });
    expect(first.explicitAcks).toEqual([]);
    expect(first.retryMessages).toEqual([{ msgId: "m0", delaySeconds: 5 }]);
    expect(later.retryMessages).toEqual([{ msgId: "m0", delaySeconds: 80 }]);
    expect(error.mock.calls.map((c) => JSON.parse(String(c[0])).event)).toEqual([
      "dead_letter_write_failed",
      "dead_letter_write_failed",
    ]);
  });

  it("on the backstop, lets a record whose write fails wait in R2 for D1 rather than drop it", async () => {
    const r = deadLetterRecord();
    const error = vi.spyOn(console, "error");
    const result = await consume(QUEUES.deadLettersFailed, [r], { env: { LEDGER: failingLedger() } });
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(JSON.parse(String(error.mock.calls[0]![0]))).toMatchObject({
      event: "dead_letter_write_failed",
      queue: "backstop",
    });
    expect(await stored(r.deliveryId)).toBeNull();
    expect(await redrive(env.LEDGER, env.PAYLOADS)).toMatchObject({ written: 1, waiting: 0 });
    expect(await stored(r.deliveryId)).toEqual(r);
  });

  it("hands a call record that Queues gave up on to the ledger, not to the dead letters", async () => {
    const id = freshId();
    const record = {
      kind: "call",
      v: 2,
      id,
      at: Date.now(),
      attempt: "1",
      outcome: "accepted",
      summary: { notifications: 0, deliveries: 0, actions: [], keys: [] },
    } as const;
    const write = vi.spyOn(env.LEDGER_RECORDS, "sendBatch").mockRejectedValue(new Error("down"));
    expect((await consume(QUEUES.deadLetters, [record])).explicitAcks).toEqual(["m0"]);
    expect(write).toHaveBeenCalled();
    expect(await hasCall(env.LEDGER, id)).toBe(true);
    expect((await listDeadLetters(env.LEDGER, { limit: 10 })).items).toEqual([]);
  });
});
