/** @jsxImportSource hono/jsx */
import { type Context, Hono } from "hono";
import { csrf } from "hono/csrf";
import { createMiddleware } from "hono/factory";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { checkedToken, identify } from "../auth/identify.ts";
import { endSession, startSession } from "../auth/sessions.ts";
import { tokensOf, weakTokens } from "../auth/tokens.ts";
import { describe, errorResponse, RelayError } from "../errors.ts";
import { log } from "../log.ts";
import { opContext, recordEvent, recordFailedSignIn } from "../ops/record.ts";
import { endAllSessions } from "../ops/sessions.ts";
import { accessOf } from "../settings.ts";
import type { ConsoleEnv } from "./env.ts";
import { field, formOf } from "./forms.ts";
import { redirectWithNotice } from "./layout.tsx";
import { activityListPage, activityRowPage, endAllPage } from "./pages/activity.tsx";
import { alertsPage } from "./pages/alerts.tsx";
import { callPage, callsPage, resendConfirmPage, resendFromConsole } from "./pages/calls.tsx";
import {
  askAllPage,
  askOnePage,
  deadLetterPage,
  deadLettersPage,
  deleteFromConsole,
  replayAllFromConsole,
  replayOneFromConsole,
} from "./pages/dead-letters.tsx";
import { destinationPage, probeConfirmPage, probeFromConsole } from "./pages/destination.tsx";
import { destinationsPage, pauseFromConsole } from "./pages/destinations.tsx";
import { errorPage } from "./pages/errors.tsx";
import { bulkFromConsole, bulkPage, jobPage, jobsPage } from "./pages/jobs.tsx";
import { consoleOffPage, loginPage } from "./pages/login.tsx";
import { overviewPage } from "./pages/overview.tsx";
import {
  confirmRestore,
  editRules,
  restoreVersion,
  rulesPage,
  saveRulesFromConsole,
  versionPage,
} from "./pages/rules.tsx";
import { tryPage, tryPayload } from "./pages/try.tsx";
import { FAILURE_DELAY_MS, safeNext, sameSecret } from "./session.ts";
import { STYLE } from "./style.ts";

/**
 * The console (docs/console.md): server-rendered pages at /console for operators and viewers, signed in through
 * Cloudflare Access or with a token (src/auth/identify.ts). Every response carries a strict Content-Security-
 * Policy (no script at all); every POST passes an Origin check and the actor's CSRF token; pages are never
 * cached.
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

/** Past identify (src/auth/identify.ts): every POST of a signed-in actor must carry its CSRF token. */
const csrfRequired = createMiddleware<ConsoleEnv>(async (c, next) => {
  const token = c.get("csrf");
  if (token !== undefined && c.req.method !== "GET" && c.req.method !== "HEAD") {
    const given = (await formOf(c)).get("csrf") ?? "";
    if (!(await sameSecret(given, token))) {
      return errorPage(c, 403, "This form is out of date or did not come from the console, so nothing was done.", {
        title: "Refused",
      });
    }
  }
  await next();
});

/** Whether the token form is on: always without Access, with Access only by CONSOLE_TOKEN_SIGN_IN=on. */
const tokenSignIn = (c: Context<ConsoleEnv>) =>
  accessOf(c.var.settings) === undefined || c.var.settings.CONSOLE_TOKEN_SIGN_IN === true;

function showLogin(c: Context<ConsoleEnv>): Promise<Response> {
  if (weakTokens(c.env).length > 0 || (accessOf(c.var.settings) === undefined && tokensOf(c.env).length === 0)) {
    return consoleOffPage(c);
  }
  return loginPage(c, { next: safeNext(c.req.query("next")), form: tokenSignIn(c) });
}

async function signIn(c: Context<ConsoleEnv>): Promise<Response> {
  if (weakTokens(c.env).length > 0 || (accessOf(c.var.settings) === undefined && tokensOf(c.env).length === 0)) {
    return consoleOffPage(c);
  }
  const next = safeNext(await field(c, "next"));
  if (!tokenSignIn(c)) {
    return loginPage(c, {
      next,
      form: false,
      status: 403,
      problem: "Token sign-in is off: this relay is behind Cloudflare Access. Open the console through Access.",
    });
  }
  const anonymous = { id: "anonymous", role: "viewer" as const, via: "console" as const };
  const op = { env: c.env, actor: anonymous, ip: c.req.header("cf-connecting-ip"), now: Date.now() };
  const checked = await checkedToken(c, (await formOf(c)).get("token") ?? "");
  if ("limited" in checked) {
    if (checked.firstRefusal) {
      await recordFailedSignIn(op, "limited");
    }
    c.header("Retry-After", String(checked.limited));
    return loginPage(c, {
      next,
      status: 429,
      problem: `Too many failed sign-ins from your address: try again in ${Math.ceil(checked.limited / 60)} minutes.`,
    });
  }
  if ("wrong" in checked) {
    await recordFailedSignIn(op, "wrong_token");
    // Every wrong guess costs the guesser a second.
    await new Promise((resolve) => setTimeout(resolve, FAILURE_DELAY_MS));
    return loginPage(c, { next, status: 401, problem: "That is not a token of this relay." });
  }
  const actor = { id: checked.token.actor, role: checked.token.role, via: "console" as const };
  // On record first: a sign-in whose row cannot be written makes no session.
  await recordEvent({ ...op, actor }, { action: "sign_in", target: actor.id }, "ok");
  await startSession(c, checked.token);
  return c.redirect(next, 303);
}

