import { Hono } from "hono";
import { RelayError } from "../errors.ts";
import type { DeadLetter } from "../dead-letters/record.ts";
import {
  decodeCursor,
  deleteDeadLetter,
  getDeadLetter,
  listDeadLetters,
  replayDeadLetters,
} from "../dead-letters/store.ts";
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
  const records = (await Promise.all(page.items.map((item) => getDeadLetter(c.env.STATE, item.deliveryId)))).filter(
    (r): r is DeadLetter => r !== null,
  );
  const result = await replay(c.env, records);
  return c.json({ ...result, more: page.cursor !== undefined }, 202);
});

deadLetters.get("/:id", async (c) => c.json(await found(c.env.STATE, c.req.param("id"))));

deadLetters.post("/:id/replay", async (c) => {
  const record = await found(c.env.STATE, c.req.param("id"));
  if (record.message === undefined) {
    throw new RelayError(409, "not_replayable", "This record holds no readable delivery message; inspect it and delete it.");
  }
  return c.json(await replay(c.env, [record]), 202);
});

deadLetters.delete("/:id", async (c) => {
  const id = c.req.param("id");
  await found(c.env.STATE, id);
  await deleteDeadLetter(c.env.STATE, id);
  return c.json({ deleted: id });
});

async function found(state: KVNamespace, id: string): Promise<DeadLetter> {
  const record = await getDeadLetter(state, id);
  if (record === null) throw new RelayError(404, "dead_letter_not_found", `There is no dead letter with delivery id ${id}.`);
  return record;
}

async function replay(env: Env, records: DeadLetter[]) {
  try {
    return await replayDeadLetters(env, records);
  } catch {
    throw new RelayError(503, "queue_unavailable", "The deliveries could not be enqueued; the records are kept. Try again.");
  }
}
