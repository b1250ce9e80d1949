import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { listDeadLetters } from "../ledger/dead-letters.ts";
import type { ResendResult } from "../ledger/resend.ts";
import type { DeadLetterPage } from "../ledger/views.ts";
import {
  type BulkReplayAnswer,
  deleteDeadLetter,
  foundDeadLetter,
  replayDeadLetter,
  replayDeadLetters,
} from "../ops/dead-letters.ts";
import { opContext } from "../ops/record.ts";
import { cursorParam, limitParam, textParam } from "./query.ts";

export type { BulkReplayAnswer } from "../ops/dead-letters.ts";

async function list(c: Context<AppEnv>): Promise<Response> {
  const page = await listDeadLetters(c.env.LEDGER, {
    destination: textParam(c, "destination"),
    cursor: cursorParam(c),
    limit: limitParam(c),
  });
  return c.json(page satisfies DeadLetterPage);
}

/** The dead-letter half of the admin API (docs/admin-api.md): dead letters are deliveries with status dead. */
export const deadLetters = new Hono<AppEnv>()
  .get("/", list)
  .post("/replay", async (c) =>
    c.json((await replayDeadLetters(opContext(c), textParam(c, "destination"))) satisfies BulkReplayAnswer, 202),
  )
  .get("/:id", async (c) => c.json(await foundDeadLetter(c.env, c.req.param("id"))))
  .post("/:id/replay", async (c) =>
    c.json((await replayDeadLetter(opContext(c), c.req.param("id"))) satisfies ResendResult, 202),
  )
  .delete("/:id", async (c) => {
    const id = c.req.param("id");
    await deleteDeadLetter(opContext(c), id);
    return c.json({ deleted: id });
  });
