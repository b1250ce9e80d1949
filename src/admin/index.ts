import { Hono } from "hono";
import { identify } from "../auth/identify.ts";
import type { AppEnv } from "../env.ts";
import { operatorsAdmin } from "./activity.ts";
import { deadLetters } from "./dead-letters.ts";
import { destinationsAdmin } from "./destinations.ts";
import { ledgerAdmin } from "./ledger.ts";
import { rulesAdmin } from "./rules.ts";
import { trace } from "./trace.ts";

/** /admin/*: each request names its actor and is allowed by its route's role (docs/admin-api.md). */
export const admin = new Hono<AppEnv>()
  .use("*", identify)
  .route("/", rulesAdmin)
  .route("/", trace)
  .route("/", operatorsAdmin)
  .route("/dead-letters", deadLetters)
  .route("/destinations", destinationsAdmin)
  .route("/ledger", ledgerAdmin);