async function signOut(c: Context<ConsoleEnv>): Promise<Response> {
  await recordEvent(opContext(c), { action: "sign_out", target: c.var.actor.id }, "ok");
  await endSession(c);
  return redirectWithNotice(c, "/console/login", "signed_out");
}

async function signOutEverywhere(c: Context<ConsoleEnv>): Promise<Response> {
  await endAllSessions(opContext(c));
  await endSession(c);
  return redirectWithNotice(c, "/console/login", "signed_out_everywhere");
}

/** Where a visitor without a session goes: the sign-in form (HTML), or 401 for a JSON request. */
function toLogin(c: Context<ConsoleEnv>, error: RelayError): Response {
  if (/application\/json/.test(c.req.header("accept") ?? "")) return errorResponse(error);
  const url = new URL(c.req.url);
  const wanted = c.req.method === "GET" ? `${url.pathname}${url.search}` : "/console";
  return c.redirect(
    wanted === "/console" ? "/console/login" : `/console/login?next=${encodeURIComponent(wanted)}`,
    303,
  );
}

export const consoleApp = new Hono<ConsoleEnv>()
  .use(headers, noStore, csrf())
  .get("/style.css", (c) =>
    c.body(STYLE, 200, { "Content-Type": "text/css; charset=utf-8", "Cache-Control": "public, max-age=300" }),
  )
  .use(identify, withoutEmptyParams, csrfRequired)
  .get("/login", showLogin)
  .post("/login", signIn)
  .post("/logout", signOut)
  // Each irreversible or bulk change: GET its address for the page that asks, POST it to do it.
  .get("/sessions/end-all", endAllPage)
  .post("/sessions/end-all", signOutEverywhere)
  .get("/", overviewPage)
  .get("/calls", callsPage)
  .get("/calls/:id", callPage)
  .get("/deliveries/:id/resend", resendConfirmPage)
  .post("/deliveries/:id/resend", resendFromConsole)
  .get("/deliveries/bulk/replay", bulkPage)
  .post("/deliveries/bulk/replay", bulkFromConsole)
  .get("/deliveries/bulk/delete", bulkPage)
  .post("/deliveries/bulk/delete", bulkFromConsole)
  .get("/jobs", jobsPage)
  .get("/jobs/:id", jobPage)
  .get("/dead-letters", deadLettersPage)
  // Before /dead-letters/:id, which the same address would match.
  .get("/dead-letters/replay", askAllPage)
  .post("/dead-letters/replay", replayAllFromConsole)
  .get("/dead-letters/:id", deadLetterPage)
  .get("/dead-letters/:id/replay", askOnePage)
  .post("/dead-letters/:id/replay", replayOneFromConsole)
  .get("/dead-letters/:id/delete", askOnePage)
  .post("/dead-letters/:id/delete", deleteFromConsole)
  .get("/destinations", destinationsPage)
  .get("/destinations/:name", destinationPage)
  .get("/destinations/:name/probe", probeConfirmPage)
  .post("/destinations/:name/probe", probeFromConsole)
  .post("/destinations/:name/pause", pauseFromConsole)
  .post("/destinations/:name/resume", pauseFromConsole)
  .get("/alerts", alertsPage)
  .get("/rules", rulesPage)
  .post("/rules", editRules)
  .post("/rules/save", saveRulesFromConsole)
  .get("/rules/versions/:version", versionPage)
  .post("/rules/versions/:version/restore", confirmRestore)
  .post("/rules/versions/:version/restore/confirm", restoreVersion)
  .get("/try", tryPage)
  .post("/try", tryPayload)
  .get("/activity", activityListPage)
  .get("/activity/:id", activityRowPage)
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
      if (error.code === "session_ended" || error.code === "unauthorized") return toLogin(c, error);
      if (error.code === "admin_disabled") return consoleOffPage(c);
      for (const [name, value] of Object.entries(error.headers)) c.header(name, value);
      return errorPage(c, error.status, error.message, {
        code: error.code,
        ...(typeof error.details.parameter === "string" && { parameter: error.details.parameter }),
      });
    }
    log("error", "unhandled", { error: describe(error), path: new URL(c.req.url).pathname });
    return errorPage(c, 500, "The console failed unexpectedly; the error is logged.");
  });
