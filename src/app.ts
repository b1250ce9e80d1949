import { Hono } from "hono";
import { RelayError, describe, errorResponse } from "./errors.ts";
import { admin } from "./admin/index.ts";
import { webhook } from "./ingress/webhook.ts";
import { log } from "./log.ts";
import { settingsOf, type Env } from "./settings.ts";
import { version } from "../package.json";

/** The HTTP side of the relay: the sender's door, health, and the admin API. */
export function createApp() {
  const app = new Hono<{ Bindings: Env }>();

  app.route("/webhook", webhook);
  app.route("/admin", admin);

  app.get("/healthz", (c) => {
    const settings = settingsOf(c.env);
    return c.json({
      status: "ok",
      version,
      webhookSecret: settings.webhookSecrets.length > 0,
      adminEnabled: typeof c.env.ADMIN_TOKEN === "string" && c.env.ADMIN_TOKEN !== "",
    });
  });

  app.notFound((c) =>
    errorResponse(new RelayError(404, "not_found", `There is nothing at ${c.req.method} ${new URL(c.req.url).pathname}.`)),
  );

  app.onError((error) => {
    if (error instanceof RelayError) return errorResponse(error);
    log("error", "unhandled", { error: describe(error) });
    return errorResponse(new RelayError(500, "internal_error", "The relay failed unexpectedly; the error is logged."));
  });

  return app;
}
