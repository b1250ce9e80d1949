import { createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEAD_LETTER_RETRIES } from "../src/dead-letters/consumer.ts";
import type { Env } from "../src/env.ts";
import worker from "../src/index.ts";
import { LEDGER_TRIES } from "../src/ledger/consumer.ts";
import type { DeadLetter } from "../src/queues/dead-letter.ts";
import { MESSAGE_BUDGET, RECORD_TEXT_LIMITS } from "../src/queues/limits.ts";
import { QUEUES } from "../src/queues/names.ts";
import wranglerToml from "../wrangler.toml?raw";
import { consume, deliveryMessage, putRules } from "./helpers.ts";

/** The `[[section]]` tables of wrangler.toml with their `key = value` lines (enough for this file's syntax). */
function tables(section: string): Record<string, string>[] {
  return wranglerToml
    .split(/^\[\[/m)
    .filter((block) => block.startsWith(`${section}]]`))
    .map((block) =>
      Object.fromEntries(
        [...block.matchAll(/^(\w+) = "?([^"\n]*)"?$/gm)].map((m) => [m[1]!, m[2]!] as [string, string]),
      ),
    );
}

describe("the queues", () => {
  it("are the ones wrangler.toml declares, each with a consumer, by exact name", () => {
    const producers = tables("queues.producers").map((t) => t.queue);
    const consumers = tables("queues.consumers");
    expect(producers).toEqual([QUEUES.deliveries, QUEUES.deadLetters, QUEUES.ledger, QUEUES.alerts, QUEUES.jobs]);
    expect(consumers.map((c) => c.queue)).toEqual([
      QUEUES.deliveries,
      QUEUES.deadLetters,
      QUEUES.deadLettersFailed,
      QUEUES.ledger,
      QUEUES.ledgerFailed,
      QUEUES.alerts,
      QUEUES.jobs,
    ]);
    const byName = Object.fromEntries(consumers.map((c) => [c.queue, c]));
    expect(byName[QUEUES.deliveries]!.dead_letter_queue).toBe(QUEUES.deadLetters);
    expect(byName[QUEUES.deadLetters]!.dead_letter_queue).toBe(QUEUES.deadLettersFailed);
    expect(byName[QUEUES.ledger]!.dead_letter_queue).toBe(QUEUES.ledgerFailed);
    expect(Number(byName[QUEUES.deadLetters]!.max_retries)).toBe(DEAD_LETTER_RETRIES.deadLetters);
    expect(Number(byName[QUEUES.deadLettersFailed]!.max_retries)).toBe(DEAD_LETTER_RETRIES.backstop);
    // The ledger consumer gives a write up itself, after LEDGER_TRIES; Queues' limit must lie beyond that.
    expect(Number(byName[QUEUES.ledger]!.max_retries)).toBeGreaterThan(LEDGER_TRIES);
    // The alert consumer retries a failed channel itself with a new message; Queues' own retries are a backstop.
    expect(Number(byName[QUEUES.alerts]!.max_retries)).toBeGreaterThan(0);
  });

  it("are told apart by exact name: a queue the Worker does not know is an error, not a guess", async () => {
    for (const name of ["other-dead-letters", "extend-relay-deliveries-staging", "dead-letters"]) {
      const batch = createMessageBatch(name, [{ id: "x", timestamp: new Date(), attempts: 1, body: "{}" }]);
      await expect(worker.queue(batch as MessageBatch<unknown>, env as Env)).rejects.toThrow(name);
    }
  });
});

describe("a dead-letter record", () => {
  beforeEach(() =>
    putRules({ version: 1, destinations: { big: { url: "https://big.test/", maxAttempts: 1 } }, routes: [] }),
  );
  afterEach(() => vi.restoreAllMocks());

  it("of the largest message the planner accepts, with every text field at its bound, still fits a queue message", async () => {
    // A network error with a long multi-byte message: it lands in both `detail` and `lastError`.
    vi.spyOn(globalThis, "fetch").mockRejectedValue(new TypeError(`connection reset ${"é".repeat(2000)}`));
    const send = vi.spyOn(env.DEAD_LETTERS, "send");
    // Multi-byte text filling a message up to the planner's budget, under the longest delivery id there is.
    const id = "I".repeat(200);
    const messageWith = (note: string) =>
      deliveryMessage(
        "big",
        { deliveryId: `${id}.${"d".repeat(64)}.p9999`, part: [9999, 9999] },
        JSON.stringify({ Id: id, Attempt: 1, Notifications: [{ Action: "OrderCreated", Details: { Note: note } }] }),
      );
    const size = (note: string) => new TextEncoder().encode(JSON.stringify(messageWith(note))).byteLength;
    const message = messageWith("€".repeat(Math.floor((MESSAGE_BUDGET - size("")) / 3)));
    expect(size("")).toBeLessThan(1000);
    expect(JSON.stringify(message).length).toBeGreaterThan(40_000);
    const bytes = new TextEncoder().encode(JSON.stringify(message)).byteLength;
    expect(bytes).toBeGreaterThan(MESSAGE_BUDGET - 3);
    expect(bytes).toBeLessThanOrEqual(MESSAGE_BUDGET);

    const result = await consume(QUEUES.deliveries, [message]);
    // The real DEAD_LETTERS producer took it: Queues refuses a message over 128 KB.
    expect(send).toHaveBeenCalledTimes(1);
    await send.mock.results[0]!.value; // rejects if Queues refused the record
    expect(result.explicitAcks).toEqual(["m0"]);
    const record = JSON.parse(send.mock.calls[0]![0] as string) as DeadLetter;
    expect(record.message).toEqual(message);
    expect(record.reason).toBe("attempts_exhausted");
    expect(new TextEncoder().encode(record.detail).byteLength).toBeLessThanOrEqual(RECORD_TEXT_LIMITS.detail);
    expect(new TextEncoder().encode(record.lastError!).byteLength).toBeLessThanOrEqual(RECORD_TEXT_LIMITS.lastError);
  });
});
