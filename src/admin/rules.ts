import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import type { Issue } from "../issues.ts";
import { readBody, readJsonBody } from "../json.ts";
import { RULES_KEY } from "../kv-keys.ts";
import { checkedRules, saveRules } from "../rules/save.ts";
import { dryRunBody } from "./dry-run.ts";

export type { DryRun } from "./dry-run.ts";

/** PUT /admin/rules and POST /admin/rules/validate answer this. */
export interface RulesAnswer {
  status: "stored" | "valid";
  warnings: Issue[];
}

const body = (c: Context<AppEnv>) => readJsonBody(c.req.raw, c.var.settings.MAX_BODY_BYTES);

async function getRules(c: Context<AppEnv>): Promise<Response> {
  const text = await c.env.RULES.get(RULES_KEY, "text");
  if (text === null)
    throw new RelayError("rules_not_found", `There is no rules document in KV key "${RULES_KEY}" yet.`);
  return c.body(text, 200, { "Content-Type": "application/json" });
}

/** Stores the document (src/rules/save.ts, as the console does), keeping the one it replaces for undo. */
async function putRules(c: Context<AppEnv>): Promise<Response> {
  const { warnings } = await saveRules(c.env, await body(c));
  return c.json({ status: "stored", warnings } satisfies RulesAnswer);
}

async function validateRulesDocument(c: Context<AppEnv>): Promise<Response> {
  const { warnings } = checkedRules(await body(c), c.env);
  return c.json({ status: "valid", warnings } satisfies RulesAnswer);
}

/** The dry run (src/admin/dry-run.ts, shared with the console's "Try a payload"). */
async function dryRun(c: Context<AppEnv>): Promise<Response> {
  const bytes = await readBody(c.req.raw, c.var.settings.MAX_BODY_BYTES);
  return c.json(await dryRunBody(bytes, c.env, c.var.settings));
}

/** The rules half of the admin API (docs/admin-api.md) and the routing dry run. */
export const rulesAdmin = new Hono<AppEnv>()
  .get("/rules", getRules)
  .put("/rules", putRules)
  .post("/rules/validate", validateRulesDocument)
  .post("/route", dryRun);
