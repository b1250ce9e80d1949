/** @jsxImportSource hono/jsx */
import { type Context, Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { csrf } from "hono/csrf";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { describe, RelayError } from "../errors.ts";
import { log } from "../log.ts";
import { secretValue } from "../secrets.ts";
import type { ConsoleEnv } from "./env.ts";
import { field, formOf } from "./forms.ts";
import { blockedFor, clearFailures, FAILURE_DELAY_MS, recordFailure } from "./guard.ts";
import { withNotice } from "./layout.tsx";
import { callPage, callsPage, resendFromConsole } from "./pages/calls.tsx";
import {
  deadLetterPage,
  deadLettersPage,
  deleteFromConsole,
  replayAllFromConsole,
  replayOneFromConsole,
} from "./pages/dead-letters.tsx";
import { destinationsPage, pauseFromConsole } from "./pages/destinations.tsx";
import { errorPage } from "./pages/errors.tsx";
import { consoleOffPage, loginPage } from "./pages/login.tsx";
import { overviewPage } from "./pages/overview.tsx";
import { confirmRestore, editRules, restoreRules, rulesPage, saveRulesFromConsole } from "./pages/rules.tsx";
import { tryPage, tryPayload } from "./pages/try.tsx";
import {
  csrfToken,
  newSessionValue,
  readSession,
  SESSION_COOKIE,
  SESSION_SECONDS,
  safeNext,
  sameSecret,
} from "./session.ts";
import { STYLE } from "./style.ts";

/**
 * The console (docs/console.md): server-rendered pages at /console for an operator, signed in with
 * ADMIN_TOKEN. Every response carries a strict Content-Security-Policy (no script at all); every POST passes
 * an Origin check and the session's CSRF token; pages are never cached.
 */

const headers = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", "data:"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  xFrameOptions: "DENY",
  referrerPolicy: "no-referrer",
});

const noStore = createMiddleware<ConsoleEnv>(async (c, next) => {
  await next();
  if (!c.res.headers.has("cache-control")) c.header("Cache-Control", "no-store");
});

/** ADMIN_TOKEN unset: every page says the console is off. */
const tokenRequired = createMiddleware<ConsoleEnv>(async (c, next) => {
  const token = secretValue(c.env, "ADMIN_TOKEN");
  if (token === undefined) return consoleOffPage(c);
  c.set("token", token);
  await next();
});

/** A filter form submits its empty fields too: drop them (one redirect) so every address stays short and valid. */
const withoutEmptyParams = createMiddleware<ConsoleEnv>(async (c, next) => {
  if (c.req.method === "GET") {
    const url = new URL(c.req.url);
    const all = [...url.searchParams];
    const kept = all.filter(([, value]) => value !== "");
    if (kept.length !== all.length) {
      return c.redirect(`${url.pathname}${kept.length > 0 ? `?${new URLSearchParams(kept)}` : ""}`, 303);
    }
  }
  await next();
});

/**
 * Without a valid session, a page redirects (303) to the sign-in form, keeping where it was going in `next`.
 * With one, every POST must carry the session's CSRF token, or nothing is done.
 */
const sessionRequired = createMiddleware<ConsoleEnv>(async (c, next) => {
  const session = await readSession(c.var.token, getCookie(c, SESSION_COOKIE));
  if (session === undefined) {
    const url = new URL(c.req.url);
    const wanted = c.req.method === "GET" ? `${url.pathname}${url.search}` : "/console";
    return c.redirect(
      wanted === "/console" ? "/console/login" : `/console/login?next=${encodeURIComponent(wanted)}`,
      303,
    );
  }
  const token = await csrfToken(c.var.token, session);
  c.set("session", session);
  c.set("csrf", token);
  if (c.req.method !== "GET" && c.req.method !== "HEAD") {
    const given = (await formOf(c)).get("csrf") ?? "";
    if (!(await sameSecret(given, token))) {
      return errorPage(c, 403, "This form is out of date or did not come from the console, so nothing was done.", {
        title: "Refused",
      });
    }
  }
  await next();
});

