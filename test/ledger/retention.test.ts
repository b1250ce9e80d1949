import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../../src/env.ts";
import worker from "../../src/index.ts";
import { getActivity, insertActivity } from "../../src/ledger/activity.ts";
import { getCall, getCallText } from "../../src/ledger/calls.ts";
import { getDelivery } from "../../src/ledger/deliveries.ts";
import { PRUNE_CHUNK, pruneLedger } from "../../src/ledger/retention.ts";
import { findSession, insertSession } from "../../src/ledger/sessions.ts";
import { writeLedger } from "../../src/ledger/write.ts";
import type { CallRecord } from "../../src/queues/call.ts";
import type { AttemptRecord } from "../../src/queues/ledger.ts";
import { clearLedger, deadLetterRecord, deliveryMessage } from "../helpers.ts";

const DAY = 86_400_000;
const NOW = Date.parse("2026-12-01T12:00:00Z");

function callAt(id: string, at: number, outcome?: AttemptRecord["outcome"]): (CallRecord | AttemptRecord)[] {
  const record: CallRecord = {
    kind: "call",
    v: 1,
    id,
    at,
    attempt: "1",
    outcome: "accepted",
    summary: { notifications: 1, deliveries: 1, actions: ["OrderCreated"], keys: ["1"] },
    notifications: [{ i: 0, action: "OrderCreated", warehouse: null, key: "1", routes: ["r"], destinations: ["wms"] }],
    deliveries: [{ id: `${id}.wms`, destination: "wms", routes: ["r"], indices: [0] }],
  };
  if (outcome === undefined) return [record];
  return [
    record,
    {
      kind: "attempt",
      deliveryId: `${id}.wms`,
      destination: "wms",
      callId: id,
      routes: ["r"],
      indices: [0],
      receivedAt: at,
      run: 0,
      attempt: 1,
      at: at + 1000,
      status: 200,
      outcome,
      payload: JSON.stringify(deliveryMessage("wms")),
      ...(outcome === "dead_letter" && { dead: { reason: "permanent_failure", detail: "HTTP 410" } }),
    },
  ];
}

beforeEach(() => clearLedger());

const options = { retentionDays: 14, deadLetterTtlSeconds: 7 * 86_400, now: NOW };

