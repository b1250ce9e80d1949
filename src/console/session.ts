import { hmacKey } from "../hmac.ts";

/**
 * Console sessions: a cookie the Worker signs itself, holding its expiry and a random id. The signing key is
 * derived from ADMIN_TOKEN, so changing the token ends every session; nothing is stored server-side. The
 * CSRF token of a session's forms is derived from the session the same way.
 */

export const SESSION_COOKIE = "console_session";
export const SESSION_SECONDS = 8 * 60 * 60;

export interface Session {
  id: string;
  expiresAt: number;
}

const encoder = new TextEncoder();

/** The session key: HMAC-SHA256 keyed with SHA-256("extend-relay console session" + ADMIN_TOKEN), as hex. */
async function sessionKey(token: string): Promise<CryptoKey> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(`extend-relay console session${token}`));
  return hmacKey(hex(new Uint8Array(digest)), "utf8");
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replaceAll("=", "");
}

function fromBase64url(text: string): Uint8Array | undefined {
  try {
    return Uint8Array.from(atob(text.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

async function sign(token: string, text: string): Promise<string> {
  const signature = await crypto.subtle.sign("HMAC", await sessionKey(token), encoder.encode(text));
  return base64url(new Uint8Array(signature));
}

/** A new session's cookie value, `<expiry ms>.<id>.<signature>`, valid for SESSION_SECONDS from `now`. */
export async function newSessionValue(token: string, now = Date.now()): Promise<string> {
  const id = base64url(crypto.getRandomValues(new Uint8Array(16)));
  return sessionValue(token, { id, expiresAt: now + SESSION_SECONDS * 1000 });
}

/** The cookie value of `session`, signed with `token`'s key. */
export async function sessionValue(token: string, session: Session): Promise<string> {
  const text = `${session.expiresAt}.${session.id}`;
  return `${text}.${await sign(token, text)}`;
}

/** The session a cookie value holds, or undefined when it is malformed, tampered with, or expired. */
export async function readSession(token: string, value: string | undefined, now = Date.now()) {
  const match = /^(\d{1,16})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(value ?? "");
  if (match === null) return undefined;
  const [, expiry, id, signature] = match;
  const bytes = fromBase64url(signature!);
  if (bytes === undefined) return undefined;
  const valid = await crypto.subtle.verify("HMAC", await sessionKey(token), bytes, encoder.encode(`${expiry}.${id}`));
  const expiresAt = Number(expiry);
  // Also refuse an expiry further away than a session lasts: no signed value may outlive its 8 hours.
  if (!valid || expiresAt <= now || expiresAt > now + SESSION_SECONDS * 1000) return undefined;
  return { id: id!, expiresAt } satisfies Session;
}

/** The CSRF token of a session's forms: HMAC of its id with the session key. */
export function csrfToken(token: string, session: Session): Promise<string> {
  return sign(token, `csrf:${session.id}`);
}

/** Constant-time equality of two secrets of any length: both are hashed first. */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * Where to go after signing in: `next` when it is a console path on this origin, else the overview. Refuses
 * other hosts (`//evil`, `/\evil`), schemes and control characters.
 */
export function safeNext(next: string | undefined | null): string {
  if (next === undefined || next === null || next.length > 2000) return "/console";
  if (!/^\/console(?:[/?#]|$)/.test(next) || /[\\\x00-\x1f\x7f]/.test(next)) return "/console";
  const url = new URL(next, "https://console.invalid");
  if (url.origin !== "https://console.invalid" || !/^\/console(?:\/|$)/.test(url.pathname)) return "/console";
  return `${url.pathname}${url.search}`;
}
