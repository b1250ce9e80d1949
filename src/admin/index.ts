import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { adminAuth } from "./auth.ts";
import { deadLetters } from "./dead-letters.ts";
import { destinationsAdmin } from "./destinations.ts";
import { ledgerAdmin } from "./ledger.ts";
import { rulesAdmin } from "./rules.ts";
import { trace } from "./trace.ts";

/** /admin/*: bearer-authenticated operations (docs/admin-api.md). */
export const admin = new Hono<AppEnv>()
  .use("*", adminAuth)
  .route("/", rulesAdmin)
  .route("/", trace)
  .route("/dead-letters", deadLetters)
  .route("/destinations", destinationsAdmin)
  .route("/ledger", ledgerAdmin);
