import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { type Redriven, redrive } from "../ledger/waiting.ts";

/**
 * POST /admin/ledger/redrive (docs/admin-api.md): writes the ledger records waiting in R2 for D1, oldest first, one
 * bounded round; call again while `more`. The Cron Trigger does the same every ten minutes.
 */
async function redriveWaiting(c: Context<AppEnv>): Promise<Response> {
  return c.json((await redrive(c.env.LEDGER, c.env.PAYLOADS)) satisfies Redriven);
}

export const ledgerAdmin = new Hono<AppEnv>().post("/redrive", redriveWaiting);
