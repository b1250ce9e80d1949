import type { Delivery } from "../queues/delivery.ts";
import type { HeldReason } from "../queues/ledger.ts";

/**
 * The deliveries a destination's gate holds back (src/gate/gate.ts), in arrival order, in the gate's own SQLite
 * storage: each with its delivery's text as the consumer handed it over, the attempts made and why it waits.
 */

export interface HeldItem {
  deliveryId: string;
  run: number;
  attempts: number;
  /** The delivery as JSON text (src/queues/delivery.ts). */
  text: string;
}

export type HeldRow = {
  seq: number;
  text: string;
  at: number;
};

/** Held past this share of the cap, a destination's tech contact hears of it; under the lower share, again. */
export const NEAR_CAP = 0.8;
export const CLEAR_OF_CAP = 0.5;

/** Whether a count of held deliveries is near its cap now, given whether it was (so that one alert is one episode). */
export function nearCap(count: number, cap: number, was: boolean): boolean {
  return was ? count >= CLEAR_OF_CAP * cap : count >= NEAR_CAP * cap;
}

export class HeldRows {
  private readonly sql: SqlStorage;
  /** How many rows there are (kept in step with the table). */
  count: number;

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
    this.count = sql.exec<{ n: number }>("SELECT count(*) AS n FROM held").one().n;
  }

  /** Keeps `item` at the end of the line; false when the same attempt of it is held already (a redelivery). */
  hold(item: HeldItem, reason: HeldReason, at: number): boolean {
    const cursor = this.sql.exec(
      "INSERT OR IGNORE INTO held (delivery_id, run, attempts, text, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
      item.deliveryId,
      item.run,
      item.attempts,
      item.text,
      reason,
      at,
    );
    const added = cursor.rowsWritten > 0;
    if (added) this.count++;
    return added;
  }

  /** The oldest row not in `skip` (the rows being sent now). */
  next(skip: ReadonlySet<number>): HeldRow | undefined {
    const rows = this.sql.exec<HeldRow>("SELECT seq, text, at FROM held ORDER BY seq LIMIT ?", skip.size + 1).toArray();
    return rows.find((row) => !skip.has(row.seq));
  }

  /** Keeps a row in its place with its attempts counted and why it waits now. */
  rehold(seq: number, delivery: Delivery, attempts: number, reason: HeldReason): void {
    try {
      this.sql.exec(
        "UPDATE held SET text = ?, attempts = ?, reason = ? WHERE seq = ?",
        JSON.stringify({ ...delivery, attempts }),
        attempts,
        reason,
        seq,
      );
    } catch {
      // The same attempt is held twice (a redelivered message): keep the other copy.
      this.remove(seq);
    }
  }

  remove(seq: number): void {
    const cursor = this.sql.exec("DELETE FROM held WHERE seq = ?", seq);
    if (cursor.rowsWritten > 0) this.count--;
  }
}
