import type { Role } from "../auth/actor.ts";
import type { Action, Outcome } from "./activity-names.ts";
import { ensureLedger } from "./schema.ts";

/**
 * The activity log (docs/console.md, "The activity log"): one row per change, written before the change is
 * answered, and per sign-in, failed sign-in and sign-out. Rows are only ever inserted, and deleted past
 * ACTIVITY_RETENTION_DAYS by the Cron Trigger; nothing updates one.
 */

export { ACTIONS, type Action, OUTCOMES, type Outcome } from "./activity-names.ts";

export interface ActivityEntry {
  at: number;
  actor: string;
  /** `none` for a failed sign-in: nobody was signed in. */
  role: Role | "none";
  via: "console" | "api";
  action: Action;
  target?: string | undefined;
  detail?: Record<string, unknown> | undefined;
  ip?: string | undefined;
  outcome: Outcome;
}

/** A row as GET /admin/activity shows it. */
export interface ActivityRow extends Omit<ActivityEntry, "at"> {
  id: number;
  at: string;
}

interface Row {
  id: number;
  at: number;
  actor: string;
  role: ActivityEntry["role"];
  via: ActivityEntry["via"];
  action: Action;
  target: string | null;
  detail: string | null;
  ip: string | null;
  outcome: Outcome;
}

const fromRow = (row: Row): ActivityRow => ({
  id: row.id,
  at: new Date(row.at).toISOString(),
  actor: row.actor,
  role: row.role,
  via: row.via,
  action: row.action,
  ...(row.target !== null && { target: row.target }),
  ...(row.detail !== null && { detail: JSON.parse(row.detail) as Record<string, unknown> }),
  ...(row.ip !== null && { ip: row.ip }),
  outcome: row.outcome,
});

const INSERT = `INSERT INTO activity (at, actor, role, via, action, target, detail, ip, outcome)
  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id`;

/**
 * The statement that writes `entry` (to batch with a change that lives in the ledger too). With `targetSql`,
 * the target is that SQL expression's value, also kept in the detail as `after` (a rules version that the same
 * transaction numbers).
 */
export function activityStatement(db: D1Database, entry: ActivityEntry, targetSql?: string): D1PreparedStatement {
  const sql =
    targetSql === undefined
      ? INSERT
      : INSERT.replace("?6", `CAST(${targetSql} AS TEXT)`).replace(
          "?7",
          `json_set(coalesce(?7, '{}'), '$.after', ${targetSql})`,
        );
  return db
    .prepare(sql)
    .bind(
      entry.at,
      entry.actor.slice(0, 320),
      entry.role,
      entry.via,
      entry.action,
      entry.target?.slice(0, 300) ?? null,
      entry.detail === undefined ? null : JSON.stringify(entry.detail),
      entry.ip?.slice(0, 64) ?? null,
      entry.outcome,
    );
}

/** Writes one row; its id. */
export async function insertActivity(db: D1Database, entry: ActivityEntry): Promise<number> {
  await ensureLedger(db);
  const row = await activityStatement(db, entry).first<{ id: number }>();
  return row!.id;
}

export interface ActivityFilter {
  actor?: string | undefined;
  action?: Action | undefined;
  target?: string | undefined;
  since?: number | undefined;
  until?: number | undefined;
  limit: number;
  /** The id of the last row of the previous page. */
  before?: number | undefined;
}

/** Rows newest first, filtered; `next` is the id to continue before when there are more. */
export async function listActivity(
  db: D1Database,
  filter: ActivityFilter,
): Promise<{ items: ActivityRow[]; next?: number }> {
  await ensureLedger(db);
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace("?", `?${params.length}`));
  };
  if (filter.actor !== undefined) add("actor = ?", filter.actor);
  if (filter.action !== undefined) add("action = ?", filter.action);
  if (filter.target !== undefined) add("target = ?", filter.target);
  if (filter.since !== undefined) add("at >= ?", filter.since);
  if (filter.until !== undefined) add("at < ?", filter.until);
  if (filter.before !== undefined) add("id < ?", filter.before);
  params.push(filter.limit + 1);
  const sql = `SELECT * FROM activity ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?${params.length}`;
  const { results } = await db
    .prepare(sql)
    .bind(...params)
    .all<Row>();
  const items = results.slice(0, filter.limit).map(fromRow);
  return results.length > filter.limit ? { items, next: items[items.length - 1]!.id } : { items };
}

export async function getActivity(db: D1Database, id: number): Promise<ActivityRow | null> {
  await ensureLedger(db);
  const row = await db.prepare("SELECT * FROM activity WHERE id = ?1").bind(id).first<Row>();
  return row === null ? null : fromRow(row);
}

/**
 * The row that paused `destination` by hand at `pausedAt`: the last `destination.pause` made before the gate
 * paused (each is written before it is made).
 */
export async function pausingRow(db: D1Database, destination: string, pausedAt: number): Promise<ActivityRow | null> {
  await ensureLedger(db);
  const row = await db
    .prepare(
      "SELECT * FROM activity WHERE target = ?1 AND action = 'destination.pause' AND outcome = 'ok' AND at <= ?2 ORDER BY id DESC LIMIT 1",
    )
    .bind(destination, pausedAt)
    .first<Row>();
  return row === null ? null : fromRow(row);
}

/** Deletes rows older than `cutoff`, at most `limit` of them; how many. */
export async function pruneActivity(db: D1Database, cutoff: number, limit = 5000): Promise<number> {
  await ensureLedger(db);
  return (
    await db
      .prepare("DELETE FROM activity WHERE id IN (SELECT id FROM activity WHERE at < ?1 ORDER BY id LIMIT ?2)")
      .bind(cutoff, limit)
      .run()
  ).meta.changes;
}
