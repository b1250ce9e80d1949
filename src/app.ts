import { Hono } from "hono";
import { version } from "../package.json";
import { admin } from "./admin/index.ts";
import { describe, errorResponse, RelayError } from "./errors.ts";
import { webhook } from "./ingress/webhook.ts";
import { log } from "./log.ts";
import { type Env, settingsOf } from "./settings.ts";

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
    errorResponse(
      new RelayError(404, "not_found", `There is nothing at ${c.req.method} ${new URL(c.req.url).pathname}.`),
    ),
  );

  app.onError((error, c) => {
    if (error instanceof RelayError) {
      // Every refused sender call is an ingress result worth a log line (admin refusals too).
      const path = new URL(c.req.url).pathname;
      if (path.startsWith("/webhook") || error.status === 401) {
        log(error.status >= 500 ? "error" : "warn", path.startsWith("/webhook") ? "ingress" : "admin", {
          outcome: error.code,
          status: error.status,
        });
      }
      return errorResponse(error);
    }
    log("error", "unhandled", { error: describe(error) });
    return errorResponse(new RelayError(500, "internal_error", "The relay failed unexpectedly; the error is logged."));
  });

  return app;
}
