import { Hono } from "hono";
import type { Env } from "../settings.ts";
import { adminAuth } from "./auth.ts";
import { deadLetters } from "./dead-letters.ts";
import { rulesAdmin } from "./rules.ts";

/** /admin/*: bearer-authenticated operations (SPEC §5). */
export const admin = new Hono<{ Bindings: Env }>();
admin.use("*", adminAuth);
admin.route("/", rulesAdmin);
admin.route("/dead-letters", deadLetters);
