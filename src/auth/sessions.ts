import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { AppEnv } from "../env.ts";
import { hmacKey } from "../hmac.ts";
import { consoleKey, type SessionRow } from "../ledger/sessions.ts";
import type { Actor } from "./actor.ts";
import { nowOf } from "./clock.ts";
import { tokenFingerprint, tokensOf } from "./tokens.ts";

/**
 * Console sessions for the token sign-in (docs/console.md, "Sessions"); under Access the assertion is the
 * session. The cookie holds a random id of 256 bits; the ledger keeps only its SHA-256, with the actor, the
 * role, a fingerprint of the token used, and when it was made, last used and ends. A session ends at its
 * absolute lifetime (CONSOLE_SESSION_HOURS), after CONSOLE_IDLE_MINUTES without a request, at sign-out, at
 * "sign out everywhere", and when the token it was made with changes: each of these is checked on every
 * request, so an ended session's cookie is refused at once.
 */

/** Over https the cookie is `__Host-`: only this host can set it, on Path=/, Secure (sibling Workers cannot). */
export const SECURE_COOKIE = "__Host-console_session";
/** Over http (wrangler dev on loopback, which browsers treat as secure) the prefix cannot be used. */
export const LOCAL_COOKIE = "console_session";
/** A session's last use is written at most this often: the idle timeout is counted to within a minute. */
export const TOUCH_MS = 60_000;

const encoder = new TextEncoder();
const hex = (bytes: ArrayBuffer | Uint8Array) =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replaceAll("=", "");

export const cookieName = (c: Context) => (new URL(c.req.url).protocol === "https:" ? SECURE_COOKIE : LOCAL_COOKIE);

async function idHash(id: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(id)));
}

/** The cookie's value, when it has the shape of one. */
function cookieValue(c: Context): string | undefined {
  const value = getCookie(c, cookieName(c));
  return value !== undefined && /^[A-Za-z0-9_-]{43}$/.test(value) ? value : undefined;
}

/** A new session for a token sign-in: its row in the ledger and its cookie (a new id each time). */
export async function startSession(
  c: Context<AppEnv>,
  token: { actor: string; role: Actor["role"]; value: string },
): Promise<SessionRow> {
  const now = nowOf(c);
  const id = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const hours = c.var.settings.CONSOLE_SESSION_HOURS;
  const row: SessionRow = {
    idHash: await idHash(id),
    actor: token.actor,
    role: token.role,
    tokenHash: await tokenFingerprint(token.value),
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + hours * 3_600_000,
  };
  await c.var.ledger.insertSession(row);
  setCookie(c, cookieName(c), id, {
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    path: "/",
    maxAge: hours * 3600,
  });
  return row;
}

/** The live session the request's cookie names, or undefined (an ended one's row is removed on the way). */
export async function currentSession(c: Context<AppEnv>): Promise<SessionRow | undefined> {
  const id = cookieValue(c);
  if (id === undefined) return undefined;
  const hash = await idHash(id);
  const row = await c.var.ledger.findSession(hash);
  if (row === null) return undefined;
  const now = nowOf(c);
  const token = tokensOf(c.env).find((t) => t.actor === row.actor);
  const live =
    now < row.expiresAt &&
    now - row.lastSeenAt < c.var.settings.CONSOLE_IDLE_MINUTES * 60_000 &&
    token !== undefined &&
    (await tokenFingerprint(token.value)) === row.tokenHash;
  if (!live) {
    await c.var.ledger.deleteSession(hash);
    return undefined;
  }
  if (now - row.lastSeenAt >= TOUCH_MS) await c.var.ledger.touchSession(hash, now);
  return row;
}

/** Ends the request's session on the server and clears its cookie. */
export async function endSession(c: Context<AppEnv>): Promise<void> {
  const id = cookieValue(c);
  if (id !== undefined) await c.var.ledger.deleteSession(await idHash(id));
  deleteCookie(c, cookieName(c), { path: "/", secure: true, httpOnly: true, sameSite: "Strict" });
}

const keys = new WeakMap<D1Database, Promise<CryptoKey>>();

/**
 * The CSRF token of the forms of a session (by its id's hash) or of an Access session (by who and when Access
 * signed them in): an HMAC under a key of the relay's own, kept in the ledger.
 */
export async function csrfTokenOf(db: D1Database, subject: string): Promise<string> {
  let key = keys.get(db);
  if (key === undefined) {
    key = consoleKey(db).then((secret) => hmacKey(secret, "utf8"));
    key.catch(() => keys.delete(db));
    keys.set(db, key);
  }
  const mac = await crypto.subtle.sign("HMAC", await key, encoder.encode(`csrf:${subject}`));
  return base64url(new Uint8Array(mac));
}
