import type { Context } from "hono";
import type { Actor } from "../auth/actor.ts";
import type { AppEnv, Env } from "../env.ts";
import { describe, RelayError } from "../errors.ts";
import { type Action, type ActivityEntry, insertActivity } from "../ledger/activity.ts";
import { log } from "../log.ts";

/**
 * The operations layer's one rule (docs/console.md, "The activity log"): a change is written to the activity
 * log before it is made, and one whose row cannot be written is not made (503 `activity_unavailable`). The
 * admin API and the console both go through here.
 */

/** Who asks for a change, from where: what every operation is given. */
export interface OpContext {
  env: Env;
  actor: Actor;
  /** CF-Connecting-IP. */
  ip: string | undefined;
  now: number;
}

export function opContext(c: Context<AppEnv>): OpContext {
  return { env: c.env, actor: c.var.actor, ip: c.req.header("cf-connecting-ip"), now: Date.now() };
}

export interface Change {
  action: Action;
  target?: string | undefined;
  detail?: Record<string, unknown> | undefined;
}

const entry = (op: OpContext, change: Change, outcome: ActivityEntry["outcome"]): ActivityEntry => ({
  at: op.now,
  actor: op.actor.id,
  role: op.actor.role,
  via: op.actor.via,
  action: change.action,
  target: change.target,
  detail: change.detail,
  ip: op.ip,
  outcome,
});

/** Writes a row, or 503 `activity_unavailable` (so the caller makes no change). */
export async function writeRow(db: D1Database, row: ActivityEntry): Promise<number> {
  try {
    return await insertActivity(db, row);
  } catch (error) {
    log("error", "activity_unavailable", { action: row.action, actor: row.actor, error: describe(error) });
    throw new RelayError(
      "activity_unavailable",
      "The activity log could not be written, so nothing was changed (no record, no change). Try again.",
    );
  }
}

/**
 * Records `change`, then makes it (`make` gets the row's id). When making it fails after its row is written, a
 * second row with outcome `failed` names the first (`detail.row`) and the error, and the error goes on.
 */
export async function recorded<T>(op: OpContext, change: Change, make: (row: number) => Promise<T>): Promise<T> {
  const row = await writeRow(op.env.LEDGER, entry(op, change, "ok"));
  try {
    return await make(row);
  } catch (error) {
    const code = error instanceof RelayError ? error.code : "internal_error";
    try {
      await insertActivity(
        op.env.LEDGER,
        entry(op, { ...change, detail: { ...change.detail, row, error: code } }, "failed"),
      );
    } catch (second) {
      log("error", "activity_unavailable", { action: change.action, row, error: describe(second) });
    }
    throw error;
  }
}

/** An entry that is itself the event (a sign-in, a failed one, a sign-out): written, or 503. */
export async function recordEvent(op: OpContext, change: Change, outcome: ActivityEntry["outcome"]): Promise<number> {
  return writeRow(op.env.LEDGER, entry(op, change, outcome));
}

/** A viewer's refused change, on record (best effort: the refusal stands either way). */
export async function forbiddenRow(c: Context<AppEnv>, action: Action, target: string | undefined): Promise<void> {
  const op = opContext(c);
  try {
    await insertActivity(op.env.LEDGER, entry(op, { action, target }, "forbidden"));
  } catch (error) {
    log("error", "activity_unavailable", { action, actor: op.actor.id, error: describe(error) });
  }
}

/** A failed console sign-in on record, with no role (nobody is signed in); best effort, the answer stands either way. */
export async function recordFailedSignIn(op: OpContext, outcome: "wrong_token" | "limited"): Promise<void> {
  try {
    await insertActivity(op.env.LEDGER, {
      at: op.now,
      actor: "anonymous",
      role: "none",
      via: "console",
      action: "sign_in_failed",
      ip: op.ip,
      outcome,
    });
  } catch (error) {
    log("error", "activity_unavailable", { action: "sign_in_failed", error: describe(error) });
  }
  log("warn", "console_sign_in_failed", { client: op.ip, outcome });
}
