/**
 * The console as a browser without JavaScript uses it: GET pages, POST forms (url-encoded, with the page's
 * Origin and CSRF field), and the session cookie carried by hand. Redirects are returned, not followed.
 */
import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import { ADMIN_TOKEN } from "../helpers.ts";

export const ORIGIN = "https://relay.test";

let clients = 0;
/** A client address of its own, so that sign-in failures counted for one test never limit another. */
export function freshClient(): string {
  clients++;
  return `2001:db8:${clients.toString(16)}::1`;
}

export function consoleFetch(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(`${ORIGIN}${path}`, { redirect: "manual", ...init });
}

/** GET a console page with (or without) a session cookie. */
export function page(path: string, cookie?: string): Promise<Response> {
  return consoleFetch(path, cookie === undefined ? {} : { headers: { cookie } });
}

/** Posts the sign-in form; the answer, not followed. */
export function postLogin(token: string, { client = freshClient(), next }: { client?: string; next?: string } = {}) {
  const form = new URLSearchParams({ token, ...(next !== undefined && { next }) });
  return consoleFetch("/console/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN, "cf-connecting-ip": client },
    body: form.toString(),
  });
}

/** The `name=value` part of a Set-Cookie header. */
export function cookieOf(response: Response): string {
  const header = response.headers.get("set-cookie");
  expect(header, "a Set-Cookie header").not.toBeNull();
  return header!.split(";")[0]!;
}

/** Signs in with a token (the admin token unless told) and returns the session cookie (`__Host-console_session=…`). */
export async function signIn(token = ADMIN_TOKEN): Promise<string> {
  const response = await postLogin(token);
  expect(response.status).toBe(303);
  return cookieOf(response);
}

/** The CSRF field of the forms on a page. */
export function csrfIn(html: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(html);
  expect(match, "a CSRF field on the page").not.toBeNull();
  return match![1]!;
}

/** The CSRF token of a session, read from its overview page. */
export async function csrfOf(cookie: string): Promise<string> {
  const response = await page("/console", cookie);
  expect(response.status).toBe(200);
  return csrfIn(await response.text());
}

/**
 * Posts a console form as the browser would: url-encoded, from the console's origin, with the session's CSRF
 * token unless `csrf: false` (or another value) is given.
 */
export async function postForm(
  path: string,
  cookie: string,
  fields: Record<string, string> = {},
  { csrf, origin = ORIGIN }: { csrf?: string | false; origin?: string } = {},
): Promise<Response> {
  const token = csrf === undefined ? await csrfOf(cookie) : csrf;
  const form = new URLSearchParams({ ...fields, ...(token !== false && { csrf: token }) });
  return consoleFetch(path, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin, cookie },
    body: form.toString(),
  });
}

/**
 * The notice an action's redirect leaves for the page it goes to: a short-lived cookie (so that a reload does not
 * show it again), as a `name=value` pair to send with that page's request.
 */
export function noticeCookieOf(response: Response): string {
  const pair = response.headers.getSetCookie().find((line) => line.startsWith("__Host-console_notice="));
  expect(pair, "a Set-Cookie of the notice").toBeDefined();
  return pair!.split(";")[0]!;
}

/** Asserts a 303 to `location` (a path; the query compared when given). */
export function expectRedirect(response: Response, location: string | RegExp): void {
  expect(response.status).toBe(303);
  const to = response.headers.get("location") ?? "";
  if (typeof location === "string") expect(to).toBe(location);
  else expect(to).toMatch(location);
}

/** The text of a page with its markup removed and entities decoded, for assertions on what a person reads. */
export function textOf(html: string): string {
  return html
    .replace(/<\/?(?:a|code|span|time|strong|em|wbr)\b[^>]*>/g, "")
    .replace(/<[^>]*>/g, " ")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&amp;", "&")
    .replace(/\s+/g, " ");
}
