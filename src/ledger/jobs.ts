import type { Cursor } from "./paging.ts";
import { ensureLedger } from "./schema.ts";
import type { DeliveryStatus } from "./views.ts";

/**
 * Bulk actions on a filtered set of deliveries (docs/console.md, "Bulk actions"): each is a job, one row in
 * ledger_jobs saying what it does, to what, how far it got and where to go on from. src/ops/jobs.ts runs them.
 */

export const JOB_KINDS = ["replay", "delete"] as const;
export type JobKind = (typeof JOB_KINDS)[number];
export type JobState = "running" | "done" | "failed";

export interface JobFilter {
  destination?: string;
  status?: DeliveryStatus;
  /** ms since 1970: calls accepted from then on, and before `until`. */
  since?: number;
  until?: number;
}

export interface Job {
  id: number;
  kind: JobKind;
  filter: JobFilter;
  /** The deliveries that matched when it was started (its preview). */
  total: number;
  /** Replayed or deleted so far, and passed over (not replayable, or gone meanwhile). */
  done: number;
  skipped: number;
  state: JobState;
  error?: string;
  actor: string;
  /** The activity log's row of it. */
  activity?: number;
  createdAt: string;
  updatedAt: string;
}

interface Row {
  id: number;
  kind: JobKind;
  filter: string;
  total: number;
  done: number;
  skipped: number;
  cursor: string | null;
  state: JobState;
  error: string | null;
  actor: string;
  activity: number | null;
  created_at: number;
  updated_at: number;
}

const fromRow = (row: Row): Job & { cursor: Cursor | undefined } => ({
  id: row.id,
  kind: row.kind,
  filter: JSON.parse(row.filter) as JobFilter,
  total: row.total,
  done: row.done,
  skipped: row.skipped,
  state: row.state,
  ...(row.error !== null && { error: row.error }),
  actor: row.actor,
  ...(row.activity !== null && { activity: row.activity }),
  createdAt: new Date(row.created_at).toISOString(),
  updatedAt: new Date(row.updated_at).toISOString(),
  cursor: row.cursor === null ? undefined : (JSON.parse(row.cursor) as Cursor),
});

/** Makes a job's row (its activity row written first, src/ops/record.ts); its id. */
export async function createJob(
  db: D1Database,
  job: { kind: JobKind; filter: JobFilter; total: number; actor: string; activity: number; at: number },
): Promise<number> {
  await ensureLedger(db);
  const row = await db
    .prepare(
      `INSERT INTO ledger_jobs (kind, filter, total, state, actor, activity, created_at, updated_at)
       VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?6, ?6) RETURNING id`,
    )
    .bind(job.kind, JSON.stringify(job.filter), job.total, job.actor, job.activity, job.at)
    .first<{ id: number }>();
  return row!.id;
}

export async function getJob(db: D1Database, id: number): Promise<(Job & { cursor: Cursor | undefined }) | null> {
  await ensureLedger(db);
  const row = await db.prepare("SELECT * FROM ledger_jobs WHERE id = ?1").bind(id).first<Row>();
  return row === null ? null : fromRow(row);
}

/** The latest jobs, newest first. */
export async function listJobs(db: D1Database, limit = 20): Promise<Job[]> {
  await ensureLedger(db);
  const rows = (await db.prepare("SELECT * FROM ledger_jobs ORDER BY id DESC LIMIT ?1").bind(limit).all<Row>()).results;
  return rows.map((row) => {
    const { cursor: _, ...job } = fromRow(row);
    return job;
  });
}

/** A chunk of a job went through: its counts, where the next starts (none: done), at `now`. */
export async function advanceJob(
  db: D1Database,
  id: number,
  step: { done: number; skipped: number; cursor: Cursor | undefined },
  now: number,
): Promise<void> {
  await db
    .prepare(
      `UPDATE ledger_jobs SET done = done + ?2, skipped = skipped + ?3, cursor = ?4,
         state = CASE WHEN ?4 IS NULL THEN 'done' ELSE 'running' END, updated_at = ?5 WHERE id = ?1`,
    )
    .bind(id, step.done, step.skipped, step.cursor === undefined ? null : JSON.stringify(step.cursor), now)
    .run();
}

/** A job that cannot go on: what went wrong, for its page. */
export async function failJob(db: D1Database, id: number, error: string, now: number): Promise<void> {
  await db
    .prepare("UPDATE ledger_jobs SET state = 'failed', error = ?2, updated_at = ?3 WHERE id = ?1")
    .bind(id, error, now)
    .run();
}
