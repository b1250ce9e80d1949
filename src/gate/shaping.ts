import { log } from "../log.ts";
import type { HeldItem, HeldRows } from "./held.ts";

/**
 * What a destination's gate decides for `order` and `coalesce` (docs/rules.md, "Shaping deliveries"), over its own
 * SQLite storage, with the time given: nothing of it lives only in memory, so a gate that restarts mid-window or
 * while a key is taken decides the same.
 *
 * - **Order.** A delivery with business keys goes only when no other delivery owns one of them. The one that goes
 *   owns its keys until it is delivered or becomes a dead letter (then the next in line for each key is woken);
 *   while it is retrying it keeps them until a while after its retry is due (ORDER_RETRY_MARGIN_MS), so that the
 *   keys of a delivery that never comes back are not held for ever. A newcomer waits behind the owner and behind
 *   every delivery already in line for its keys; the owner itself never waits for those behind it.
 * - **Coalescing.** The first notification about a thing (Action, business key, warehouse) opens a window and is
 *   held until it ends; a later one replaces it and goes when the window the first opened closes. What it replaced
 *   waits beside it and is superseded, naming the delivery that carried the newer state, once that one goes (so
 *   every superseded delivery names the one that was sent, not one that was replaced in turn). The latest accepted
 *   notification of each thing is remembered (COALESCE_MEMORY_MS), so that an older one arriving late, or a retry
 *   of an older state, is superseded rather than sent after a newer one.
 */

/** A retrying owner keeps its keys this long past its retry's due time, at least. */
export const ORDER_RETRY_MARGIN_MS = 15 * 60_000;
/** How long the latest notification of each coalesced thing is remembered. */
export const COALESCE_MEMORY_MS = 2 * 86_400_000;

/** The owner of a delivery's keys: its id and run. */
export const ownerOf = (item: { deliveryId: string; run: number }): string => `${item.deliveryId}:${item.run}`;
const idOfOwner = (owner: string): string => owner.slice(0, owner.lastIndexOf(":"));

/** What shaping says of a delivery that arrives at the gate. */
export type Arrival =
  /** A newer notification of the same thing is on its way or went: this one is not sent. */
  | { superseded: string }
  /** Held in its coalescing window (its row holds `due`), or replaced by a newer one held there. */
  | { held: "coalescing"; due: number }
  | { held: "ordered"; waitsFor: string }
  /** Nothing in its way: limits and the circuit decide. */
  | { free: true };

export class Shaper {
  private readonly sql: SqlStorage;
  private readonly held: HeldRows;

  constructor(sql: SqlStorage, held: HeldRows) {
    this.sql = sql;
    this.held = held;
    sql.exec(`CREATE TABLE IF NOT EXISTS order_keys (
      key TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID`);
    sql.exec("CREATE INDEX IF NOT EXISTS order_keys_by_owner ON order_keys (owner)");
    sql.exec(`CREATE TABLE IF NOT EXISTS coalesce_latest (
      ckey TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, received_at INTEGER NOT NULL, idx INTEGER NOT NULL,
      seen_at INTEGER NOT NULL) WITHOUT ROWID`);
    sql.exec("CREATE INDEX IF NOT EXISTS coalesce_latest_by_time ON coalesce_latest (seen_at)");
    // Deliveries a newer one replaced while its window is open: superseded by whichever goes when it closes.
    sql.exec(`CREATE TABLE IF NOT EXISTS coalesce_replaced (
      ckey TEXT NOT NULL, seq INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL)`);
    sql.exec("CREATE INDEX IF NOT EXISTS coalesce_replaced_by_ckey ON coalesce_replaced (ckey)");
  }

  /**
   * The coalescing and ordering verdict on `item` at `now`; a coalesced one is held here (the caller holds an
   * ordered one, with the reason). A replay (run > 0) is never coalesced: an operator asked for it.
   */
  arrive(item: HeldItem, now: number): Arrival {
    if (item.coalesce !== undefined && item.run === 0) {
      const ckey = item.coalesce.key;
      const latest = this.latestOf(ckey);
      if (latest !== undefined && latest.deliveryId !== item.deliveryId && newer(latest, item)) {
        // The newer state is still in its window: this one waits beside it, to name the one that goes.
        const open = this.held.pendingOf(ckey, now);
        if (open === undefined) return { superseded: latest.deliveryId };
        this.replaced(ckey, item.text);
        return { held: "coalescing", due: open.due };
      }
      this.sql.exec(
        `INSERT INTO coalesce_latest (ckey, delivery_id, received_at, idx, seen_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (ckey) DO UPDATE SET delivery_id = excluded.delivery_id, received_at = excluded.received_at,
           idx = excluded.idx, seen_at = excluded.seen_at`,
        item.coalesce.key,
        item.deliveryId,
        item.receivedAt,
        item.index,
        now,
      );
      // A first attempt opens a window, or joins the open one; a retry of the latest state just goes on.
      if (item.attempts === 0) {
        const open = this.held.pendingOf(ckey, now);
        const due = open?.due ?? now + item.coalesce.window * 1000;
        if (open !== undefined) {
          this.replaced(ckey, open.text);
          this.held.remove(open.seq);
        }
        this.held.hold(item, "coalescing", now, { due });
        return { held: "coalescing", due };
      }
    }
    const waitsFor = this.blocker(item, now);
    return waitsFor === undefined ? { free: true } : { held: "ordered", waitsFor };
  }

