import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { checkSenderSilence } from "../../src/alerts/silence.ts";
import type { Env } from "../../src/env.ts";
import { SENDER_SILENT_KEY } from "../../src/kv-keys.ts";
import { writeLedger } from "../../src/ledger/write.ts";
import type { AlertMessage } from "../../src/queues/alert.ts";
import { clearLedger, sentBodies } from "../helpers.ts";

/** sender_silent, from the Cron Trigger: one alert per silence, none while calls come, none for an empty ledger. */

const MINUTE = 60_000;
const NOW = Date.parse("2026-12-01T12:00:00Z");
let send: ReturnType<typeof vi.spyOn>;

beforeEach(async () => {
  await clearLedger();
  await env.RULES.delete(SENDER_SILENT_KEY);
  send = vi.spyOn(env.ALERTS, "send").mockImplementation(async () => undefined as never);
});
afterEach(() => vi.restoreAllMocks());

const callAt = (at: number) =>
  writeLedger(env.LEDGER, env.PAYLOADS, [
    {
      kind: "call",
      v: 2,
      id: crypto.randomUUID(),
      at,
      attempt: "1",
      outcome: "accepted",
      summary: { notifications: 0, deliveries: 0, actions: [], keys: [] },
    },
  ]);
const check = (minutes: number, now = NOW) => checkSenderSilence(env as Env, minutes, now);

describe("sender_silent", () => {
  it("alerts once when the newest call is older than SENDER_SILENCE_MINUTES, again only after a new call", async () => {
    await callAt(NOW - 125 * MINUTE);
    expect(await check(60)).toBe(true);
    expect(sentBodies<AlertMessage>(send)).toMatchObject([
      { kind: "alert", alert: { type: "sender_silent", count: 125, firstAt: NOW - 125 * MINUTE, lastAt: NOW } },
    ]);
    expect(await check(60, NOW + 10 * MINUTE)).toBe(false);
    // Calls came again, then stopped again: a new silence.
    await callAt(NOW + 5 * MINUTE);
    expect(await check(60, NOW + 30 * MINUTE)).toBe(false);
    expect(await check(60, NOW + 70 * MINUTE)).toBe(true);
    expect(send).toHaveBeenCalledTimes(2);
  });

  it("says nothing when it is off, when calls are recent, or when the ledger has no call at all", async () => {
    expect(await check(60)).toBe(false);
    await callAt(NOW - 500 * MINUTE);
    expect(await check(0)).toBe(false);
    await callAt(NOW - 5 * MINUTE);
    expect(await check(60)).toBe(false);
    expect(send).not.toHaveBeenCalled();
  });
});