describe("ledger retention", () => {
  it("removes delivered deliveries and their calls past the retention, and keeps everything newer", async () => {
    await writeLedger(env.LEDGER, env.PAYLOADS, [
      ...callAt("old", NOW - 15 * DAY, "delivered"),
      ...callAt("new", NOW - 13 * DAY, "delivered"),
    ]);
    expect(await pruneLedger(env.LEDGER, env.PAYLOADS, options)).toEqual({
      deliveries: 1,
      calls: 1,
      objects: 0,
      more: false,
    });
    expect(await getCall(env.LEDGER, "old")).toBeNull();
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, "old.wms")).toBeNull();
    expect((await getCall(env.LEDGER, "new"))!.deliveries[0]!.attempts).toHaveLength(1);
    // Nothing of the old call is left behind: each table holds the new call's one row only.
    for (const table of ["ledger_attempts", "ledger_deliveries", "ledger_keys", "ledger_actions", "ledger_calls"]) {
      expect(await env.LEDGER.prepare(`SELECT COUNT(*) AS n FROM ${table}`).first("n"), table).toBe(1);
    }
  });

  it("keeps dead letters for DEAD_LETTER_TTL_SECONDS, whatever the retention, and their call with them", async () => {
    await writeLedger(env.LEDGER, env.PAYLOADS, [...callAt("dead-recent", NOW - 20 * DAY, "dead_letter")]);
    // Dead 20 days ago by its attempt; its record says when it died.
    await writeLedger(env.LEDGER, env.PAYLOADS, [
      {
        kind: "dead",
        record: {
          ...deadLetterRecord(
            "wms",
            undefined,
            deliveryMessage("wms", {
              deliveryId: "dead-recent.wms",
              callId: "dead-recent",
              receivedAt: NOW - 20 * DAY,
            }),
          ),
          deadAt: new Date(NOW - 2 * DAY).toISOString(),
        },
      },
    ]);
    await writeLedger(env.LEDGER, env.PAYLOADS, [...callAt("dead-old", NOW - 20 * DAY, "dead_letter")]);
    await pruneLedger(env.LEDGER, env.PAYLOADS, options);
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, "dead-recent.wms")).toMatchObject({ status: "dead" });
    expect(await getCall(env.LEDGER, "dead-recent")).not.toBeNull();
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, "dead-old.wms")).toBeNull();
  });

  it("leaves deliveries still on their way for three days past the retention", async () => {
    await writeLedger(env.LEDGER, env.PAYLOADS, [
      ...callAt("waiting", NOW - 16 * DAY),
      ...callAt("lost", NOW - 18 * DAY),
    ]);
    await pruneLedger(env.LEDGER, env.PAYLOADS, options);
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, "waiting.wms")).toMatchObject({ status: "pending" });
    expect(await getDelivery(env.LEDGER, env.PAYLOADS, "lost.wms")).toBeNull();
  });

  it("works in bounded chunks, saying when there is more", async () => {
    const records = Array.from({ length: PRUNE_CHUNK * 3 }, (_, i) =>
      callAt(`bulk${i}`, NOW - 30 * DAY, "delivered"),
    ).flat();
    for (let i = 0; i < records.length; i += 500)
      await writeLedger(env.LEDGER, env.PAYLOADS, records.slice(i, i + 500));
    const limited = await pruneLedger(env.LEDGER, env.PAYLOADS, { ...options, chunks: 2 });
    expect(limited).toEqual({ deliveries: PRUNE_CHUNK * 2, calls: 0, objects: 0, more: true });
    const rest = await pruneLedger(env.LEDGER, env.PAYLOADS, options);
    expect(rest).toMatchObject({ deliveries: PRUNE_CHUNK, calls: PRUNE_CHUNK * 3, more: false });
  });

  it("deletes what the ledger keeps in R2 with it: a call's claims with the call, text objects by their day", async () => {
    const claim = { key: "claims/with-claims/n0", bytes: 2, sha256: "0".repeat(64) };
    await env.PAYLOADS.put(claim.key, "{}");
    const [record, attempt] = callAt("with-claims", NOW - 20 * DAY, "delivered") as [CallRecord, AttemptRecord];
    await writeLedger(env.LEDGER, env.PAYLOADS, [{ ...record, claims: [claim], text: "{}" }, attempt], NOW - 20 * DAY);
    const [recent, delivered] = callAt("recent", NOW - DAY, "delivered") as [CallRecord, AttemptRecord];
    await writeLedger(env.LEDGER, env.PAYLOADS, [{ ...recent, text: '{"Id":"recent"}' }, delivered], NOW - DAY);
    const texts = async () => (await env.PAYLOADS.list({ prefix: "ledger/texts/" })).objects.length;
    expect(await texts()).toBeGreaterThanOrEqual(1);
    const pruned = await pruneLedger(env.LEDGER, env.PAYLOADS, options);
    expect(pruned).toMatchObject({ calls: 1, more: false });
    expect(await env.PAYLOADS.head(claim.key)).toBeNull();
    // The old day's text object is gone; the recent call's stays, and its text reads back.
    expect(await env.LEDGER.prepare("SELECT COUNT(*) AS n FROM ledger_text_objects").first("n")).toBe(1);
    expect(pruned.objects).toBe(2);
    expect(await getCallText(env.LEDGER, env.PAYLOADS, "recent")).toBe('{"Id":"recent"}');
  });

  it("runs from the Cron Trigger, and skips (logged) when a retention var is bad rather than guess", async () => {
    await writeLedger(env.LEDGER, env.PAYLOADS, [...callAt("cron-old", Date.now() - 20 * DAY, "delivered")]);
    const error = vi.spyOn(console, "error");
    await worker.scheduled(createScheduledController(), { ...env, LEDGER_RETENTION_DAYS: "2 weeks" } as Env);
    expect(JSON.parse(String(error.mock.calls[0]![0]))).toMatchObject({ event: "retention_skipped" });
    expect(await getCall(env.LEDGER, "cron-old")).not.toBeNull();
    await worker.scheduled(createScheduledController(), env as Env);
    expect(await getCall(env.LEDGER, "cron-old")).toBeNull();
  });
});

describe("the activity log and console sessions", () => {
  it("are pruned by the Cron Trigger: rows past ACTIVITY_RETENTION_DAYS and ended sessions go, the rest stays", async () => {
    const now = Date.now();
    const row = (at: number) => ({
      at,
      actor: "a",
      role: "operator" as const,
      via: "api" as const,
      action: "sign_in" as const,
      outcome: "ok" as const,
    });
    const old = await insertActivity(env.LEDGER, row(now - 31 * DAY));
    const kept = await insertActivity(env.LEDGER, row(now - 29 * DAY));
    const session = {
      actor: "admin-token",
      role: "operator" as const,
      tokenHash: "t",
      createdAt: now - DAY,
      expiresAt: now + DAY,
    };
    await insertSession(env.LEDGER, { ...session, idHash: "idle", lastSeenAt: now - 60 * 60_000 });
    await insertSession(env.LEDGER, { ...session, idHash: "live", lastSeenAt: now - 60_000 });
    await worker.scheduled(createScheduledController({ scheduledTime: now, cron: "*/10 * * * *" }), {
      ...env,
      ACTIVITY_RETENTION_DAYS: "30",
    } as Env);
    expect(await getActivity(env.LEDGER, old)).toBeNull();
    expect(await getActivity(env.LEDGER, kept)).not.toBeNull();
    expect(await findSession(env.LEDGER, "idle")).toBeNull();
    expect(await findSession(env.LEDGER, "live")).not.toBeNull();
  });
});