  /**
   * The latest state of `ckey` goes now (its window closed): the deliveries it replaced, as their texts, are
   * superseded by it. Returns them, forgotten here.
   */
  carried(ckey: string): string[] {
    return this.sql
      .exec<{ text: string }>("DELETE FROM coalesce_replaced WHERE ckey = ? RETURNING text", ckey)
      .toArray()
      .map((r) => r.text);
  }

  private replaced(ckey: string, text: string): void {
    this.sql.exec("INSERT INTO coalesce_replaced (ckey, text) VALUES (?, ?)", ckey, text);
  }

  /**
   * The delivery `item` must wait for, for one of its keys: the key's owner (not itself), else the first already
   * in line for it (`before`: only rows ahead of this one, for a row the pump takes); undefined when none.
   */
  blocker(
    item: { deliveryId: string; run: number; keys?: string[] },
    now: number,
    before?: number,
  ): string | undefined {
    if (item.keys === undefined || item.keys.length === 0) return undefined;
    const me = ownerOf(item);
    for (const key of item.keys) {
      const owner = this.ownerOf(key, now);
      if (owner === me) continue;
      if (owner !== undefined) return idOfOwner(owner);
      const first = this.held.firstWith(key, me);
      if (first !== undefined && (before === undefined || first.seq < before)) return idOfOwner(first.owner);
    }
    return undefined;
  }

  /** `item` goes now: it owns its keys until `until` (its lease), or until it is settled. */
  claim(item: { deliveryId: string; run: number; keys?: string[] }, until: number): void {
    for (const key of item.keys ?? []) {
      this.sql.exec(
        `INSERT INTO order_keys (key, owner, until) VALUES (?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, until = excluded.until`,
        key,
        ownerOf(item),
        until,
      );
    }
  }

  /**
   * How an owner's attempt ended: delivered or a dead letter (`final`) frees its keys and wakes the next in line
   * for each; a retry keeps them until ORDER_RETRY_MARGIN_MS after it is due. Returns the rows woken.
   */
  settled(owner: string, final: boolean, retryAt: number | undefined, now: number): number[] {
    if (!final) {
      const until = Math.max(retryAt ?? now, now) + ORDER_RETRY_MARGIN_MS;
      this.sql.exec("UPDATE order_keys SET until = ? WHERE owner = ?", until, owner);
      return [];
    }
    const keys = this.sql
      .exec<{ key: string }>("DELETE FROM order_keys WHERE owner = ? RETURNING key", owner)
      .toArray()
      .map((r) => r.key);
    return this.wake(keys, owner);
  }

  /** Wakes the first row in line for each of `keys` (other than `owner`'s own) that waits for its key. */
  private wake(keys: readonly string[], owner?: string): number[] {
    const woken: number[] = [];
    for (const key of keys) {
      const first = this.held.firstWith(key, owner);
      if (first !== undefined && first.reason === "ordered") {
        this.held.release(first.seq);
        woken.push(first.seq);
      }
    }
    return woken;
  }

  /**
   * Frees the keys of owners that never came back by their time (a lost message), waking who waits for them, and
   * forgets coalesced things not heard of for COALESCE_MEMORY_MS. Returns the rows woken.
   */
  expire(now: number): number[] {
    const lapsed = this.sql
      .exec<{ key: string; owner: string }>("DELETE FROM order_keys WHERE until <= ? RETURNING key, owner", now)
      .toArray();
    for (const { key, owner } of lapsed) log("warn", "order_key_expired", { key, owner: idOfOwner(owner) });
    this.sql.exec("DELETE FROM coalesce_latest WHERE seen_at < ?", now - COALESCE_MEMORY_MS);
    return this.wake(lapsed.map((l) => l.key));
  }

  /** When the next owner's keys lapse, if any (the gate's alarm is set for it while rows wait for keys). */
  nextExpiry(): number | undefined {
    const row = this.sql.exec<{ until: number | null }>("SELECT MIN(until) AS until FROM order_keys").one();
    return row.until ?? undefined;
  }

  private ownerOf(key: string, now: number): string | undefined {
    const row = this.sql
      .exec<{ owner: string; until: number }>("SELECT owner, until FROM order_keys WHERE key = ?", key)
      .toArray()[0];
    return row !== undefined && row.until > now ? row.owner : undefined;
  }

  private latestOf(ckey: string): { deliveryId: string; receivedAt: number; index: number } | undefined {
    const row = this.sql
      .exec<{ delivery_id: string; received_at: number; idx: number }>(
        "SELECT delivery_id, received_at, idx FROM coalesce_latest WHERE ckey = ?",
        ckey,
      )
      .toArray()[0];
    return row === undefined ? undefined : { deliveryId: row.delivery_id, receivedAt: row.received_at, index: row.idx };
  }
}

/** Whether `a` was accepted after `b` (by the call's acceptance, then its position in the call). */
function newer(a: { receivedAt: number; index: number }, b: { receivedAt: number; index: number }): boolean {
  return a.receivedAt > b.receivedAt || (a.receivedAt === b.receivedAt && a.index > b.index);
}

/** Deliveries in the order the relay accepted them (the gate decides them in this order). */
export function inAcceptedOrder<T extends { receivedAt: number; index: number }>(items: readonly T[]): number[] {
  return items
    .map((_, i) => i)
    .sort((i, j) => items[i]!.receivedAt - items[j]!.receivedAt || items[i]!.index - items[j]!.index);
}
