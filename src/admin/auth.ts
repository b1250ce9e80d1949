import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import { secretValue } from "../secrets.ts";

const encoder = new TextEncoder();

/**
 * Bearer auth for /admin/*: 503 `admin_disabled` when ADMIN_TOKEN is unset, 401 when the token is missing or
 * wrong. Both sides are hashed first so the constant-time comparison sees equal lengths.
 */
export const adminAuth = createMiddleware<AppEnv>(async (c, next) => {
  const token = secretValue(c.env, "ADMIN_TOKEN");
  if (token === undefined) {
    throw new RelayError("admin_disabled", "The admin API is disabled: set the ADMIN_TOKEN secret to enable it.");
  }
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer +(\S+) *$/i.exec(header);
  if (match === null) {
    throw unauthorized(
      header === "" ? "The Authorization header is missing." : 'The Authorization header must be "Bearer <token>".',
    );
  }
  const [given, expected] = await Promise.all([digest(match[1]!), digest(token)]);
  if (!crypto.subtle.timingSafeEqual(given, expected)) throw unauthorized("The admin token is wrong.");
  await next();
});

function unauthorized(message: string): RelayError {
  return new RelayError("unauthorized", message, {}, { "WWW-Authenticate": 'Bearer realm="extend-relay admin"' });
}

function digest(value: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", encoder.encode(value));
}
