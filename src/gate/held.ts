import type { Delivery } from "../queues/delivery.ts";
import type { HeldReason } from "../queues/ledger.ts";

/**
 * The deliveries a destination's gate holds back (src/gate/gate.ts), in arrival order, in the gate's own SQLite
 * storage: each with its delivery's text as the consumer handed it over, the attempts made, why it waits, and
 * what shaping needs (docs/rules.md, "Shaping deliveries"): its business keys (`order`), its coalescing key and
 * the end of its window (`coalesce`), and the delivery it waits for.
 */

export interface HeldItem {
  deliveryId: string;
  run: number;
  attempts: number;
  /** The delivery as JSON text (src/queues/delivery.ts). */
  text: string;
  /** When the relay accepted its call, and its first notification's position: the order it was accepted in. */
  receivedAt: number;
  index: number;
  /** Its business keys, for a destination with `order: "key"`. */
  keys?: string[];
  /** Its coalescing key and window, for a coalesced notification. */
  coalesce?: { key: string; window: number };
}

export type HeldRow = {
  seq: number;
  text: string;
  at: number;
  delivery_id: string;
  run: number;
  reason: HeldReason;
  /** Not before (ms): the end of a coalescing window; 0 otherwise. */
  due: number;
  /** Its business keys as a JSON array, or null. */
  keys: string | null;
  ckey: string | null;
  received_at: number;
  idx: number;
};

/** Held past this share of the cap, a destination's tech contact hears of it; under the lower share, again. */
export const NEAR_CAP = 0.8;
export const CLEAR_OF_CAP = 0.5;

/** Whether a count of held deliveries is near its cap now, given whether it was (so that one alert is one episode). */
export function nearCap(count: number, cap: number, was: boolean): boolean {
  return was ? count >= CLEAR_OF_CAP * cap : count >= NEAR_CAP * cap;
}

const COLUMNS = "seq, text, at, delivery_id, run, reason, due, keys, ckey, received_at, idx";

/** Columns added after the first version of the table, for gates made before them. */
const ADDED: Record<string, string> = {
  due: "INTEGER NOT NULL DEFAULT 0",
  keys: "TEXT",
  ckey: "TEXT",
  received_at: "INTEGER NOT NULL DEFAULT 0",
  idx: "INTEGER NOT NULL DEFAULT 0",
  waits: "TEXT",
};

export class HeldRows {
  private readonly sql: SqlStorage;
  /** How many rows there are (kept in step with the table). */
  count: number;
  /** How many wait for something other than their turn: their key (`ordered`) or their window (`coalescing`). */
  private readonly waitingBy: { ordered: number; coalescing: number };

