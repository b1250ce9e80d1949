import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { bodyOf } from "../../src/delivery/body.ts";
import { getCall, getCallText, hasCall, listCalls } from "../../src/ledger/calls.ts";
import { getDeadLetter, listDeadLetters, nextDeadLetters } from "../../src/ledger/dead-letters.ts";
import { getDelivery, listDeliveries } from "../../src/ledger/deliveries.ts";
import { hourly } from "../../src/ledger/hourly.ts";
import { forgetNames } from "../../src/ledger/names.ts";
import { ensureLedger, LEDGER_VERSION, resetLedgerCheck, SCHEMA, schemaScript } from "../../src/ledger/schema.ts";
import { stats } from "../../src/ledger/stats.ts";
import { packText } from "../../src/ledger/texts.ts";
import { writeLedger } from "../../src/ledger/write.ts";
import { deliveryMessage, freshId } from "../helpers.ts";

const tables = async () =>
  (
    await env.LEDGER.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all<{
      name: string;
    }>()
  ).results
    .map((r) => r.name)
    .filter((name) => !name.startsWith("_cf") && !name.startsWith("sqlite_")); // D1's own, and SQLite's AUTOINCREMENT counters

async function dropEverything(): Promise<void> {
  for (const name of await tables()) await env.LEDGER.prepare(`DROP TABLE IF EXISTS ${name}`).run();
  resetLedgerCheck(env.LEDGER);
  forgetNames(env.LEDGER);
}

const V2_TABLES = [
  "activity",
  "console_sessions",
  "ledger_actions",
  "ledger_attempts",
  "ledger_calls",
  "ledger_deliveries",
  "ledger_keys",
  "ledger_meta",
  "ledger_names",
  "ledger_sender_attempts",
  "ledger_text_objects",
  "ledger_text_parts",
  "rules_versions",
];
/** What the Worker adds to SCHEMA's tables when it upgrades a ledger (src/ledger/migrations.ts UPGRADES). */
const TABLES = [...V2_TABLES, "ledger_alerts", "ledger_hourly", "ledger_jobs"].sort();

describe("the ledger's tables", () => {
  it("are created by the Worker itself on first use, with the version recorded", async () => {
    await dropEverything();
    expect(await hasCall(env.LEDGER, "anything")).toBe(false);
    expect(await tables()).toEqual(TABLES);
    expect(await env.LEDGER.prepare("SELECT value FROM ledger_meta WHERE key = 'schema'").first("value")).toBe(
      String(LEDGER_VERSION),
    );
  });

  it("upgrade a ledger of version 3 as relay shipped it (no answer column) so that failed attempts are written", async () => {
    await dropEverything();
    await ensureLedger(env.LEDGER);
    // Version 3 as shipped: SHAPING without the answer column, and nothing of the upgrade after it.
    await env.LEDGER.batch([
      env.LEDGER.prepare("DROP TRIGGER IF EXISTS ledger_hourly_count"),
      env.LEDGER.prepare("ALTER TABLE ledger_attempts DROP COLUMN answer"),
      env.LEDGER.prepare("UPDATE ledger_meta SET value = '3' WHERE key = 'schema'"),
    ]);
    resetLedgerCheck(env.LEDGER);
    await ensureLedger(env.LEDGER);
    const columns = await env.LEDGER.prepare("SELECT name FROM pragma_table_info('ledger_attempts')").all<{
      name: string;
    }>();
    expect(columns.results.map((c) => c.name)).toContain("answer");
    expect(await env.LEDGER.prepare("SELECT value FROM ledger_meta WHERE key = 'schema'").first("value")).toBe(
      String(LEDGER_VERSION),
    );
  });

  it("come from the script deploy applies too, which runs twice on a live ledger without harm", async () => {
    await dropEverything();
    const script = () =>
      schemaScript()
        .split(";\n")
        .filter((s) => s.trim() !== "");
    for (const statement of script()) await env.LEDGER.prepare(statement).run();
    expect(await tables()).toEqual(V2_TABLES);
    await writeLedger(env.LEDGER, env.PAYLOADS, [
      {
        kind: "call",
        v: 2,
        id: "kept",
        at: Date.now(),
        attempt: "1",
        outcome: "accepted",
        summary: { notifications: 0, deliveries: 0, actions: [], keys: [] },
      },
    ]);
    for (const statement of script()) await env.LEDGER.prepare(statement).run();
    expect(await hasCall(env.LEDGER, "kept")).toBe(true);
    expect(SCHEMA.every((sql) => /IF NOT EXISTS/.test(sql))).toBe(true);
  });
});