const showLogin = (c: Context<ConsoleEnv>) => loginPage(c, { next: safeNext(c.req.query("next")) });

async function signIn(c: Context<ConsoleEnv>): Promise<Response> {
  const client = c.req.header("cf-connecting-ip") ?? "unknown";
  const next = safeNext(await field(c, "next"));
  const wait = blockedFor(client);
  if (wait > 0) {
    log("warn", "console_sign_in_failed", { client, outcome: "limited" });
    c.header("Retry-After", String(wait));
    return loginPage(c, {
      next,
      status: 429,
      problem: `Too many failed sign-ins from your address: try again in ${Math.ceil(wait / 60)} minutes.`,
    });
  }
  const given = (await formOf(c)).get("token") ?? "";
  if (!(await sameSecret(given, c.var.token))) {
    const failures = recordFailure(client);
    log("warn", "console_sign_in_failed", { client, outcome: "wrong_token", failures });
    // Every wrong guess costs the guesser a second.
    await new Promise((resolve) => setTimeout(resolve, FAILURE_DELAY_MS));
    return loginPage(c, { next, status: 401, problem: "That is not the admin token." });
  }
  clearFailures(client);
  setCookie(c, SESSION_COOKIE, await newSessionValue(c.var.token), {
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    path: "/console",
    maxAge: SESSION_SECONDS,
  });
  return c.redirect(next, 303);
}

function signOut(c: Context<ConsoleEnv>): Response {
  deleteCookie(c, SESSION_COOKIE, { path: "/console", secure: true, httpOnly: true, sameSite: "Strict" });
  return c.redirect(withNotice("/console/login", "signed_out"), 303);
}

export const consoleApp = new Hono<ConsoleEnv>()
  .use(headers, noStore, csrf())
  .get("/style.css", (c) =>
    c.body(STYLE, 200, { "Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=300" }),
  )
  .use(tokenRequired, withoutEmptyParams)
  .get("/login", showLogin)
  .post("/login", signIn)
  .use(sessionRequired)
  .post("/logout", signOut)
  .get("/", overviewPage)
  .get("/calls", callsPage)
  .get("/calls/:id", callPage)
  .post("/deliveries/:id/resend", resendFromConsole)
  .get("/dead-letters", deadLettersPage)
  .post("/dead-letters/replay", replayAllFromConsole)
  .get("/dead-letters/:id", deadLetterPage)
  .post("/dead-letters/:id/replay", replayOneFromConsole)
  .post("/dead-letters/:id/delete", deleteFromConsole)
  .get("/destinations", destinationsPage)
  .post("/destinations/:name/pause", pauseFromConsole)
  .post("/destinations/:name/resume", pauseFromConsole)
  .get("/rules", rulesPage)
  .post("/rules", editRules)
  .post("/rules/save", saveRulesFromConsole)
  .post("/rules/restore", confirmRestore)
  .post("/rules/restore/confirm", restoreRules)
  .get("/try", tryPage)
  .post("/try", tryPayload)
  .all("*", async (c) => {
    const path = new URL(c.req.url).pathname;
    if (c.req.method === "GET" && path === "/console/") return c.redirect("/console", 301);
    return errorPage(c, 404, `There is no console page at ${path}.`);
  })
  .onError((error, c) => {
    if (error instanceof HTTPException && error.status === 403) {
      return errorPage(c, 403, "This form was sent from another site, so nothing was done.", { title: "Refused" });
    }
    if (error instanceof RelayError) {
      return errorPage(c, error.status, error.message, {
        code: error.code,
        ...(typeof error.details.parameter === "string" && { parameter: error.details.parameter }),
      });
    }
    log("error", "unhandled", { error: describe(error), path: new URL(c.req.url).pathname });
    return errorPage(c, 500, "The console failed unexpectedly; the error is logged.");
  });