  constructor(sql: SqlStorage) {
    this.sql = sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS held (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      delivery_id TEXT NOT NULL,
      run INTEGER NOT NULL,
      attempts INTEGER NOT NULL,
      text TEXT NOT NULL,
      reason TEXT NOT NULL,
      at INTEGER NOT NULL,
      UNIQUE (delivery_id, run, attempts)
    )`);
    const have = new Set(
      sql
        .exec<{ name: string }>("PRAGMA table_info(held)")
        .toArray()
        .map((c) => c.name),
    );
    for (const [column, type] of Object.entries(ADDED)) {
      if (!have.has(column)) sql.exec(`ALTER TABLE held ADD COLUMN ${column} ${type}`);
    }
    // What the pump may send, in order: neither waiting for its key nor for its window (due is checked on the way).
    sql.exec("CREATE INDEX IF NOT EXISTS held_sendable ON held (seq) WHERE reason != 'ordered'");
    sql.exec("CREATE INDEX IF NOT EXISTS held_due ON held (due) WHERE due > 0");
    sql.exec("CREATE INDEX IF NOT EXISTS held_by_ckey ON held (ckey) WHERE ckey IS NOT NULL");
    // Each held row's business keys, to find the next in line for a key.
    sql.exec(`CREATE TABLE IF NOT EXISTS held_keys (
      key TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (key, seq)) WITHOUT ROWID`);
    this.count = sql.exec<{ n: number }>("SELECT count(*) AS n FROM held").one().n;
    const by = Object.fromEntries(
      sql
        .exec<{ reason: string; n: number }>(
          "SELECT reason, count(*) AS n FROM held WHERE reason IN ('ordered', 'coalescing') GROUP BY reason",
        )
        .toArray()
        .map((r) => [r.reason, r.n]),
    );
    this.waitingBy = { ordered: by.ordered ?? 0, coalescing: by.coalescing ?? 0 };
  }

  /** Rows that wait only for their turn: what a newcomer of the same destination lines up behind. */
  get inLine(): number {
    return this.count - this.waitingBy.ordered - this.waitingBy.coalescing;
  }

  private counted(reason: string, by: number): void {
    if (reason === "ordered" || reason === "coalescing") this.waitingBy[reason] += by;
  }

  /**
   * Keeps `item` at the end of the line; false when the same attempt of it is held already (a redelivery).
   * `due`: not before then (a coalescing window); `waits`: the delivery it waits for (`ordered`).
   */
  hold(item: HeldItem, reason: HeldReason, at: number, shaping: { due?: number; waits?: string } = {}): boolean {
    const keys = item.keys !== undefined && item.keys.length > 0 ? item.keys : undefined;
    const cursor = this.sql.exec(
      `INSERT OR IGNORE INTO held (delivery_id, run, attempts, text, reason, at, due, keys, ckey, received_at, idx, waits)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      item.deliveryId,
      item.run,
      item.attempts,
      item.text,
      reason,
      at,
      shaping.due ?? 0,
      keys === undefined ? null : JSON.stringify(keys),
      item.coalesce?.key ?? null,
      item.receivedAt,
      item.index,
      shaping.waits ?? null,
    );
    const added = cursor.rowsWritten > 0;
    if (added) {
      this.count++;
      this.counted(reason, 1);
      if (keys !== undefined) {
        const seq = this.sql.exec<{ seq: number }>("SELECT last_insert_rowid() AS seq").one().seq;
        for (const key of keys) this.sql.exec("INSERT OR IGNORE INTO held_keys (key, seq) VALUES (?, ?)", key, seq);
      }
    }
    return added;
  }

  /** The oldest row that may go at `now` (not waiting for its key, its window over) and not in `skip`. */
  next(skip: ReadonlySet<number>, now: number): HeldRow | undefined {
    const rows = this.sql
      .exec<HeldRow>(
        `SELECT ${COLUMNS} FROM held WHERE reason != 'ordered' AND due <= ? ORDER BY seq LIMIT ?`,
        now,
        skip.size + 1,
      )
      .toArray();
    return rows.find((row) => !skip.has(row.seq));
  }

  /** Whether any row may go at `now`. */
  anyReady(now: number): boolean {
    return this.sql.exec("SELECT 1 FROM held WHERE reason != 'ordered' AND due <= ? LIMIT 1", now).toArray().length > 0;
  }

  /** When the next coalescing window after `now` ends, if any. */
  nextDue(now: number): number | undefined {
    const row = this.sql.exec<{ due: number | null }>("SELECT MIN(due) AS due FROM held WHERE due > ?", now).one();
    return row.due ?? undefined;
  }

  /** The row holding the latest notification about `ckey` whose window is still open at `now`. */
  pendingOf(ckey: string, now: number): HeldRow | undefined {
    return this.sql
      .exec<HeldRow>(
        `SELECT ${COLUMNS} FROM held WHERE ckey = ? AND reason = 'coalescing' AND due > ? ORDER BY seq DESC LIMIT 1`,
        ckey,
        now,
      )
      .toArray()[0];
  }

  /** The first row in line for `key` other than the delivery `except` (its id and run). */
  firstWith(key: string, except?: string): { seq: number; owner: string; reason: string } | undefined {
    return this.sql
      .exec<{ seq: number; owner: string; reason: string }>(
        `SELECT h.seq, h.delivery_id || ':' || h.run AS owner, h.reason FROM held_keys k JOIN held h ON h.seq = k.seq
         WHERE k.key = ? AND (h.delivery_id || ':' || h.run) != ? ORDER BY k.seq LIMIT 1`,
        key,
        except ?? "",
      )
      .toArray()[0];
  }

  /** Keeps a row in its place with its attempts counted and why it waits now. */
  rehold(seq: number, delivery: Delivery, attempts: number, reason: HeldReason, waits?: string): void {
    try {
      const before = this.sql.exec<{ reason: string }>("SELECT reason FROM held WHERE seq = ?", seq).toArray()[0];
      this.sql.exec(
        "UPDATE held SET text = ?, attempts = ?, reason = ?, waits = ? WHERE seq = ?",
        JSON.stringify({ ...delivery, attempts }),
        attempts,
        reason,
        waits ?? null,
        seq,
      );
      if (before !== undefined) {
        this.counted(before.reason, -1);
        this.counted(reason, 1);
      }
    } catch {
      // The same attempt is held twice (a redelivered message): keep the other copy.
      this.remove(seq);
    }
  }

  /** A row whose key another delivery took meanwhile waits for that one (`ordered`). */
  wait(seq: number, waits: string): void {
    const before = this.sql.exec<{ reason: string }>("SELECT reason FROM held WHERE seq = ?", seq).toArray()[0];
    if (before === undefined) return;
    this.sql.exec("UPDATE held SET reason = 'ordered', waits = ? WHERE seq = ?", waits, seq);
    this.counted(before.reason, -1);
    this.counted("ordered", 1);
  }

  /** A row that waited for its key may go now (its turn, as every row's, is checked when the pump takes it). */
  release(seq: number): void {
    const cursor = this.sql.exec(
      "UPDATE held SET reason = 'in_line', waits = NULL WHERE seq = ? AND reason = 'ordered'",
      seq,
    );
    if (cursor.rowsWritten > 0) this.counted("ordered", -1);
  }

  remove(seq: number): void {
    const gone = this.sql.exec<{ reason: string }>("DELETE FROM held WHERE seq = ? RETURNING reason", seq).toArray();
    if (gone.length > 0) {
      this.count--;
      this.counted(gone[0]!.reason, -1);
      this.sql.exec("DELETE FROM held_keys WHERE seq = ?", seq);
    }
  }
}