/** Relay 0.1's ledger (version 1), as its src/ledger/migrations.ts created it. */
const VERSION_1: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS calls (
      id TEXT PRIMARY KEY,
      received_at INTEGER NOT NULL,
      notification_count INTEGER NOT NULL,
      delivery_count INTEGER NOT NULL,
      actions TEXT NOT NULL,
      keys TEXT NOT NULL
    )`,
  `CREATE INDEX IF NOT EXISTS calls_by_time ON calls (received_at, id)`,
  `CREATE TABLE IF NOT EXISTS call_text (
      call_id TEXT NOT NULL,
      part INTEGER NOT NULL,
      parts INTEGER NOT NULL,
      chunk TEXT NOT NULL,
      PRIMARY KEY (call_id, part)
    )`,
  `CREATE TABLE IF NOT EXISTS sender_attempts (
      call_id TEXT NOT NULL,
      at INTEGER NOT NULL,
      attempt TEXT NOT NULL,
      outcome TEXT NOT NULL,
      PRIMARY KEY (call_id, at, attempt, outcome)
    ) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS notifications (
      call_id TEXT NOT NULL,
      idx INTEGER NOT NULL,
      action TEXT NOT NULL,
      warehouse TEXT,
      key TEXT,
      routes TEXT NOT NULL,
      destinations TEXT NOT NULL,
      received_at INTEGER NOT NULL,
      PRIMARY KEY (call_id, idx)
    ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS notifications_by_key ON notifications (key, received_at) WHERE key IS NOT NULL`,
  `CREATE INDEX IF NOT EXISTS notifications_by_action ON notifications (action, received_at)`,
  `CREATE TABLE IF NOT EXISTS deliveries (
      id TEXT PRIMARY KEY,
      call_id TEXT NOT NULL,
      destination TEXT NOT NULL,
      status TEXT NOT NULL,
      routes TEXT NOT NULL,
      indices TEXT NOT NULL,
      received_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      run INTEGER NOT NULL DEFAULT 0,
      attempts INTEGER NOT NULL DEFAULT 0,
      last_status INTEGER,
      last_error TEXT,
      last_attempt_at INTEGER,
      delivered_at INTEGER,
      dead_reason TEXT,
      dead_detail TEXT,
      dead_at INTEGER,
      dead_source TEXT,
      payload TEXT,
      replayable INTEGER NOT NULL DEFAULT 0,
      held_reason TEXT
    )`,
  `CREATE INDEX IF NOT EXISTS deliveries_by_call ON deliveries (call_id)`,
  `CREATE INDEX IF NOT EXISTS deliveries_by_destination ON deliveries (destination, received_at, id)`,
  `CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (status, received_at, id)`,
  `CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (received_at, id)`,
  `CREATE INDEX IF NOT EXISTS dead_letters ON deliveries (dead_at DESC, id) WHERE status = 'dead'`,
  `CREATE INDEX IF NOT EXISTS dead_letters_by_destination ON deliveries (destination, dead_at DESC, id) WHERE status = 'dead'`,
  `CREATE TABLE IF NOT EXISTS attempts (
      delivery_id TEXT NOT NULL,
      run INTEGER NOT NULL,
      attempt INTEGER NOT NULL,
      destination TEXT NOT NULL,
      at INTEGER NOT NULL,
      status INTEGER,
      error TEXT,
      duration_ms INTEGER,
      outcome TEXT NOT NULL,
      PRIMARY KEY (delivery_id, run, attempt)
    ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS attempts_by_destination ON attempts (destination, at)`,
];

const T0 = Date.parse("2026-11-20T08:00:00Z");

/** What relay 0.1 enqueued for a delivery (version 2), as its dead letters kept it. */
const version2 = (deliveryId: string, destination: string, callId: string) => {
  const { v: _, ...rest } = deliveryMessage(destination, { deliveryId, callId, receivedAt: T0 });
  return JSON.stringify({ v: 2, ...rest });
};

const A_TEXT = JSON.stringify({
  Id: "a1",
  Attempt: 1,
  Notifications: [
    { Action: "OrderCreated", Details: { OrderNumber: "3339887", OrderType: "NormalOrder" } },
    { Action: "BalanceChanged", Details: { ProductNumber: "P-1", Warehouse: "YX", Balance: 12.5 } },
  ],
});
const B_TEXT = JSON.stringify({
  Id: "b1",
  Attempt: 1,
  Notifications: [
    { Action: "CustomerCreated", Details: { CustomerNumber: "C-9", Note: "Åsa 😀" } },
    { Action: "CustomerChanged", Details: { CustomerNumber: "C-9" } },
  ],
});

/** A relay 0.1 ledger with one of everything it could hold. */
async function version1Ledger(): Promise<void> {
  await dropEverything();
  const run = (sql: string, ...params: unknown[]) =>
    env.LEDGER.prepare(sql)
      .bind(...params)
      .run();
  for (const sql of VERSION_1) await env.LEDGER.prepare(sql).run();
  await run("INSERT INTO ledger_meta (key, value) VALUES ('schema', '1')");
  const call = (id: string, at: number, actions: string[], keys: string[], count: number) =>
    run(
      "INSERT INTO calls (id, received_at, notification_count, delivery_count, actions, keys) VALUES (?1, ?2, 2, ?3, ?4, ?5)",
      id,
      at,
      count,
      JSON.stringify(actions),
      JSON.stringify(keys),
    );
  await call("a1", T0, ["OrderCreated", "BalanceChanged"], ["3339887", "P-1"], 2);
  await call("b1", T0 + 1000, ["CustomerCreated", "CustomerChanged"], ["C-9"], 3);
  const notification = (
    id: string,
    i: number,
    action: string,
    warehouse: string | null,
    key: string,
    routes: string[],
    destinations: string[],
    at: number,
  ) =>
    run(
      "INSERT INTO notifications (call_id, idx, action, warehouse, key, routes, destinations, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      id,
      i,
      action,
      warehouse,
      key,
      JSON.stringify(routes),
      JSON.stringify(destinations),
      at,
    );
  await notification("a1", 0, "OrderCreated", null, "3339887", ["orders"], ["wms", "shop"], T0);
  await notification("a1", 1, "BalanceChanged", "YX", "P-1", ["stock"], ["shop"], T0);
  await notification("b1", 0, "CustomerCreated", null, "C-9", ["customers"], ["crm", "wms"], T0 + 1000);
  await notification("b1", 1, "CustomerChanged", null, "C-9", ["customers"], ["crm", "wms"], T0 + 1000);
  await run(
    "INSERT INTO sender_attempts (call_id, at, attempt, outcome) VALUES ('a1', ?1, '1', 'accepted'), ('a1', ?2, '2', 'duplicate'), ('b1', ?3, '1', 'accepted')",
    T0,
    T0 + 60_000,
    T0 + 1000,
  );
  await run("INSERT INTO call_text (call_id, part, parts, chunk) VALUES ('a1', 0, 1, ?1)", packText(A_TEXT));
  const half = Math.ceil(B_TEXT.length / 2);
  await run(
    "INSERT INTO call_text (call_id, part, parts, chunk) VALUES ('b1', 0, 2, ?1), ('b1', 1, 2, ?2)",
    packText(B_TEXT.slice(0, half)),
    B_TEXT.slice(half),
  );
  const delivery = (f: Record<string, unknown>) => {
    const columns = Object.keys(f);
    return run(
      `INSERT INTO deliveries (${columns.join(", ")}) VALUES (${columns.map((_, i) => `?${i + 1}`).join(", ")})`,
      ...Object.values(f),
    );
  };
  const common = (
    id: string,
    callId: string,
    destination: string,
    routes: string[],
    indices: number[],
    at: number,
  ) => ({
    id,
    call_id: callId,
    destination,
    routes: JSON.stringify(routes),
    indices: JSON.stringify(indices),
    received_at: at,
    updated_at: at + 5000,
    replayable: 1,
  });
  await delivery({
    ...common("a1.wms", "a1", "wms", ["orders"], [0], T0),
    status: "delivered",
    attempts: 1,
    last_status: 200,
    delivered_at: T0 + 5000,
    last_attempt_at: T0 + 5000,
  });
  await delivery({
    ...common("a1.shop", "a1", "shop", ["orders", "stock"], [0, 1], T0),
    status: "retrying",
    attempts: 2,
    last_status: 503,
  });
  await delivery({
    ...common("b1.crm.n1", "b1", "crm", ["customers"], [1], T0 + 1000),
    status: "dead",
    attempts: 3,
    last_status: 410,
    dead_reason: "permanent_failure",
    dead_detail: "HTTP 410",
    dead_at: T0 + 9000,
    dead_source: "relay",
    payload: version2("b1.crm.n1", "crm", "b1"),
  });
  await delivery({
    ...common("b1.wms.p1", "b1", "wms", ["customers"], [0], T0 + 1000),
    status: "held",
    held_reason: "paused",
  });
  await delivery({
    ...common("b1.wms.p2", "b1", "wms", ["customers"], [1], T0 + 1000),
    status: "pending",
    replayable: 0,
  });
  await delivery({
    ...common("gone.wms", "gone", "wms", ["orders"], [0], T0 - 86_400_000),
    status: "dead",
    attempts: 12,
    dead_reason: "attempts_exhausted",
    dead_detail: "no attempts are left",
    dead_at: T0 + 2000,
    dead_source: "relay",
    payload: version2("gone.wms", "wms", "gone"),
  });
  await delivery({
    ...common("unreadable.m7", "", "(unknown)", [], [], T0 + 3000),
    status: "dead",
    attempts: 0,
    dead_reason: "unreadable_message",
    dead_detail: "not a delivery",
    dead_at: T0 + 3000,
    dead_source: "queue",
    payload: "not json",
    replayable: 0,
  });
  const attempt = (id: string, n: number, destination: string, status: number, outcome: string, ms: number) =>
    run(
      "INSERT INTO attempts (delivery_id, run, attempt, destination, at, status, duration_ms, outcome) VALUES (?1, 0, ?2, ?3, ?4, ?5, ?6, ?7)",
      id,
      n,
      destination,
      T0 + 4000 + n,
      status,
      ms,
      outcome,
    );
  await attempt("a1.wms", 1, "wms", 200, "delivered", 20);
  await attempt("a1.shop", 1, "shop", 503, "retry", 30);
  await attempt("a1.shop", 2, "shop", 503, "retry", 40);
  await attempt("b1.crm.n1", 1, "crm", 410, "dead_letter", 50);
}

describe("a ledger of relay 0.1", () => {
  it("is upgraded in place on first use: every call, delivery, attempt, sender attempt and text answers as before", async () => {
    await version1Ledger();
    expect(await hasCall(env.LEDGER, "a1")).toBe(true);
    expect(await tables()).toEqual(TABLES);
    // Its attempts are counted in the hourly figures once, by the upgrade (src/ledger/hourly.ts).
    const figures = await hourly(env.LEDGER, { since: T0 - 3_600_000, until: T0 + 86_400_000 });
    const total = Object.values(figures)
      .flat()
      .reduce((sum, h) => sum + h.delivered + h.retried + h.dead, 0);
    expect(total).toBe(
      (await env.LEDGER.prepare("SELECT COUNT(*) AS n FROM ledger_attempts").first<{ n: number }>())!.n,
    );

    const a1 = (await getCall(env.LEDGER, "a1"))!;
    expect(a1).toMatchObject({ id: "a1", receivedAt: new Date(T0).toISOString(), senderAttempts: [1, 2] });
    expect(a1.notifications).toEqual([
      {
        index: 0,
        action: "OrderCreated",
        warehouse: null,
        key: "3339887",
        routes: ["orders"],
        destinations: ["wms", "shop"],
      },
      { index: 1, action: "BalanceChanged", warehouse: "YX", key: "P-1", routes: ["stock"], destinations: ["shop"] },
    ]);
    expect(
      a1.deliveries.map((d) => [
        d.deliveryId,
        d.status,
        d.routes,
        d.notifications,
        d.attempts!.map((x) => [x.attempt, x.status, x.durationMs, x.outcome]),
      ]),
    ).toEqual([
      [
        "a1.shop",
        "retrying",
        ["orders", "stock"],
        [0, 1],
        [
          [1, 503, 30, "retry"],
          [2, 503, 40, "retry"],
        ],
      ],
      ["a1.wms", "delivered", ["orders"], [0], [[1, 200, 20, "delivered"]]],
    ]);
    // Its text still sends each delivery again exactly as planned.
    const wms = (await getDelivery(env.LEDGER, env.PAYLOADS, "a1.wms"))!;
    expect(JSON.parse(bodyOf(wms.message!, 1))).toEqual({
      ...JSON.parse(A_TEXT),
      Notifications: [JSON.parse(A_TEXT).Notifications[0]],
    });
    expect(await getCallText(env.LEDGER, env.PAYLOADS, "b1")).toBe(B_TEXT);

    const b1 = (await getCall(env.LEDGER, "b1"))!;
    expect(b1.deliveries.map((d) => [d.deliveryId, d.status, d.held?.reason ?? d.dead?.reason ?? null])).toEqual([
      ["b1.crm.n1", "dead", "permanent_failure"],
      ["b1.wms.p1", "held", "paused"],
      ["b1.wms.p2", "pending", null],
    ]);
    const ids = async (filter: Parameters<typeof listCalls>[1]) =>
      (await listCalls(env.LEDGER, filter)).items.map((c) => c.id);
    expect(await ids({ key: "3339887", limit: 10 })).toEqual(["a1"]);
    expect(await ids({ action: "CustomerChanged", limit: 10 })).toEqual(["b1"]);
    expect(await ids({ destination: "crm", limit: 10 })).toEqual(["b1"]);
    expect(await ids({ status: "dead", limit: 10 })).toEqual(["b1"]);
    expect(await ids({ limit: 10 })).toEqual(["b1", "a1"]);
    expect(
      (await listDeliveries(env.LEDGER, { destination: "wms", limit: 10 })).items.map((d) => d.deliveryId),
    ).toEqual(["b1.wms.p2", "b1.wms.p1", "a1.wms", "gone.wms"]);

    const dead = (await listDeadLetters(env.LEDGER, { limit: 10 })).items;
    expect(dead.map((d) => [d.deliveryId, d.reason])).toEqual([
      ["b1.crm.n1", "permanent_failure"],
      ["unreadable.m7", "unreadable_message"],
      ["gone.wms", "attempts_exhausted"],
    ]);
    expect(await getDeadLetter(env.LEDGER, env.PAYLOADS, "unreadable.m7")).toMatchObject({
      record: { raw: "not json", source: "queue" },
    });
    const gone = await getDeadLetter(env.LEDGER, env.PAYLOADS, "gone.wms");
    expect(gone).toMatchObject({ record: { attempts: 12, message: { deliveryId: "gone.wms", callId: "gone", v: 3 } } });
    const next = await nextDeadLetters(env.LEDGER, env.PAYLOADS, undefined, 10);
    expect(next.messages.map((m) => m.deliveryId).sort()).toEqual(["b1.crm.n1", "gone.wms"]);

    const numbers = await stats(env.LEDGER, env.PAYLOADS, T0 - 1);
    expect(numbers.destinations.wms).toMatchObject({ delivered: 1, held: 1, pending: 1, p50Ms: 20 });
    expect(numbers.destinations.shop).toMatchObject({ retrying: 1, p95Ms: 40 });
    expect(numbers.actions).toEqual({ OrderCreated: 1, BalanceChanged: 1, CustomerCreated: 1, CustomerChanged: 1 });
  });
});

/**
 * Runs `work` against the real ledger, and answers every statement it prepared with the SQL and the parameters it
 * bound: the queries ledger/ really runs, for EXPLAIN QUERY PLAN.
 */
async function statementsOf(work: (db: D1Database) => Promise<unknown>): Promise<{ sql: string; params: unknown[] }[]> {
  const seen: { sql: string; params: unknown[] }[] = [];
  const db = new Proxy(env.LEDGER, {
    get(target, property) {
      if (property === "prepare") {
        return (sql: string) => {
          const entry = { sql, params: [] as unknown[] };
          seen.push(entry);
          const statement = target.prepare(sql);
          return new Proxy(statement, {
            get(inner, key) {
              if (key === "bind") {
                return (...params: unknown[]) => {
                  entry.params = params;
                  return inner.bind(...params);
                };
              }
              const value = Reflect.get(inner, key);
              return typeof value === "function" ? value.bind(inner) : value;
            },
          });
        };
      }
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  await work(db);
  return seen;
}

describe("the ledger's reads", () => {
  it("answer every question from an index or the keys: the queries the code really runs", async () => {
    await dropEverything();
    await ensureLedger(env.LEDGER);
    const id = freshId();
    const since = Date.now() - 86_400_000;
    /** Each read, and the index its main query must use (a page scanned in the keys' order needs none). */
    const reads: [(db: D1Database) => Promise<unknown>, RegExp?][] = [
      [(db) => getCall(db, id), /sqlite_autoindex_ledger_calls_1 \(id=\?\)/],
      [(db) => listCalls(db, { limit: 50 })],
      [(db) => listCalls(db, { key: "3339977", limit: 50 }), /SEARCH ledger_keys USING PRIMARY KEY \(key=\?\)/],
      [(db) => listCalls(db, { action: "OrderCreated", since, limit: 50 }), /SEARCH ledger_actions USING PRIMARY KEY/],
      [(db) => listCalls(db, { destination: "wms", limit: 50 }), /ledger_deliveries_by_destination/],
      [(db) => listDeliveries(db, { limit: 50 })],
      [
        (db) => listDeliveries(db, { destination: "wms", limit: 50, cursor: [1, 1, 0] }),
        /ledger_deliveries_by_destination/,
      ],
      [(db) => listDeliveries(db, { status: "retrying", limit: 50 }), /ledger_deliveries_unsettled/],
      [(db) => listDeadLetters(db, { limit: 50 }), /ledger_dead_letters\b/],
      [(db) => listDeadLetters(db, { destination: "wms", limit: 50 }), /ledger_dead_letters_by_destination/],
      [(db) => nextDeadLetters(db, env.PAYLOADS, "wms", 100), /ledger_dead_letters_by_destination/],
      [(db) => getDelivery(db, env.PAYLOADS, `${id}.wms`), /sqlite_autoindex_ledger_calls_1 \(id=\?\)/],
      [(db) => stats(db, env.PAYLOADS, since), /SEARCH ledger_deliveries USING PRIMARY KEY \(call>\?\)/],
      [
        (db) => hourly(db, { since: since - 6 * 86_400_000, until: Date.now(), destinations: ["wms"] }),
        /SEARCH ledger_hourly USING PRIMARY KEY \(hour>\? AND hour<\?\)/,
      ],
    ];
    // The names the filters use exist, so that the queries run rather than answer nothing at once.
    await writeLedger(env.LEDGER, env.PAYLOADS, [
      {
        kind: "attempt",
        deliveryId: `${id}.wms`,
        destination: "wms",
        callId: id,
        routes: [],
        indices: [0],
        receivedAt: Date.now(),
        run: 0,
        attempt: 1,
        at: Date.now(),
        outcome: "delivered",
      },
      {
        kind: "call",
        v: 2,
        id,
        at: Date.now(),
        attempt: "1",
        outcome: "accepted",
        summary: { notifications: 1, deliveries: 1, actions: ["OrderCreated"], keys: [] },
        notifications: [
          { i: 0, action: "OrderCreated", warehouse: null, key: null, routes: [], destinations: ["wms"] },
        ],
        deliveries: [{ id: `${id}.wms`, destination: "wms", routes: [], indices: [0] }],
      },
    ]);
    for (const [read, index] of reads) {
      const plans: string[] = [];
      for (const { sql, params } of await statementsOf(read)) {
        if (!/^\s*SELECT/i.test(sql)) continue;
        const details = (
          await env.LEDGER.prepare(`EXPLAIN QUERY PLAN ${sql}`)
            .bind(...params)
            .all<{ detail: string }>()
        ).results.map((p) => p.detail);
        plans.push(details.join(" | "));
        // A scan is only of json_each (the ids a query was given), of the few names, or of a whole table in its
        // keys' order (newest first) that stops at the page's LIMIT with no sort of its own.
        const paged = /\bLIMIT\b/.test(sql) && !details.some((d) => /TEMP B-TREE/.test(d));
        for (const detail of details) {
          const alias = /^SCAN (\w+)/.exec(detail)?.[1];
          if (alias === undefined || /json_each|CONSTANT ROW/.test(detail)) continue;
          if (new RegExp(`ledger_names ${alias}\\b`).test(sql)) continue;
          if (paged && (index === undefined || index.test(detail))) continue;
          throw new Error(`${sql}\n  scans: ${detail}\n  plan: ${details.join(" | ")}`);
        }
      }
      if (index !== undefined) expect(plans.join("\n"), String(read)).toMatch(index);
    }
  });
});
