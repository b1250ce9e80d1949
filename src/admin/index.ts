import { Hono } from "hono";
import { version } from "../../package.json";
import { identify } from "../auth/identify.ts";
import type { AppEnv } from "../env.ts";
import { operatorsAdmin } from "./activity.ts";
import { bulkAdmin } from "./bulk.ts";
import { deadLetters } from "./dead-letters.ts";
import { alertsAdmin, destinationsAdmin } from "./destinations.ts";
import { ledgerAdmin } from "./ledger.ts";
import { type ApiDocument, apiDocument, described } from "./openapi.ts";
import { rulesAdmin } from "./rules.ts";
import { trace } from "./trace.ts";

/** /admin/*: each request names its actor and is allowed by its route's role (docs/admin-api.md). */
export const admin = new Hono<AppEnv>()
  .use("*", identify)
  .get("/openapi.json", described("GET /admin/openapi.json"), async (c) => c.json(await adminDocument()))
  .route("/", rulesAdmin)
  // Before the routes with an :id at the same place (/deliveries/count, /dead-letters/delete).
  .route("/", bulkAdmin)
  .route("/", trace)
  .route("/", operatorsAdmin)
  .route("/dead-letters", deadLetters)
  .route("/destinations", destinationsAdmin)
  .route("/alerts", alertsAdmin)
  .route("/ledger", ledgerAdmin);

let document: Promise<ApiDocument> | undefined;

/** The OpenAPI document of the routes above, as mounted at /admin: generated once per isolate. */
export function adminDocument(): Promise<ApiDocument> {
  document ??= apiDocument(new Hono().route("/admin", admin), version).catch((error: unknown) => {
    document = undefined;
    throw error;
  });
  return document;
}
