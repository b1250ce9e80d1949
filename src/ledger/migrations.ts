/**
 * The ledger's DDL (src/ledger/schema.ts applies it), free of Workers types so that `npm run deploy` can apply the
 * same script. SCHEMA is the current one, every statement idempotent; UPGRADES[k] takes a ledger of version k + 1
 * to version k + 2, in one transaction. Never edit an upgrade that has shipped: add another.
 *
 * Sizes (docs/ledger.md, "How it is stored"): every row refers to its call by `seq`, its time-ordered number
 * (src/ledger/keys.ts), so no table needs an index on time; names (destinations, Actions, routes) are numbers
 * (ledger_names); small rows live in WITHOUT ROWID tables, stored once in their primary key; a call's text is in
 * R2 (src/ledger/texts.ts), not in D1; a delivered delivery's row leaves the index of unsettled ones.
 */
import { SEQ_EPOCH } from "./keys.ts";

export const SCHEMA: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS ledger_names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)`,
  // attempt: the sender's Attempt of the acceptance, NULL until the call's record is written (a row made by an
  // attempt or a duplicate that arrived first). received_at: only when it differs from what seq says.
  // notifications: [[action, warehouse, key, [routes], [destinations]]]; plan: [[destination, part, [routes],
  // [notification positions]]], names by their number. duplicates: sender attempts beyond those kept.
  `CREATE TABLE IF NOT EXISTS ledger_calls (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    received_at INTEGER,
    attempt TEXT,
    notifications TEXT,
    plan TEXT,
    text_object INTEGER,
    text_at INTEGER,
    text_bytes INTEGER,
    claims TEXT,
    duplicates INTEGER
  )`,
  `CREATE TABLE IF NOT EXISTS ledger_sender_attempts (
    call INTEGER NOT NULL,
    at INTEGER NOT NULL,
    attempt TEXT NOT NULL,
    outcome TEXT NOT NULL,
    PRIMARY KEY (call, at, attempt, outcome)
  ) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS ledger_keys (key TEXT NOT NULL, call INTEGER NOT NULL, PRIMARY KEY (key, call)) WITHOUT ROWID`,
  `CREATE TABLE IF NOT EXISTS ledger_actions (action INTEGER NOT NULL, call INTEGER NOT NULL, PRIMARY KEY (action, call)) WITHOUT ROWID`,
  // status: src/ledger/keys.ts STATUS_CODES. dead: {reason, detail, source} of a dead letter. stuck: 1 for a dead
  // letter with no message that can be sent again. delivery_id: only for an id that partOf cannot read.
  `CREATE TABLE IF NOT EXISTS ledger_deliveries (
    call INTEGER NOT NULL,
    destination INTEGER NOT NULL,
    part INTEGER NOT NULL,
    status INTEGER NOT NULL,
    at INTEGER NOT NULL,
    run INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error TEXT,
    held_reason TEXT,
    dead_at INTEGER,
    dead TEXT,
    stuck INTEGER,
    payload TEXT,
    delivery_id TEXT,
    PRIMARY KEY (call, destination, part)
  ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS ledger_deliveries_by_destination ON ledger_deliveries (destination, call)`,
  `CREATE INDEX IF NOT EXISTS ledger_deliveries_unsettled ON ledger_deliveries (status, call) WHERE status > 0`,
  `CREATE INDEX IF NOT EXISTS ledger_dead_letters ON ledger_deliveries (dead_at) WHERE status = 5`,
  `CREATE INDEX IF NOT EXISTS ledger_dead_letters_by_destination ON ledger_deliveries (destination, dead_at) WHERE status = 5`,
  `CREATE TABLE IF NOT EXISTS ledger_attempts (
    call INTEGER NOT NULL,
    destination INTEGER NOT NULL,
    part INTEGER NOT NULL,
    run INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    status INTEGER,
    error TEXT,
    duration_ms INTEGER,
    outcome INTEGER NOT NULL,
    PRIMARY KEY (call, destination, part, run, attempt)
  ) WITHOUT ROWID`,
  // The R2 objects holding call texts, one per ledger batch (src/ledger/texts.ts), by the UTC day they were written.
  `CREATE TABLE IF NOT EXISTS ledger_text_objects (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, day INTEGER NOT NULL)`,
  // Call texts kept in D1 instead: those of relay 0.1's ledger, and any whose R2 write failed (deflated parts).
  `CREATE TABLE IF NOT EXISTS ledger_text_parts (
    call INTEGER NOT NULL,
    part INTEGER NOT NULL,
    parts INTEGER NOT NULL,
    chunk BLOB NOT NULL,
    PRIMARY KEY (call, part)
  ) WITHOUT ROWID`,
  // Operators (docs/console.md): console sessions (only the SHA-256 of each cookie's id), the activity log
  // (append-only: rows are inserted and, past retention, deleted; never updated) and every saved rules document.
  `CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash TEXT PRIMARY KEY,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID`,
  `CREATE INDEX IF NOT EXISTS console_sessions_by_expiry ON console_sessions (expires_at)`,
  `CREATE TABLE IF NOT EXISTS activity (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    via TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT,
    ip TEXT,
    outcome TEXT NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS activity_by_time ON activity (at)`,
  `CREATE INDEX IF NOT EXISTS activity_by_actor ON activity (actor, id)`,
  `CREATE INDEX IF NOT EXISTS activity_by_action ON activity (action, id)`,
  `CREATE INDEX IF NOT EXISTS activity_by_target ON activity (target, id)`,
  `CREATE TABLE IF NOT EXISTS rules_versions (
    version INTEGER PRIMARY KEY AUTOINCREMENT,
    saved_at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    via TEXT NOT NULL,
    restored_from INTEGER,
    hash TEXT NOT NULL,
    text TEXT NOT NULL
  )`,
];

/** The part number (src/ledger/keys.ts partOf) of a relay 0.1 delivery row `d`, in SQL; NULL for another shape. */
function partSql(d: string): string {
  const stem = `${d}.call_id || '.' || ${d}.destination`;
  const rest = `substr(${d}.id, length(${d}.call_id) + length(${d}.destination) + 4)`;
  const prefix = `substr(${d}.id, 1, length(${d}.call_id) + length(${d}.destination) + 3)`;
  return `CASE WHEN ${d}.id = ${stem} THEN 0
    WHEN ${prefix} = ${stem} || '.p' AND ${rest} GLOB '[1-9]*' AND ${rest} NOT GLOB '*[^0-9]*' THEN CAST(${rest} AS INTEGER)
    WHEN ${prefix} = ${stem} || '.n' AND ${rest} GLOB '[0-9]*' AND ${rest} NOT GLOB '*[^0-9]*' THEN -1 - CAST(${rest} AS INTEGER)
  END`;
}

/** The call a relay 0.1 delivery row belongs to: its call, or itself for an unreadable message's. */
const callOfV1 = (d: string) => `CASE WHEN ${d}.call_id = '' THEN ${d}.id ELSE ${d}.call_id END`;

/** A JSON array of the numbers of the names in JSON array `names`, in its order. */
const nameIds = (names: string) =>
  `(SELECT json_group_array(id) FROM (SELECT m.id FROM json_each(${names}) r JOIN ledger_names m ON m.name = r.value ORDER BY r.key))`;

const STATUS_SQL = `CASE d.status WHEN 'delivered' THEN 0 WHEN 'pending' THEN 2 WHEN 'held' THEN 3 WHEN 'retrying' THEN 4 ELSE 5 END`;

/**
 * From relay 0.1's ledger (version 1: calls, notifications, deliveries, attempts, sender_attempts and call_text,
 * keyed by their text ids) to this one, in SQL, in one transaction: every call, delivery, attempt and sender
 * attempt moves over; call texts stay in D1 (ledger_text_parts).
 */
const FROM_VERSION_1: readonly string[] = [
  `INSERT OR IGNORE INTO ledger_names (name)
    SELECT destination FROM deliveries UNION SELECT action FROM notifications
    UNION SELECT r.value FROM notifications, json_each(notifications.routes) r
    UNION SELECT r.value FROM notifications, json_each(notifications.destinations) r
    UNION SELECT r.value FROM deliveries, json_each(deliveries.routes) r`,
  // Each call takes the next free number of its millisecond, in the order of its Id.
  `INSERT INTO ledger_calls (seq, id, attempt, notifications, plan)
    SELECT (c.received_at - ${SEQ_EPOCH}) * 512 + ROW_NUMBER() OVER (PARTITION BY c.received_at ORDER BY c.id) - 1,
      c.id,
      COALESCE((SELECT s.attempt FROM sender_attempts s WHERE s.call_id = c.id AND s.outcome = 'accepted' ORDER BY s.at LIMIT 1), '1'),
      COALESCE((SELECT json_group_array(json(entry)) FROM (SELECT json_array(a.id, n.warehouse, n.key, json(${nameIds("n.routes")}),
          json(${nameIds("n.destinations")})) AS entry
        FROM notifications n JOIN ledger_names a ON a.name = n.action WHERE n.call_id = c.id ORDER BY n.idx)), '[]'),
      COALESCE((SELECT json_group_array(json(entry)) FROM (SELECT json_array(dn.id, ${partSql("d")}, json(${nameIds("d.routes")}),
          json(d.indices)) AS entry
        FROM deliveries d JOIN ledger_names dn ON dn.name = d.destination
        WHERE d.call_id = c.id AND ${partSql("d")} IS NOT NULL ORDER BY d.id)), '[]')
    FROM calls c`,
  // Deliveries whose call is no longer there (a dead letter that outlived it, an unreadable message's) get a call
  // row of their own, without a record of acceptance, from the last free numbers of their millisecond.
  `INSERT INTO ledger_calls (seq, id)
    SELECT (at - ${SEQ_EPOCH}) * 512 + 511 - (ROW_NUMBER() OVER (PARTITION BY at ORDER BY id) - 1), id FROM (
      SELECT ${callOfV1("d")} AS id, MIN(d.received_at) AS at FROM deliveries d
      WHERE ${callOfV1("d")} NOT IN (SELECT id FROM calls) GROUP BY 1)`,
  `INSERT OR IGNORE INTO ledger_sender_attempts (call, at, attempt, outcome)
    SELECT c.seq, s.at, s.attempt, s.outcome FROM sender_attempts s JOIN ledger_calls c ON c.id = s.call_id
    WHERE NOT (s.outcome = 'accepted' AND s.at = (SELECT MIN(x.at) FROM sender_attempts x
      WHERE x.call_id = s.call_id AND x.outcome = 'accepted'))`,
  `INSERT OR IGNORE INTO ledger_keys (key, call)
    SELECT n.key, c.seq FROM notifications n JOIN ledger_calls c ON c.id = n.call_id WHERE n.key IS NOT NULL`,
  `INSERT OR IGNORE INTO ledger_actions (action, call)
    SELECT a.id, c.seq FROM notifications n JOIN ledger_calls c ON c.id = n.call_id JOIN ledger_names a ON a.name = n.action`,
  `INSERT OR IGNORE INTO ledger_deliveries (call, destination, part, status, at, run, attempts, last_status, last_error,
      held_reason, dead_at, dead, stuck, payload, delivery_id)
    SELECT c.seq, dn.id, COALESCE(${partSql("d")}, 0), ${STATUS_SQL}, d.updated_at, d.run, d.attempts, d.last_status,
      d.last_error, CASE WHEN d.status = 'held' THEN d.held_reason END,
      CASE WHEN d.status = 'dead' THEN d.dead_at END,
      CASE WHEN d.status = 'dead' THEN json_object('reason', d.dead_reason, 'detail', d.dead_detail, 'source', d.dead_source) END,
      CASE WHEN d.status = 'dead' AND d.replayable = 0 THEN 1 END,
      d.payload, CASE WHEN ${partSql("d")} IS NULL THEN d.id END
    FROM deliveries d JOIN ledger_names dn ON dn.name = d.destination JOIN ledger_calls c ON c.id = ${callOfV1("d")}`,
  `INSERT OR IGNORE INTO ledger_attempts (call, destination, part, run, attempt, at, status, error, duration_ms, outcome)
    SELECT c.seq, dn.id, COALESCE(${partSql("d")}, 0), a.run, a.attempt, a.at, a.status, a.error, a.duration_ms,
      CASE a.outcome WHEN 'delivered' THEN 0 WHEN 'retry' THEN 4 ELSE 5 END
    FROM attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN ledger_names dn ON dn.name = d.destination
    JOIN ledger_calls c ON c.id = ${callOfV1("d")}`,
  `INSERT OR IGNORE INTO ledger_text_parts (call, part, parts, chunk)
    SELECT c.seq, t.part, t.parts, t.chunk FROM call_text t JOIN ledger_calls c ON c.id = t.call_id`,
  ...["calls", "notifications", "deliveries", "attempts", "sender_attempts", "call_text"].map(
    (table) => `DROP TABLE ${table}`,
  ),
];

/**
 * Shaping (docs/rules.md, "Shaping deliveries"): a delivery's `ref` names the delivery it waits for (held, reason
 * `ordered`) or the one that superseded it (status superseded); an attempt's `rules` is the hash of the rules whose
 * transform shaped its body.
 */
const SHAPING: readonly string[] = [
  "ALTER TABLE ledger_deliveries ADD COLUMN ref TEXT",
  "ALTER TABLE ledger_attempts ADD COLUMN rules TEXT",
];

/**
 * The upper bounds (ms) of the latency buckets of ledger_hourly (src/ledger/hourly.ts): columns l0 … l11, the last
 * for anything slower.
 */
export const LATENCY_BOUNDS = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000] as const;
const LATENCY_COLUMNS = [...LATENCY_BOUNDS, Number.POSITIVE_INFINITY].map((_, i) => `l${i}`);
/** Which bucket an attempt's duration falls in, in SQL over `d`; NULL (no bucket) when there was no answer. */
const bucketOf = (d: string) =>
  `CASE WHEN ${d} IS NULL THEN NULL ${LATENCY_BOUNDS.map((bound, i) => `WHEN ${d} <= ${bound} THEN ${i}`).join(" ")} ELSE ${LATENCY_BOUNDS.length} END`;

/**
 * Hourly figures per destination (docs/ledger.md, "Hourly figures"), for the console's pictures: each attempt adds
 * itself to its hour's row as it is inserted (a trigger, so that an attempt written twice, which INSERT OR IGNORE
 * skips, is counted once), its duration to a latency bucket. What the ledger already held is counted once, here.
 */
const HOURLY: readonly string[] = [
  // A failed attempt's answer, as JSON {headers, body} (src/delivery/senders.ts): what the console inspects.
  "ALTER TABLE ledger_attempts ADD COLUMN answer TEXT",
  // Every alert sent, or that a channel refused, for the console's Alerts page (src/ledger/alerts.ts).
  `CREATE TABLE IF NOT EXISTS ledger_alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    alert TEXT NOT NULL,
    type TEXT NOT NULL,
    destination TEXT,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    subject TEXT NOT NULL,
    text TEXT NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS ledger_alerts_by_destination ON ledger_alerts (destination, id)`,
  // Bulk actions on a filtered set of deliveries (src/ledger/jobs.ts): where each got to, for its progress page.
  `CREATE TABLE IF NOT EXISTS ledger_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    filter TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    cursor TEXT,
    state TEXT NOT NULL,
    error TEXT,
    actor TEXT NOT NULL,
    activity INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  )`,
  `CREATE TABLE IF NOT EXISTS ledger_hourly (
    hour INTEGER NOT NULL,
    destination INTEGER NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0,
    retried INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    ${LATENCY_COLUMNS.map((c) => `${c} INTEGER NOT NULL DEFAULT 0`).join(", ")},
    PRIMARY KEY (hour, destination)
  ) WITHOUT ROWID`,
  `INSERT INTO ledger_hourly (hour, destination, delivered, retried, dead, ${LATENCY_COLUMNS.join(", ")})
    SELECT at / 3600000, destination, SUM(outcome = 0), SUM(outcome = 4), SUM(outcome = 5),
      ${LATENCY_COLUMNS.map((_, i) => `SUM(${bucketOf("duration_ms")} IS ${i})`).join(", ")}
    FROM ledger_attempts GROUP BY at / 3600000, destination`,
  `CREATE TRIGGER IF NOT EXISTS ledger_hourly_count AFTER INSERT ON ledger_attempts BEGIN
    INSERT INTO ledger_hourly (hour, destination, delivered, retried, dead, ${LATENCY_COLUMNS.join(", ")})
    VALUES (NEW.at / 3600000, NEW.destination, NEW.outcome = 0, NEW.outcome = 4, NEW.outcome = 5,
      ${LATENCY_COLUMNS.map((_, i) => `(${bucketOf("NEW.duration_ms")}) IS ${i}`).join(", ")})
    ON CONFLICT (hour, destination) DO UPDATE SET delivered = delivered + excluded.delivered,
      retried = retried + excluded.retried, dead = dead + excluded.dead,
      ${LATENCY_COLUMNS.map((c) => `${c} = ${c} + excluded.${c}`).join(", ")};
  END`,
];

/** UPGRADES[k]: from version k + 1 to k + 2 (after SCHEMA's CREATE … IF NOT EXISTS made what is new). */
export const UPGRADES: readonly (readonly string[])[] = [FROM_VERSION_1, SHAPING, HOURLY];

export const LEDGER_VERSION = UPGRADES.length + 1;

/**
 * The version SCHEMA alone makes: a new ledger gets SCHEMA and then every upgrade after this version, so that
 * columns added later are added one way only (SQLite adds a column once; the deploy script runs SCHEMA again).
 */
export const SCHEMA_VERSION = 2;

/**
 * The whole schema as one SQL script (for `wrangler d1 execute --file`, which `npm run deploy` runs): SCHEMA's
 * tables, and its version only where none is recorded, so that the Worker adds what came after it (and upgrades a
 * ledger of an older version) on first use, and running the script again changes nothing.
 */
export function schemaScript(): string {
  const statements = [
    ...SCHEMA,
    `INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('schema', '${SCHEMA_VERSION}')`,
  ];
  return `${statements.map((sql) => `${sql.replace(/\n\s+/g, " ")};`).join("\n")}\n`;
}
