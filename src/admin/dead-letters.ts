import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import type { DeadLetterPage } from "../ledger/views.ts";
import { deleteDeadLetter, foundDeadLetter, replayDeadLetter, replayDeadLetters } from "../ops/dead-letters.ts";
import { opContext } from "../ops/record.ts";
import { described, query } from "./openapi.ts";
import type { BulkReplayAnswer, ResendResult } from "./schemas.ts";

export type { BulkReplayAnswer } from "./schemas.ts";

/** The dead-letter half of the admin API (docs/admin-api.md): dead letters are deliveries with status dead. */
export const deadLetters = new Hono<AppEnv>()
  .get("/", described("GET /admin/dead-letters"), query("GET /admin/dead-letters"), async (c) => {
    const page = await c.var.ledger.listDeadLetters(c.req.valid("query"));
    return c.json(page satisfies DeadLetterPage);
  })
  .post("/replay", described("POST /admin/dead-letters/replay"), query("POST /admin/dead-letters/replay"), async (c) =>
    c.json((await replayDeadLetters(opContext(c), c.req.valid("query").destination)) satisfies BulkReplayAnswer, 202),
  )
  .get("/:id", described("GET /admin/dead-letters/:id"), async (c) =>
    c.json(await foundDeadLetter(c.env, c.req.param("id"))),
  )
  .post("/:id/replay", described("POST /admin/dead-letters/:id/replay"), async (c) =>
    c.json((await replayDeadLetter(opContext(c), c.req.param("id"))) satisfies ResendResult, 202),
  )
  .delete("/:id", described("DELETE /admin/dead-letters/:id"), async (c) => {
    const id = c.req.param("id");
    await deleteDeadLetter(opContext(c), id);
    return c.json({ deleted: id });
  });
