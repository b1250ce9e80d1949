import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import { log } from "../log.ts";
import { forbiddenRow } from "../ops/record.ts";
import { accessOf } from "../settings.ts";
import { ASSERTION_HEADER, verifyAssertion } from "./access.ts";
import { type Actor, allows, isOperator, type Via } from "./actor.ts";
import { nowOf } from "./clock.ts";
import { clientKey, limiterOf } from "./limiter.ts";
import { needOf } from "./routes.ts";
import { csrfTokenOf, currentSession } from "./sessions.ts";
import { matchToken, tokensOf, weakTokens } from "./tokens.ts";

/**
 * The one middleware that says who is asking, for /admin and /console (docs/console.md, "Who may do what"):
 * it sets `c.var.actor` = `{ id, role, via }` and refuses what the route (src/auth/routes.ts) does not allow.
 *
 * 1. A Cloudflare Access assertion, when Access is configured: verified, or 401 `access_denied`; an invalid one
 *    never falls back to a bearer or a cookie.
 * 2. The admin API: `Authorization: Bearer` with ADMIN_TOKEN or VIEWER_TOKEN, counted per client by the
 *    limiter (429 after 10 failures in 10 minutes). It never reads the console's cookie.
 * 3. The console: its session cookie (src/auth/sessions.ts). It never reads a bearer.
 * A viewer asking for a change gets 403 `forbidden`, recorded in the activity log.
 */
export const identify = createMiddleware<AppEnv & { Variables: { csrf?: string } }>(async (c, next) => {
  const need = needOf(c);
  if (need.role === "public") return next();
  const via: Via = new URL(c.req.url).pathname.startsWith("/console") ? "console" : "api";
  const actor = await actorOf(c, via);
  c.set("actor", actor);
  if (need.role !== "viewer" && !allows(actor, need.role)) {
    if (need.action !== undefined) await forbiddenRow(c, need.action, need.target);
    throw new RelayError(
      "forbidden",
      `${actor.id} is a ${actor.role} and may look, not change: this needs an operator.`,
    );
  }
  await next();
});

async function actorOf(c: Context<AppEnv & { Variables: { csrf?: string } }>, via: Via): Promise<Actor> {
  const weak = weakTokens(c.env);
  if (weak.length > 0) {
    log("error", "token_too_short", { problems: weak });
    throw new RelayError(
      "misconfigured",
      `The relay refuses to run its ${via === "api" ? "admin API" : "console"}: ${weak.join("; ")}.`,
    );
  }
  const access = accessOf(c.var.settings);
  const assertion = c.req.header(ASSERTION_HEADER);
  if (access !== undefined && assertion !== undefined) {
    const identity = await verifyAssertion(assertion, access, { now: nowOf(c) });
    const role = isOperator(identity.id, c.var.settings.OPERATORS) ? "operator" : "viewer";
    c.set("csrf", await csrfTokenOf(c.env.LEDGER, `access:${identity.id}:${identity.issuedAt}`));
    return { id: identity.id, role, via };
  }
  if (access === undefined && tokensOf(c.env).length === 0) {
    throw new RelayError(
      "admin_disabled",
      "No way in is configured: set ADMIN_TOKEN (and optionally VIEWER_TOKEN), or Cloudflare Access (ACCESS_TEAM_DOMAIN and ACCESS_AUD).",
    );
  }
  if (via === "console") {
    const session = await currentSession(c);
    if (session === undefined) {
      throw new RelayError("session_ended", "There is no console session, or it has ended; sign in again.");
    }
    c.set("csrf", await csrfTokenOf(c.env.LEDGER, `session:${session.idHash}`));
    return { id: session.actor, role: session.role, via };
  }
  return bearerActor(c);
}

/** The admin API's bearer: ADMIN_TOKEN or VIEWER_TOKEN, each failure counted for the client. */
async function bearerActor(c: Context<AppEnv>): Promise<Actor> {
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (match === null) {
    throw unauthorized(
      header === "" ? "The Authorization header is missing." : 'The Authorization header must be "Bearer <token>".',
    );
  }
  const checked = await checkedToken(c, match[1]!);
  if ("limited" in checked) throw tooMany(checked.limited);
  if ("wrong" in checked) throw unauthorized("The token is wrong.");
  return { id: checked.token.actor, role: checked.token.role, via: "api" };
}

export type CheckedToken =
  | { token: NonNullable<Awaited<ReturnType<typeof matchToken>>> }
  | { wrong: true; failures: number }
  | { limited: number; firstRefusal: boolean };

/**
 * The token `given` is, checked under the client's limit (src/auth/limiter.ts): `limited` (seconds to wait)
 * while the client is limited, the right token included; a wrong one counts. 400 `client_unknown` without a
 * client address: no shared bucket, and no unlimited guessing either.
 */
export async function checkedToken(c: Context<AppEnv>, given: string): Promise<CheckedToken> {
  const key = clientKey(c.req.header("cf-connecting-ip"));
  if (key === undefined) {
    throw new RelayError(
      "client_unknown",
      "The request has no client address (CF-Connecting-IP), so the relay checks no credential for it.",
    );
  }
  const limiter = limiterOf(c.env, key);
  const now = Date.now();
  if ((await limiter.check(now)).retryAfter > 0) {
    const refused = await limiter.refuse(now);
    log("warn", "credential_limited", { client: key, failures: refused.failures });
    return { limited: refused.retryAfter, firstRefusal: refused.firstRefusal === true };
  }
  const token = await matchToken(c.env, given);
  if (token !== undefined) return { token };
  const counted = await limiter.fail(now);
  log("warn", "credential_refused", { client: key, failures: counted.failures });
  return { wrong: true, failures: counted.failures };
}

/** 429 `too_many_attempts` with Retry-After. */
export function tooMany(retryAfter: number): RelayError {
  const minutes = Math.ceil(retryAfter / 60);
  return new RelayError(
    "too_many_attempts",
    `Too many failed attempts from this client: try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`,
    { retryAfter },
    { "Retry-After": String(retryAfter) },
  );
}

function unauthorized(message: string): RelayError {
  return new RelayError("unauthorized", message, {}, { "WWW-Authenticate": 'Bearer realm="extend-relay admin"' });
}
