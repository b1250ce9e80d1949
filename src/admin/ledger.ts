import { Hono } from "hono";
import type * as z from "zod";
import type { AppEnv } from "../env.ts";
import type { Redriven } from "../ledger/waiting.ts";
import { redriveLedger } from "../ops/ledger.ts";
import { opContext } from "../ops/record.ts";
import { described } from "./openapi.ts";
import type { redrivenSchema } from "./schemas.ts";

/**
 * POST /admin/ledger/redrive (docs/admin-api.md): writes the ledger records waiting in R2 for D1, oldest first, one
 * bounded round; call again while `more`.
 */
export const ledgerAdmin = new Hono<AppEnv>().post("/redrive", described("POST /admin/ledger/redrive"), async (c) =>
  c.json((await redriveLedger(opContext(c))) satisfies Redriven satisfies z.infer<typeof redrivenSchema>),
);
