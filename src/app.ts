import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import * as z from "zod";
import { version } from "../package.json";
import { admin } from "./admin/index.ts";
import { weakTokens } from "./auth/tokens.ts";
import { consoleApp } from "./console/index.tsx";
import type { AppEnv } from "./env.ts";
import { describe, errorResponse, RelayError } from "./errors.ts";
import { webhook } from "./ingress/webhook.ts";
import { ledgerRoom } from "./ledger/room.ts";
import { log } from "./log.ts";
import { secretValue } from "./secrets.ts";
import { accessOf, settingsOf } from "./settings.ts";

/** GET /healthz answers this (public, outside the admin API and its document). */
export const healthSchema = z.strictObject({
  status: z.literal("ok"),
  version: z.string(),
  webhookSecret: z.boolean(),
  adminEnabled: z.boolean(),
});
export type Health = z.infer<typeof healthSchema>;

/** Parses the settings once per isolate and hands them to every handler; a bad var → 503 `misconfigured`. */
const settings = createMiddleware<AppEnv>(async (c, next) => {
  c.set("settings", settingsOf(c.env));
  await next();
});

/** The storage room (src/ledger/room.ts) for the admin API's and the console's handlers. */
const storageRoom = createMiddleware<AppEnv>(async (c, next) => {
  c.set("ledger", ledgerRoom(c.env));
  await next();
});

/** What no answer may be taken for by a browser on this origin (the console's): sniffed HTML, a page that runs. */
export const NO_CONTENT_POLICY = "default-src 'none'; frame-ancestors 'none'; sandbox";

/**
 * Every answer is `nosniff`, and any answer without a policy of its own (all but the console's pages) gets
 * one that allows nothing: the echo handshake reflects its token as text/plain on the console's origin.
 */
const safeAnswers = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  c.header("X-Content-Type-Options", "nosniff");
  if (!c.res.headers.has("Content-Security-Policy")) c.header("Content-Security-Policy", NO_CONTENT_POLICY);
});

/** The HTTP side of the relay: the sender's door, health, the admin API and the console. */
export function createApp() {
  const app = new Hono<AppEnv>();
  app.use(safeAnswers);
  app.use(settings);
  app.route("/webhook", webhook);
  app.use("/admin/*", storageRoom);
  app.use("/console/*", storageRoom);
  app.route("/admin", admin);
  app.route("/console", consoleApp);
  app.get("/healthz", (c) =>
    c.json({
      status: "ok",
      version,
      webhookSecret: c.var.settings.webhookSecrets.length > 0,
      // A way in that works: a token of 32 characters or more, or Cloudflare Access (docs/console.md).
      adminEnabled:
        weakTokens(c.env).length === 0 &&
        (secretValue(c.env, "ADMIN_TOKEN") !== undefined || accessOf(c.var.settings) !== undefined),
    } satisfies Health),
  );

  app.notFound((c) =>
    errorResponse(new RelayError("not_found", `There is nothing at ${c.req.method} ${new URL(c.req.url).pathname}.`)),
  );

  app.onError((error, c) => {
    if (error instanceof RelayError) {
      // Every refused sender call is an ingress result worth a log line (admin refusals too).
      const path = new URL(c.req.url).pathname;
      if (path.startsWith("/webhook") || error.status === 401) {
        log(error.status >= 500 ? "error" : "warn", path.startsWith("/webhook") ? "call" : "admin", {
          outcome: error.code,
          status: error.status,
        });
      }
      return errorResponse(error);
    }
    log("error", "unhandled", { error: describe(error) });
    return errorResponse(new RelayError("internal_error", "The relay failed unexpectedly; the error is logged."));
  });

  return app;
}
