import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RelayError } from "../../src/errors.ts";
import { listActivity } from "../../src/ledger/activity.ts";
import { getJob } from "../../src/ledger/jobs.ts";
import { JOB_CHUNK, previewJob, startJob } from "../../src/ops/jobs.ts";
import type { OpContext } from "../../src/ops/record.ts";
import { clearLedger, storedDeadLetters as deadLetters, EXAMPLE_RULES, eventually, putRules } from "../helpers.ts";

/**
 * Bulk actions (docs/console.md, "Bulk actions"): every delivery matching a filter replayed, or every such dead
 * letter deleted, in chunks through the JOBS queue, with progress in the ledger and one activity row.
 */
const op = (): OpContext => ({
  env: env as never,
  actor: { id: "ops@example.com", role: "operator", via: "api" },
  ip: "192.0.2.1",
  now: Date.now(),
});

let sent: string[];
beforeEach(async () => {
  await clearLedger();
  await putRules(EXAMPLE_RULES);
  sent = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    sent.push(new Request(input, init).headers.get("x-relay-delivery-id") ?? "");
    return new Response("ok");
  });
});
afterEach(() => vi.restoreAllMocks());

describe("a bulk replay", () => {
  it(`replays every dead letter of a destination in chunks of ${JOB_CHUNK}, and only those, with progress and one activity row`, async () => {
    const wms = await deadLetters("wms", JOB_CHUNK + 30);
    const shop = await deadLetters("shop", 5);
    const filter = { destination: "wms", status: "dead" as const };
    expect(await previewJob(env, filter)).toBe(JOB_CHUNK + 30);
    const job = await startJob(op(), "replay", filter);
    expect(job).toMatchObject({ kind: "replay", total: JOB_CHUNK + 30, state: "running", actor: "ops@example.com" });
    const done = await eventually(async () => {
      const now = (await getJob(env.LEDGER, job.id))!;
      expect(now.state).toBe("done");
      return now;
    }, 30_000);
    expect(done).toMatchObject({ done: JOB_CHUNK + 30, skipped: 0 });
    await eventually(() => expect(new Set(sent)).toEqual(new Set(wms)), 30_000);
    expect(sent.filter((id) => shop.includes(id))).toEqual([]);
    const activity = await listActivity(env.LEDGER, { action: "deliveries.bulk_replay", limit: 5 });
    expect(activity.items).toHaveLength(1);
    expect(activity.items[0]).toMatchObject({
      actor: "ops@example.com",
      target: "wms",
      detail: { count: JOB_CHUNK + 30 },
    });
    expect(done.activity).toBe(activity.items[0]!.id);
  });
});

describe("a bulk delete", () => {
  it("deletes the dead letters that match, and refuses any status but dead", async () => {
    await deadLetters("wms", 3);
    const kept = await deadLetters("shop", 2);
    await expect(startJob(op(), "delete", { destination: "wms", status: "retrying" })).rejects.toThrow(RelayError);
    const job = await startJob(op(), "delete", { destination: "wms", status: "dead" });
    await eventually(async () => expect((await getJob(env.LEDGER, job.id))!).toMatchObject({ state: "done", done: 3 }));
    expect(await previewJob(env, { status: "dead" })).toBe(kept.length);
    expect(sent).toEqual([]);
  });
});
