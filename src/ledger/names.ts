/**
 * Names the ledger's rows repeat (destinations, Actions, routes) are kept once, in ledger_names, and rows hold
 * their number. A name's number never changes, so each isolate keeps what it has seen.
 */

interface Known {
  byName: Map<string, number>;
  byId: Map<number, string>;
}

const known = new WeakMap<D1Database, Known>();

function knownOf(db: D1Database): Known {
  let k = known.get(db);
  if (k === undefined) known.set(db, (k = { byName: new Map(), byId: new Map() }));
  return k;
}

function learn(k: Known, rows: readonly { id: number; name: string }[]): void {
  for (const { id, name } of rows) {
    k.byName.set(name, id);
    k.byId.set(id, name);
  }
}

/** The number of each name, adding the names the ledger does not have yet. */
export async function numbersOf(db: D1Database, names: Iterable<string>): Promise<Map<string, number>> {
  const k = knownOf(db);
  const missing = [...new Set(names)].filter((name) => !k.byName.has(name));
  if (missing.length > 0) {
    const list = JSON.stringify(missing);
    const [, found] = await db.batch([
      db.prepare("INSERT OR IGNORE INTO ledger_names (name) SELECT value FROM json_each(?1)").bind(list),
      db.prepare("SELECT id, name FROM ledger_names WHERE name IN (SELECT value FROM json_each(?1))").bind(list),
    ]);
    learn(k, found!.results as { id: number; name: string }[]);
  }
  return k.byName;
}

/** The number of a name, or undefined when no row has ever used it (a filter by it then finds nothing). */
export async function numberOf(db: D1Database, name: string): Promise<number | undefined> {
  const k = knownOf(db);
  if (!k.byName.has(name)) {
    const row = await db.prepare("SELECT id, name FROM ledger_names WHERE name = ?1").bind(name).first<{
      id: number;
      name: string;
    }>();
    if (row !== null) learn(k, [row]);
  }
  return k.byName.get(name);
}

/** The name of each number (`?` for one the ledger does not have, which only an edited ledger could hold). */
export async function namesOf(db: D1Database, ids: Iterable<number>): Promise<(id: number) => string> {
  const k = knownOf(db);
  const missing = [...new Set(ids)].filter((id) => !k.byId.has(id));
  if (missing.length > 0) {
    const rows = (
      await db
        .prepare("SELECT id, name FROM ledger_names WHERE id IN (SELECT value FROM json_each(?1))")
        .bind(JSON.stringify(missing))
        .all<{ id: number; name: string }>()
    ).results;
    learn(k, rows);
  }
  return (id) => k.byId.get(id) ?? "?";
}

/** Forget what this isolate knows (between tests that empty the ledger's tables). */
export function forgetNames(db: D1Database): void {
  known.delete(db);
}
