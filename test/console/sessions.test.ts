import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_FAILURES } from "../../src/auth/limiter.ts";
import { SECURE_COOKIE } from "../../src/auth/sessions.ts";
import { safeNext } from "../../src/console/session.ts";
import { listActivity } from "../../src/ledger/activity.ts";
import { findSession } from "../../src/ledger/sessions.ts";
import { ADMIN_TOKEN, EXAMPLE_RULES, fetchWith, putRules, VIEWER_TOKEN } from "../helpers.ts";
import {
  consoleFetch,
  cookieOf,
  expectRedirect,
  freshClient,
  noticeCookieOf,
  ORIGIN,
  page,
  postForm,
  postLogin,
  signIn,
  textOf,
} from "./helpers.ts";

beforeEach(() => putRules(EXAMPLE_RULES));
afterEach(() => vi.restoreAllMocks());

const sha256 = async (text: string) =>
  [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");

describe("signing in", () => {
  it("with a token sets a __Host- cookie (HttpOnly, Secure, SameSite=Strict, Path=/) for 8 hours, and opens the pages", async () => {
    const response = await postLogin(ADMIN_TOKEN);
    expectRedirect(response, "/console");
    const header = response.headers.get("set-cookie")!;
    const attributes = header
      .split(";")
      .slice(1)
      .map((a) => a.trim().toLowerCase());
    expect(header.startsWith(`${SECURE_COOKIE}=`)).toBe(true);
    expect(attributes).toEqual(
      expect.arrayContaining(["httponly", "secure", "samesite=strict", "path=/", "max-age=28800"]),
    );
    const overview = await page("/console", cookieOf(response));
    expect(overview.status).toBe(200);
    expect(textOf(await overview.text())).toContain("admin-token (operator)");
  });

  it("keeps only the SHA-256 of the cookie's random id (256 bits), with the actor, role and times", async () => {
    const cookie = await signIn(VIEWER_TOKEN);
    const id = cookie.split("=")[1]!;
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = await findSession(env.LEDGER, await sha256(id));
    expect(row).toMatchObject({ actor: "viewer-token", role: "viewer" });
    expect(row!.expiresAt - row!.createdAt).toBe(8 * 3_600_000);
    expect(await findSession(env.LEDGER, id)).toBeNull();
  });

  it("makes a new id at every sign-in, and records each (sign_in)", async () => {
    const [a, b] = [await signIn(), await signIn()];
    expect(a).not.toBe(b);
    const { items } = await listActivity(env.LEDGER, { action: "sign_in", limit: 2 });
    expect(items.map((r) => [r.actor, r.role, r.via, r.outcome])).toEqual([
      ["admin-token", "operator", "console", "ok"],
      ["admin-token", "operator", "console", "ok"],
    ]);
  });

  it("with a wrong token answers 401 with the form again and no cookie, after about a second, on record", async () => {
    const started = Date.now();
    const client = freshClient();
    const response = await postLogin("not-the-token", { client });
    expect(response.status).toBe(401);
    expect(response.headers.get("set-cookie")).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(textOf(await response.text())).toContain("That is not a token of this relay");
    const [row] = (await listActivity(env.LEDGER, { action: "sign_in_failed", limit: 1 })).items;
    expect(row).toMatchObject({ actor: "anonymous", role: "none", outcome: "wrong_token", ip: client });
    expect(JSON.stringify(row)).not.toContain("not-the-token");
  });

  it(`refuses a client with 429 after ${MAX_FAILURES} failures in 10 minutes, even with the right token; the limit is the admin API's too`, async () => {
    const client = freshClient();
    const failures = await Promise.all(
      Array.from({ length: MAX_FAILURES }, (_, i) => postLogin(`wrong-${i}`, { client })),
    );
    expect(failures.map((r) => r.status)).toEqual(Array(MAX_FAILURES).fill(401));
    const limited = await postLogin(ADMIN_TOKEN, { client });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("set-cookie")).toBeNull();
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(500);
    expect(textOf(await limited.text())).toContain("Too many failed sign-ins");
    const api = await consoleFetch("/admin/rules", {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "cf-connecting-ip": client },
    });
    expect(api.status).toBe(429);
    // The first refusal of the window is on record, not every one.
    await postLogin(ADMIN_TOKEN, { client });
    const limitedRows = (await listActivity(env.LEDGER, { action: "sign_in_failed", limit: 50 })).items.filter(
      (r) => r.ip === client && r.outcome === "limited",
    );
    expect(limitedRows).toHaveLength(1);
    expect((await postLogin(ADMIN_TOKEN)).status).toBe(303);
  });

  it("goes on to the page it was sent from (`next`), a console path only", async () => {
    expectRedirect(await postLogin(ADMIN_TOKEN, { next: "/console/calls?q=3339887" }), "/console/calls?q=3339887");
    for (const next of [
      "https://evil.test/console",
      "//evil.test/console",
      "/\\evil.test",
      "/admin/rules",
      "/consoles",
    ]) {
      expectRedirect(await postLogin(ADMIN_TOKEN, { next }), "/console");
    }
    expect(safeNext("/console/../admin")).toBe("/console");
  });

  it("answers 503 saying the console is off when no token and no Access are set, on every page", async () => {
    for (const [path, init] of [
      ["/console/login", {}],
      ["/console", {}],
      ["/console/rules", {}],
      ["/console/login", { method: "POST", body: "token=x", headers: { origin: ORIGIN } }],
    ] as const) {
      const response = await fetchWith(
        { ADMIN_TOKEN: undefined, VIEWER_TOKEN: undefined },
        new Request(`${ORIGIN}${path}`, { ...init, redirect: "manual" }),
      );
      expect(response.status, path).toBe(503);
      expect(response.headers.get("set-cookie")).toBeNull();
      expect(textOf(await response.text())).toContain("The console is off until a way in is set");
    }
  });
});

