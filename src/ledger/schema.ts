/**
 * The ledger's tables (D1, binding LEDGER; docs/ledger.md): every call the door answered 2xx, its
 * notifications, its deliveries (with the message, so any delivery can be sent again) and every attempt.
 * The Worker creates and upgrades them itself on first use: each migration is idempotent DDL, applied in one
 * transaction with the version it brings the ledger to.
 */

/** Each entry upgrades the ledger by one version; never edit one that has shipped, add another. */
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
    `CREATE INDEX IF NOT EXISTS calls_by_time ON calls (received_at DESC, id DESC)`,
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
    `CREATE INDEX IF NOT EXISTS notifications_by_key ON notifications (key, received_at DESC) WHERE key IS NOT NULL`,
    `CREATE INDEX IF NOT EXISTS notifications_by_action ON notifications (action, received_at DESC)`,
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
      replayable INTEGER NOT NULL DEFAULT 0
    )`,
    `CREATE INDEX IF NOT EXISTS deliveries_by_call ON deliveries (call_id)`,
    `CREATE INDEX IF NOT EXISTS deliveries_by_destination ON deliveries (destination, received_at DESC, id DESC)`,
    `CREATE INDEX IF NOT EXISTS deliveries_by_status ON deliveries (status, received_at DESC, id DESC)`,
    `CREATE INDEX IF NOT EXISTS deliveries_by_time ON deliveries (received_at DESC, id DESC)`,
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
    `CREATE INDEX IF NOT EXISTS attempts_by_destination ON attempts (destination, at DESC)`,
  ],
];

export const LEDGER_VERSION = MIGRATIONS.length;

/** The whole schema as one SQL script (for `wrangler d1 execute --file`, which `npm run deploy` runs). */
export function schemaScript(): string {
  return `${MIGRATIONS.flat()
    .map((sql) => `${sql.replace(/\n\s+/g, " ")};`)
    .join("\n")}\n`;
}

// One check per isolate and database; a failed one is forgotten so that the next use tries again.
const ready = new WeakMap<D1Database, Promise<void>>();

/** Creates or upgrades the ledger's tables when needed (once per isolate), then resolves. */
export function ensureLedger(db: D1Database): Promise<void> {
  let done = ready.get(db);
  if (done === undefined) {
    done = migrate(db).catch((error: unknown) => {
      ready.delete(db);
      throw error;
    });
    ready.set(db, done);
  }
  return done;
}

async function migrate(db: D1Database): Promise<void> {
  let version = 0;
  try {
    const row = await db.prepare("SELECT value FROM ledger_meta WHERE key = 'schema'").first<{ value: string }>();
    version = row === null ? 0 : Number(row.value);
  } catch (error) {
    if (!/no such table/i.test(String(error))) throw error;
  }
  if (version >= LEDGER_VERSION) return;
  const statements = MIGRATIONS.slice(version)
    .flat()
    .map((sql) => db.prepare(sql));
  statements.push(
    db
      .prepare(
        "INSERT INTO ledger_meta (key, value) VALUES ('schema', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      )
      .bind(String(LEDGER_VERSION)),
  );
  await db.batch(statements);
}

/** Forget that the ledger was checked (between tests that drop its tables). */
export function resetLedgerCheck(db: D1Database): void {
  ready.delete(db);
}
