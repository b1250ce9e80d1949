import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { hasCall } from "../../src/ledger/read.ts";
import { ensureLedger, LEDGER_VERSION, MIGRATIONS, resetLedgerCheck, schemaScript } from "../../src/ledger/schema.ts";

const tables = async () =>
  (
    await env.LEDGER.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all<{
      name: string;
    }>()
  ).results
    .map((r) => r.name)
    .filter((name) => !name.startsWith("_cf")); // D1's own

describe("the ledger's tables", () => {
  it("are created by the Worker itself on first use, with the version recorded", async () => {
    for (const name of await tables()) await env.LEDGER.prepare(`DROP TABLE IF EXISTS ${name}`).run();
    resetLedgerCheck(env.LEDGER);
    expect(await hasCall(env.LEDGER, "anything")).toBe(false);
    expect(await tables()).toEqual([
      "attempts",
      "call_text",
      "calls",
      "deliveries",
      "ledger_meta",
      "notifications",
      "sender_attempts",
    ]);
    expect(await env.LEDGER.prepare("SELECT value FROM ledger_meta WHERE key = 'schema'").first("value")).toBe(
      String(LEDGER_VERSION),
    );
  });

  it("upgrade idempotently: the script deploy applies runs twice on a live ledger without harm", async () => {
    await ensureLedger(env.LEDGER);
    await env.LEDGER.prepare(
      "INSERT OR IGNORE INTO calls (id, received_at, notification_count, delivery_count, actions, keys) VALUES ('kept', 1, 0, 0, '[]', '[]')",
    ).run();
    for (let i = 0; i < 2; i++) {
      for (const statement of schemaScript()
        .split(";\n")
        .filter((s) => s.trim() !== "")) {
        await env.LEDGER.prepare(statement).run();
      }
    }
    expect(await hasCall(env.LEDGER, "kept")).toBe(true);
    expect(MIGRATIONS.flat().every((sql) => /IF NOT EXISTS/.test(sql))).toBe(true);
  });

  it("answer every list query from an index", async () => {
    await ensureLedger(env.LEDGER);
    const plans = [
      "SELECT call_id FROM notifications WHERE key = '3339977'",
      "SELECT id FROM calls ORDER BY received_at DESC, id DESC LIMIT 50",
      "SELECT id FROM deliveries WHERE call_id = 'x'",
      "SELECT id FROM deliveries WHERE destination = 'wms' ORDER BY received_at DESC, id DESC LIMIT 50",
      "SELECT id FROM deliveries WHERE status = 'dead' ORDER BY dead_at DESC, id LIMIT 50",
      "SELECT id FROM deliveries WHERE status = 'retrying' ORDER BY received_at DESC, id DESC LIMIT 50",
      "SELECT destination FROM attempts WHERE destination = 'wms' AND at >= 0",
      "SELECT id FROM deliveries ORDER BY received_at DESC, id DESC LIMIT 50",
    ];
    for (const sql of plans) {
      const plan = (await env.LEDGER.prepare(`EXPLAIN QUERY PLAN ${sql}`).all<{ detail: string }>()).results;
      expect(plan.map((p) => p.detail).join(" | "), sql).toMatch(/USING (COVERING )?INDEX|USING PRIMARY KEY|SEARCH/);
      expect(plan.map((p) => p.detail).join(" | "), sql).not.toMatch(/^SCAN \w+$/m);
      // Newest-first lists read their oldest-first index backwards: no sort of their own.
      if (/ORDER BY (received_at|c\.received_at) DESC/.test(sql)) {
        expect(plan.map((p) => p.detail).join(" | "), sql).not.toMatch(/TEMP B-TREE/);
      }
    }
  });
});
