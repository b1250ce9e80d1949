import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import { deleteDeadLetter, getDeadLetter, listDeadLetters, nextDeadLetters } from "../ledger/dead-letters.ts";
import { type ResendResult, resend } from "../ledger/resend.ts";
import type { DeadLetterPage } from "../ledger/views.ts";
import type { DeadLetter } from "../queues/dead-letter.ts";
import type { Delivery } from "../queues/delivery.ts";
import { cursorParam, limitParam, textParam } from "./query.ts";

/** POST /admin/dead-letters/replay answers this; call again while `more` is true. */
export interface BulkReplayAnswer extends ResendResult {
  more: boolean;
}

/** Dead letters one bulk replay call takes on (one ledger read, sendBatch calls, one ledger write). */
export const REPLAY_BATCH = 100;

async function list(c: Context<AppEnv>): Promise<Response> {
  const page = await listDeadLetters(c.env.LEDGER, {
    destination: textParam(c, "destination"),
    cursor: cursorParam(c),
    limit: limitParam(c),
  });
  return c.json(page satisfies DeadLetterPage);
}

/**
 * Replays up to REPLAY_BATCH dead letters (oldest first; of one destination with ?destination=) per call, so
 * that a call stays within the Worker's limits whatever the backlog; `more: true` asks for another call.
 * Records that cannot be replayed are never picked, so calling again always makes progress.
 */
async function replayAll(c: Context<AppEnv>): Promise<Response> {
  return c.json(await replayDeadLetters(c.env, textParam(c, "destination")), 202);
}

/** One round of a bulk replay (POST /admin/dead-letters/replay, and the console's "Replay all"). */
export async function replayDeadLetters(
  env: AppEnv["Bindings"],
  destination: string | undefined,
): Promise<BulkReplayAnswer> {
  const next = await nextDeadLetters(env.LEDGER, env.PAYLOADS, destination, REPLAY_BATCH);
  const result = await replay(env, next.messages);
  const skipped = [
    ...result.skipped,
    ...next.unreadable.map((deliveryId) => ({
      deliveryId,
      reason: unreadableReason("its stored message is not one it can read"),
    })),
  ];
  const more = next.more || result.left > 0 || result.skipped.length > 0;
  return { replayed: result.replayed, skipped, more };
}

async function show(c: Context<AppEnv>): Promise<Response> {
  return c.json(await found(c.env, c.req.param("id")!));
}

async function replayOne(c: Context<AppEnv>): Promise<Response> {
  return c.json((await replayDeadLetter(c.env, c.req.param("id")!)) satisfies ResendResult, 202);
}

/** Replays one dead letter (POST /admin/dead-letters/:id/replay, and the console). */
export async function replayDeadLetter(env: AppEnv["Bindings"], id: string): Promise<ResendResult> {
  const record = await found(env, id);
  if (record.message === undefined) {
    throw new RelayError("not_replayable", "This record holds no readable delivery message; inspect it and delete it.");
  }
  const { left: _, ...result } = await replay(env, [record.message]);
  return result;
}

async function remove(c: Context<AppEnv>): Promise<Response> {
  const id = c.req.param("id")!;
  await removeDeadLetter(c.env.LEDGER, id);
  return c.json({ deleted: id });
}

/** Drops one dead letter, readable or not (DELETE /admin/dead-letters/:id, and the console). */
export async function removeDeadLetter(db: D1Database, id: string): Promise<void> {
  // An unreadable record can be deleted too: that is the way out of one.
  if (!(await deleteDeadLetter(db, id))) throw notFound(id);
}

const notFound = (id: string) =>
  new RelayError("dead_letter_not_found", `There is no dead letter with delivery id ${id}.`);
const unreadableReason = (problem: string) => `the stored record is not one this relay can read (${problem})`;

async function found(env: AppEnv["Bindings"], id: string): Promise<DeadLetter> {
  const stored = await getDeadLetter(env.LEDGER, env.PAYLOADS, id);
  if (stored === null) throw notFound(id);
  if ("unreadable" in stored) {
    throw new RelayError(
      "dead_letter_unreadable",
      `The dead letter ${id} is stored, but ${unreadableReason(stored.unreadable)}; delete it with DELETE /admin/dead-letters/${id}.`,
    );
  }
  return stored.record;
}

async function replay(env: AppEnv["Bindings"], messages: Delivery[]) {
  try {
    return await resend(env, messages);
  } catch {
    throw new RelayError("queue_unavailable", "The deliveries could not be enqueued; the records are kept. Try again.");
  }
}

/** The dead-letter half of the admin API (docs/admin-api.md): dead letters are deliveries with status dead. */
export const deadLetters = new Hono<AppEnv>()
  .get("/", list)
  .post("/replay", replayAll)
  .get("/:id", show)
  .post("/:id/replay", replayOne)
  .delete("/:id", remove);