describe("without a live session", () => {
  const pages = [
    "/console",
    "/console/calls?q=3339887",
    "/console/dead-letters",
    "/console/rules",
    "/console/activity",
  ];

  it.each(pages)("GET %s redirects 303 to the sign-in form, keeping the path in next", async (path) => {
    expectRedirect(
      await page(path),
      path === "/console" ? "/console/login" : `/console/login?next=${encodeURIComponent(path)}`,
    );
  });

  it("a made-up or tampered cookie is no session", async () => {
    const cookie = await signIn();
    const [name, value] = cookie.split("=") as [string, string];
    for (const bad of [`${name}=${value.replace(/^./, (ch) => (ch === "A" ? "B" : "A"))}`, `${name}=garbage`]) {
      expectRedirect(await page("/console/rules", bad), /^\/console\/login\?next=/);
    }
  });

  it("the cookie without its __Host- prefix is not read over https (a sibling could have set it)", async () => {
    const cookie = await signIn();
    expectRedirect(await page("/console", cookie.replace(SECURE_COOKIE, "console_session")), "/console/login");
  });
});

describe("a session ends", () => {
  it("at sign-out, on the server: the old cookie is refused at once (303 for a page, 401 for JSON)", async () => {
    const cookie = await signIn();
    const response = await postForm("/console/logout", cookie);
    expectRedirect(response, "/console/login");
    expect(noticeCookieOf(response)).toBe("__Host-console_notice=signed_out.0.0");
    expect(response.headers.get("set-cookie")!.toLowerCase()).toContain("max-age=0");
    expectRedirect(await page("/console", cookie), "/console/login");
    const json = await consoleFetch("/console/rules", { headers: { cookie, accept: "application/json" } });
    expect(json.status).toBe(401);
    expect(await json.json()).toMatchObject({ error: "session_ended" });
    const [row] = (await listActivity(env.LEDGER, { action: "sign_out", limit: 1 })).items;
    expect(row).toMatchObject({ actor: "admin-token", outcome: "ok" });
  });

  it("everywhere at once when an operator signs out everywhere, on record", async () => {
    const [mine, theirs, viewer] = [await signIn(), await signIn(), await signIn(VIEWER_TOKEN)];
    expect((await postForm("/console/sessions/end-all", viewer)).status).toBe(403);
    expectRedirect(await postForm("/console/sessions/end-all", mine), "/console/login");
    for (const cookie of [mine, theirs, viewer]) expectRedirect(await page("/console", cookie), "/console/login");
    const [row] = (await listActivity(env.LEDGER, { action: "sessions.end_all", limit: 1 })).items;
    expect(row).toMatchObject({ actor: "admin-token", outcome: "ok" });
  });

  it("when the token it was made with changes", async () => {
    const cookie = await signIn();
    const request = () => new Request(`${ORIGIN}/console`, { headers: { cookie }, redirect: "manual" });
    expect((await fetchWith({}, request())).status).toBe(200);
    expectRedirect(
      await fetchWith({ ADMIN_TOKEN: "a-new-admin-token-0123456789abcdef012345" }, request()),
      "/console/login",
    );
    // Ended for good: the old token back does not bring it back.
    expectRedirect(await fetchWith({}, request()), "/console/login");
  });

  it("after CONSOLE_IDLE_MINUTES without a request, and at CONSOLE_SESSION_HOURS whatever its use (the DEV_CLOCK test clock)", async () => {
    const LOCAL = "http://127.0.0.1:8787";
    const at = (path: string, cookie: string, now: number) =>
      fetchWith(
        { DEV_CLOCK: "on", CONSOLE_IDLE_MINUTES: "5", CONSOLE_SESSION_HOURS: "1" },
        new Request(`${LOCAL}${path}`, { headers: { cookie, "x-dev-clock": String(now) }, redirect: "manual" }),
      );
    const signInAt = async (now: number) => {
      const response = await fetchWith(
        { DEV_CLOCK: "on", CONSOLE_IDLE_MINUTES: "5", CONSOLE_SESSION_HOURS: "1" },
        new Request(`${LOCAL}/console/login`, {
          method: "POST",
          redirect: "manual",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            origin: LOCAL,
            "cf-connecting-ip": freshClient(),
            "x-dev-clock": String(now),
          },
          body: `token=${ADMIN_TOKEN}`,
        }),
      );
      expect(response.headers.get("set-cookie")).toMatch(/^console_session=/);
      return cookieOf(response);
    };
    const T = Date.parse("2026-12-04T09:00:00Z");
    const idle = await signInAt(T);
    expect((await at("/console", idle, T + 4 * 60_000)).status).toBe(200);
    expect((await at("/console", idle, T + 8 * 60_000)).status).toBe(200);
    expectRedirect(await at("/console", idle, T + 13 * 60_000 + 1), "/console/login");

    const busy = await signInAt(T);
    for (let minute = 4; minute < 60; minute += 4)
      expect((await at("/console", busy, T + minute * 60_000)).status).toBe(200);
    expectRedirect(await at("/console", busy, T + 60 * 60_000), "/console/login");
  });

  it("ignores the test clock for any host but loopback", async () => {
    const cookie = await signIn();
    const later = Date.now() + 10 * 3_600_000;
    const response = await fetchWith(
      { DEV_CLOCK: "on" },
      new Request(`${ORIGIN}/console`, { headers: { cookie, "x-dev-clock": String(later) }, redirect: "manual" }),
    );
    expect(response.status).toBe(200);
  });
});

describe("the activity page", () => {
  it("offers an operator Sign out everywhere, which asks first, and a viewer not", async () => {
    const [operator, viewer] = [await signIn(), await signIn(VIEWER_TOKEN)];
    const activity = await (await page("/console/activity", operator)).text();
    expect(activity).toContain('href="/console/sessions/end-all"');
    expect(activity).not.toContain('action="/console/sessions/end-all"');
    const ask = await (await page("/console/sessions/end-all", operator)).text();
    expect(textOf(ask)).toContain("Sign out everywhere?");
    expect(ask).toContain('action="/console/sessions/end-all"');
    expect(await (await page("/console/activity", viewer)).text()).not.toContain("/console/sessions/end-all");
    expect(await (await page("/console/sessions/end-all", viewer)).text()).not.toContain(
      'action="/console/sessions/end-all"',
    );
  });
});
