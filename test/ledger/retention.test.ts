import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../../src/env.ts";
import worker from "../../src/index.ts";
import { getCall, getDelivery } from "../../src/ledger/read.ts";
import { PRUNE_CHUNK, pruneLedger } from "../../src/ledger/retention.ts";
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
    await writeLedger(env.LEDGER, [
      ...callAt("old", NOW - 15 * DAY, "delivered"),
      ...callAt("new", NOW - 13 * DAY, "delivered"),
    ]);
    expect(await pruneLedger(env.LEDGER, options)).toEqual({ deliveries: 1, calls: 1, more: false });
    expect(await getCall(env.LEDGER, "old")).toBeNull();
    expect(await getDelivery(env.LEDGER, "old.wms")).toBeNull();
    expect((await getCall(env.LEDGER, "new"))!.deliveries[0]!.attempts).toHaveLength(1);
    const orphans = await env.LEDGER.prepare("SELECT COUNT(*) AS n FROM attempts WHERE delivery_id = 'old.wms'").first(
      "n",
    );
    expect(orphans).toBe(0);
  });

  it("keeps dead letters for DEAD_LETTER_TTL_SECONDS, whatever the retention, and their call with them", async () => {
    await writeLedger(env.LEDGER, [...callAt("dead-recent", NOW - 20 * DAY, "dead_letter")]);
    // Dead 20 days ago by its attempt; its record says when it died.
    await writeLedger(env.LEDGER, [
      {
        kind: "dead",
        record: { ...deadLetterRecord(), deliveryId: "dead-recent.wms", deadAt: new Date(NOW - 2 * DAY).toISOString() },
      },
    ]);
    await writeLedger(env.LEDGER, [...callAt("dead-old", NOW - 20 * DAY, "dead_letter")]);
    await pruneLedger(env.LEDGER, options);
    expect(await getDelivery(env.LEDGER, "dead-recent.wms")).toMatchObject({ status: "dead" });
    expect(await getCall(env.LEDGER, "dead-recent")).not.toBeNull();
    expect(await getDelivery(env.LEDGER, "dead-old.wms")).toBeNull();
  });

  it("leaves deliveries still on their way for three days past the retention", async () => {
    await writeLedger(env.LEDGER, [...callAt("waiting", NOW - 16 * DAY), ...callAt("lost", NOW - 18 * DAY)]);
    await pruneLedger(env.LEDGER, options);
    expect(await getDelivery(env.LEDGER, "waiting.wms")).toMatchObject({ status: "pending" });
    expect(await getDelivery(env.LEDGER, "lost.wms")).toBeNull();
  });

  it("works in bounded chunks, saying when there is more", async () => {
    const records = Array.from({ length: PRUNE_CHUNK * 3 }, (_, i) =>
      callAt(`bulk${i}`, NOW - 30 * DAY, "delivered"),
    ).flat();
    for (let i = 0; i < records.length; i += 500) await writeLedger(env.LEDGER, records.slice(i, i + 500));
    const limited = await pruneLedger(env.LEDGER, { ...options, chunks: 2 });
    expect(limited).toEqual({ deliveries: PRUNE_CHUNK * 2, calls: 0, more: true });
    const rest = await pruneLedger(env.LEDGER, options);
    expect(rest).toMatchObject({ deliveries: PRUNE_CHUNK, calls: PRUNE_CHUNK * 3, more: false });
  });

  it("runs from the Cron Trigger, and skips (logged) when a retention var is bad rather than guess", async () => {
    await writeLedger(env.LEDGER, [...callAt("cron-old", Date.now() - 20 * DAY, "delivered")]);
    const error = vi.spyOn(console, "error");
    await worker.scheduled(createScheduledController(), { ...env, LEDGER_RETENTION_DAYS: "2 weeks" } as Env);
    expect(JSON.parse(String(error.mock.calls[0]![0]))).toMatchObject({ event: "retention_skipped" });
    expect(await getCall(env.LEDGER, "cron-old")).not.toBeNull();
    await worker.scheduled(createScheduledController(), env as Env);
    expect(await getCall(env.LEDGER, "cron-old")).toBeNull();
  });
});
