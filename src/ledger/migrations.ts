/**
 * The ledger's DDL, version by version (src/ledger/schema.ts applies it), free of Workers types so that
 * `npm run deploy` can apply the same script.
 */

/**
 * Each entry upgrades the ledger by one version; never edit one that has shipped, add another. Small rows live
 * in WITHOUT ROWID tables (stored once, in their primary key); tables with large rows (a call's text) keep a
 * rowid, since SQLite moves large rows of WITHOUT ROWID tables to overflow pages of their own.
 * Indexes on time run oldest first even where the lists read newest first (SQLite reads them backwards):
 * new rows then land at the end of each index, whose pages fill up, where newest-first indexes split
 * pages in half (measured with SQLite's dbstat: 4.8 → 4.0 KB per standard bench call).
 */
export const MIGRATIONS: readonly string[][] = [
  [
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
  ],
];

export const LEDGER_VERSION = MIGRATIONS.length;

/** The whole schema as one SQL script (for `wrangler d1 execute --file`, which `npm run deploy` runs). */
export function schemaScript(): string {
  return `${MIGRATIONS.flat()
    .map((sql) => `${sql.replace(/\n\s+/g, " ")};`)
    .join("\n")}\n`;
}
