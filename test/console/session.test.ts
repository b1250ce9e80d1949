import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MAX_FAILURES, resetGuard } from "../../src/console/guard.ts";
import { SESSION_COOKIE, SESSION_SECONDS, safeNext, sessionValue } from "../../src/console/session.ts";
import { ADMIN_TOKEN, EXAMPLE_RULES, fetchWith, putRules } from "../helpers.ts";
import {
  consoleFetch,
  cookieOf,
  expectRedirect,
  freshClient,
  ORIGIN,
  page,
  postForm,
  postLogin,
  signIn,
  textOf,
} from "./helpers.ts";

beforeEach(() => putRules(EXAMPLE_RULES));
afterEach(() => {
  vi.restoreAllMocks();
  resetGuard();
});

describe("signing in", () => {
  it("with the token sets an HttpOnly, Secure, SameSite=Strict cookie on /console for 8 hours, and opens the pages", async () => {
    const response = await postLogin(ADMIN_TOKEN);
    expectRedirect(response, "/console");
    const header = response.headers.get("set-cookie")!;
    const attributes = header
      .split(";")
      .slice(1)
      .map((a) => a.trim().toLowerCase());
    expect(header.startsWith(`${SESSION_COOKIE}=`)).toBe(true);
    expect(attributes).toEqual(
      expect.arrayContaining(["httponly", "secure", "samesite=strict", "path=/console", `max-age=${SESSION_SECONDS}`]),
    );
    expect(SESSION_SECONDS).toBe(28_800);
    const overview = await page("/console", cookieOf(response));
    expect(overview.status).toBe(200);
    expect(await overview.text()).toContain("<h1>Overview</h1>");
  });

  it("with a wrong token answers 401 with the form again and no cookie, after about a second", async () => {
    const started = Date.now();
    const response = await postLogin("not-the-token");
    expect(response.status).toBe(401);
    expect(response.headers.get("set-cookie")).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const html = await response.text();
    expect(html).toContain('name="token"');
    expect(textOf(html)).toContain("That is not the admin token");
  });

  it("logs each failure as console_sign_in_failed at warn, with the client and never the token", async () => {
    const warn = vi.spyOn(console, "warn");
    await postLogin("guess-number-one", { client: "203.0.113.9" });
    const lines = warn.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: "warn",
        event: "console_sign_in_failed",
        client: "203.0.113.9",
        outcome: "wrong_token",
      }),
    );
    expect(JSON.stringify(warn.mock.calls)).not.toContain("guess-number-one");
  });

  it(`refuses a client with 429 after ${MAX_FAILURES} failures in the window, even with the right token`, async () => {
    const client = freshClient();
    // Failures answered concurrently: the second each one waits overlaps.
    const failures = await Promise.all(
      Array.from({ length: MAX_FAILURES }, (_, i) => postLogin(`wrong-${i}`, { client })),
    );
    expect(failures.map((r) => r.status)).toEqual(Array(MAX_FAILURES).fill(401));
    const limited = await postLogin(ADMIN_TOKEN, { client });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("set-cookie")).toBeNull();
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(800);
    expect(textOf(await limited.text())).toContain("Too many failed sign-ins");
    // Another client is not affected.
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

  it("answers 503 saying the console is off when ADMIN_TOKEN is unset, on every page", async () => {
    for (const [path, init] of [
      ["/console/login", {}],
      ["/console", {}],
      ["/console/rules", {}],
      ["/console/login", { method: "POST", body: "token=x", headers: { origin: ORIGIN } }],
    ] as const) {
      const response = await fetchWith(
        { ADMIN_TOKEN: undefined },
        new Request(`${ORIGIN}${path}`, { ...init, redirect: "manual" }),
      );
      expect(response.status, path).toBe(503);
      expect(response.headers.get("set-cookie")).toBeNull();
      expect(textOf(await response.text())).toContain("The console is off until the ADMIN_TOKEN secret is set");
    }
  });
});

describe("without a valid session", () => {
  const pages = [
    "/console",
    "/console/calls?q=3339887",
    "/console/calls/abc",
    "/console/dead-letters",
    "/console/destinations",
    "/console/rules",
    "/console/try",
  ];

  it.each(pages)("GET %s redirects 303 to the sign-in form, keeping the path in next", async (path) => {
    const response = await page(path);
    expectRedirect(
      response,
      path === "/console" ? "/console/login" : `/console/login?next=${encodeURIComponent(path)}`,
    );
  });

  it("a tampered cookie is no session", async () => {
    const cookie = await signIn();
    const [name, value] = cookie.split("=") as [string, string];
    const [expiry, id, signature] = value.split(".") as [string, string, string];
    const tampered = [
      `${name}=${Number(expiry) + 1000}.${id}.${signature}`,
      `${name}=${expiry}.${id.replace(/^./, (ch) => (ch === "A" ? "B" : "A"))}.${signature}`,
      `${name}=${expiry}.${id}.${signature.replace(/^./, (ch) => (ch === "A" ? "B" : "A"))}`,
      `${name}=garbage`,
    ];
    for (const bad of tampered) expectRedirect(await page("/console/rules", bad), /^\/console\/login\?next=/);
  });

  it("an expired cookie is no session", async () => {
    const past = Date.now() - 9 * 3600_000;
    const value = await sessionValue(ADMIN_TOKEN, {
      id: "AAAAAAAAAAAAAAAAAAAAAA",
      expiresAt: past + SESSION_SECONDS * 1000,
    });
    expectRedirect(await page("/console", `${SESSION_COOKIE}=${value}`), "/console/login");
    // The same session, still within its 8 hours, is one.
    const live = await sessionValue(ADMIN_TOKEN, { id: "AAAAAAAAAAAAAAAAAAAAAA", expiresAt: Date.now() + 60_000 });
    expect((await page("/console", `${SESSION_COOKIE}=${live}`)).status).toBe(200);
  });

  it("a cookie signed with the old token stops working once the token changes", async () => {
    const cookie = await signIn();
    const request = () => new Request(`${ORIGIN}/console`, { headers: { cookie }, redirect: "manual" });
    expect((await fetchWith({}, request())).status).toBe(200);
    const changed = await fetchWith({ ADMIN_TOKEN: "a-new-admin-token" }, request());
    expectRedirect(changed, "/console/login");
  });
});

describe("signing out", () => {
  it("clears the cookie and shows the sign-in form; the old page then redirects", async () => {
    const cookie = await signIn();
    const response = await postForm("/console/logout", cookie);
    expectRedirect(response, "/console/login?notice=signed_out");
    const cleared = response.headers.get("set-cookie")!;
    expect(cleared).toMatch(new RegExp(`^${SESSION_COOKIE}=;`));
    expect(cleared.toLowerCase()).toContain("max-age=0");
    const login = await consoleFetch("/console/login?notice=signed_out");
    expect(textOf(await login.text())).toContain("You are signed out.");
  });
});

describe("the sign-in page", () => {
  it("labels its field and keeps next", async () => {
    const html = await (await page("/console/login?next=%2Fconsole%2Frules")).text();
    expect(html).toMatch(/<label for="token">/);
    expect(html).toMatch(/<input type="password" id="token" name="token"/);
    expect(html).toContain('name="next" value="/console/rules"');
    expect(env.ADMIN_TOKEN).toBe(ADMIN_TOKEN);
    expect(html).not.toContain(ADMIN_TOKEN);
  });
});
