import { Hono } from "hono";
import type { DeadLetter } from "../dead-letters/record.ts";
import {
  decodeCursor,
  deleteDeadLetter,
  getDeadLetter,
  listDeadLetters,
  replayDeadLetters,
} from "../dead-letters/store.ts";
import { RelayError } from "../errors.ts";
import type { Env } from "../settings.ts";

/** The dead-letter half of the admin API (SPEC §5). */
export const deadLetters = new Hono<{ Bindings: Env }>();

const MAX_PAGE = 100;
/** Records replayed by one POST /admin/dead-letters/replay; call again while it answers `more: true`. */
const REPLAY_ALL_LIMIT = 500;

deadLetters.get("/", async (c) => {
  const destination = c.req.query("destination");
  const cursor = c.req.query("cursor");
  const limitParam = c.req.query("limit");
  const limit = limitParam === undefined ? 50 : Number(limitParam);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new RelayError(400, "invalid_query", `limit must be a whole number from 1 to ${MAX_PAGE}.`);
  }
  if (cursor !== undefined && decodeCursor(cursor) === undefined) {
    throw new RelayError(400, "invalid_query", "cursor is not one this API returned.");
  }
  return c.json(await listDeadLetters(c.env.STATE, { destination, cursor, limit }));
});

deadLetters.post("/replay", async (c) => {
  const destination = c.req.query("destination");
  const page = await listDeadLetters(c.env.STATE, { destination, limit: REPLAY_ALL_LIMIT });
  const read = await Promise.all(
    page.items.map(async ({ deliveryId }) => ({ deliveryId, stored: await getDeadLetter(c.env.STATE, deliveryId) })),
  );
  const records: DeadLetter[] = [];
  const unreadable: { deliveryId: string; reason: string }[] = [];
  for (const { deliveryId, stored } of read) {
    if (stored === null) continue; // replayed or deleted since the listing
    if ("record" in stored) records.push(stored.record);
    else unreadable.push({ deliveryId, reason: unreadableReason(stored.unreadable) });
  }
  const result = await replay(c.env, records);
  return c.json({ ...result, skipped: [...result.skipped, ...unreadable], more: page.cursor !== undefined }, 202);
});

deadLetters.get("/:id", async (c) => c.json(await found(c.env.STATE, c.req.param("id"))));

deadLetters.post("/:id/replay", async (c) => {
  const record = await found(c.env.STATE, c.req.param("id"));
  if (record.message === undefined) {
    throw new RelayError(
      409,
      "not_replayable",
      "This record holds no readable delivery message; inspect it and delete it.",
    );
  }
  return c.json(await replay(c.env, [record]), 202);
});

deadLetters.delete("/:id", async (c) => {
  const id = c.req.param("id");
  // An unreadable record can be deleted too: that is the way out of one.
  if ((await getDeadLetter(c.env.STATE, id)) === null) throw notFound(id);
  await deleteDeadLetter(c.env.STATE, id);
  return c.json({ deleted: id });
});

const notFound = (id: string) =>
  new RelayError(404, "dead_letter_not_found", `There is no dead letter with delivery id ${id}.`);
const unreadableReason = (problem: string) => `the stored record is not one this relay can read (${problem})`;

async function found(state: KVNamespace, id: string): Promise<DeadLetter> {
  const stored = await getDeadLetter(state, id);
  if (stored === null) throw notFound(id);
  if ("unreadable" in stored) {
    throw new RelayError(
      409,
      "dead_letter_unreadable",
      `The dead letter ${id} is stored, but ${unreadableReason(stored.unreadable)}; delete it with DELETE /admin/dead-letters/${id}.`,
    );
  }
  return stored.record;
}

async function replay(env: Env, records: DeadLetter[]) {
  try {
    return await replayDeadLetters(env, records);
  } catch {
    throw new RelayError(
      503,
      "queue_unavailable",
      "The deliveries could not be enqueued; the records are kept. Try again.",
    );
  }
}
