import { LEDGER_VERSION, SCHEMA, SCHEMA_VERSION, UPGRADES } from "./migrations.ts";

export { LEDGER_VERSION, SCHEMA, schemaScript, UPGRADES } from "./migrations.ts";

/**
 * The ledger's tables (D1, binding LEDGER; docs/ledger.md): every call the door answered 2xx with where its text
 * is (once, so that any of its deliveries can be sent again), its notifications, its deliveries and every attempt.
 * The Worker creates and upgrades them itself on first use, in one transaction with the version it brings the
 * ledger to (src/ledger/migrations.ts).
 */

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
  if (version === 0) {
    // Relay 0.1's deploy script made its tables without recording a version.
    const old = await db
      .prepare("SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = 'calls'")
      .first();
    if (old !== null) version = 1;
  }
  const upgrades = UPGRADES.slice((version === 0 ? SCHEMA_VERSION : version) - 1).flat();
  const statements = [...SCHEMA, ...upgrades].map((sql) => db.prepare(sql));
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
