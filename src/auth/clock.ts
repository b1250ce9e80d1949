import type { Context } from "hono";
import type { AppEnv } from "../env.ts";

/**
 * The console's clock (sessions' lifetimes): the time, or, only with the var DEV_CLOCK=on and only for a
 * request to a loopback host (`wrangler dev` on 127.0.0.1), the milliseconds in its `X-Dev-Clock` header, so
 * that an end-to-end test can see a session go idle without waiting. A deployed relay is never reached on a
 * loopback host, and `npm run deploy` refuses to deploy with DEV_CLOCK set.
 */
export const DEV_CLOCK_HEADER = "X-Dev-Clock";

export function nowOf(c: Context<AppEnv>): number {
  if (c.var.settings.DEV_CLOCK !== true) return Date.now();
  const host = new URL(c.req.url).hostname;
  const given = c.req.header(DEV_CLOCK_HEADER);
  if (
    (host === "127.0.0.1" || host === "localhost" || host === "[::1]") &&
    given !== undefined &&
    /^\d{13}$/.test(given)
  ) {
    return Number(given);
  }
  return Date.now();
}
