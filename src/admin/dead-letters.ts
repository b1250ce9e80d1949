import { type Context, Hono } from "hono";
import {
  type DeadLetterPage,
  decodeCursor,
  deleteDeadLetter,
  getDeadLetter,
  listDeadLetters,
  pickDeadLetters,
  REPLAY_BATCH,
  type ReplayResult,
  replayDeadLetters,
} from "../dead-letters/store.ts";
import type { AppEnv, Env } from "../env.ts";
import { RelayError } from "../errors.ts";
import type { DeadLetter } from "../queues.ts";

/** POST /admin/dead-letters/replay answers this; call again while `more` is true. */
export interface BulkReplayAnswer extends ReplayResult {
  more: boolean;
}

const MAX_PAGE = 100;

async function list(c: Context<AppEnv>): Promise<Response> {
  const destination = c.req.query("destination");
  const cursor = c.req.query("cursor");
  const limitParam = c.req.query("limit");
  const limit = limitParam === undefined ? 50 : Number(limitParam);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new RelayError("invalid_query", `limit must be a whole number from 1 to ${MAX_PAGE}.`);
  }
  if (cursor !== undefined && decodeCursor(cursor) === undefined) {
    throw new RelayError("invalid_query", "cursor is not one this API returned.");
  }
  return c.json((await listDeadLetters(c.env.STATE, { destination, cursor, limit })) satisfies DeadLetterPage);
}

/**
 * Replays up to REPLAY_BATCH dead letters (of one destination with ?destination=) per call, so that a call
 * stays within the Worker's subrequest limits whatever the backlog; `more: true` asks for another call.
 */
async function replayAll(c: Context<AppEnv>): Promise<Response> {
  const picked = await pickDeadLetters(c.env.STATE, c.req.query("destination"), REPLAY_BATCH);
  const read = await Promise.all(
    picked.ids.map(async (deliveryId) => ({ deliveryId, stored: await getDeadLetter(c.env.STATE, deliveryId) })),
  );
  const records: DeadLetter[] = [];
  const unreadable: ReplayResult["skipped"] = [];
  for (const { deliveryId, stored } of read) {
    if (stored === null) continue; // replayed or deleted since the listing
    if ("record" in stored) records.push(stored.record);
    else unreadable.push({ deliveryId, reason: unreadableReason(stored.unreadable) });
  }
  const result = await replay(c.env, records);
  const more = picked.more || result.skipped.some((s) => s.reason.startsWith("not enqueued"));
  return c.json({ ...result, skipped: [...result.skipped, ...unreadable], more } satisfies BulkReplayAnswer, 202);
}

async function show(c: Context<AppEnv>): Promise<Response> {
  return c.json(await found(c.env.STATE, c.req.param("id")!));
}

async function replayOne(c: Context<AppEnv>): Promise<Response> {
  const record = await found(c.env.STATE, c.req.param("id")!);
  if (record.message === undefined) {
    throw new RelayError("not_replayable", "This record holds no readable delivery message; inspect it and delete it.");
  }
  return c.json((await replay(c.env, [record])) satisfies ReplayResult, 202);
}

async function remove(c: Context<AppEnv>): Promise<Response> {
  const id = c.req.param("id")!;
  // An unreadable record can be deleted too: that is the way out of one.
  if ((await getDeadLetter(c.env.STATE, id)) === null) throw notFound(id);
  await deleteDeadLetter(c.env.STATE, id);
  return c.json({ deleted: id });
}

const notFound = (id: string) =>
  new RelayError("dead_letter_not_found", `There is no dead letter with delivery id ${id}.`);
const unreadableReason = (problem: string) => `the stored record is not one this relay can read (${problem})`;

async function found(state: KVNamespace, id: string): Promise<DeadLetter> {
  const stored = await getDeadLetter(state, id);
  if (stored === null) throw notFound(id);
  if ("unreadable" in stored) {
    throw new RelayError(
      "dead_letter_unreadable",
      `The dead letter ${id} is stored, but ${unreadableReason(stored.unreadable)}; delete it with DELETE /admin/dead-letters/${id}.`,
    );
  }
  return stored.record;
}

async function replay(env: Env, records: DeadLetter[]): Promise<ReplayResult> {
  try {
    return await replayDeadLetters(env, records);
  } catch {
    throw new RelayError("queue_unavailable", "The deliveries could not be enqueued; the records are kept. Try again.");
  }
}

/** The dead-letter half of the admin API (docs/admin-api.md). */
export const deadLetters = new Hono<AppEnv>()
  .get("/", list)
  .post("/replay", replayAll)
  .get("/:id", show)
  .post("/:id/replay", replayOne)
  .delete("/:id", remove);
