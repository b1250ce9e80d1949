import { type Context, Hono } from "hono";
import { batchMessages, fanOut, planMessages } from "../delivery/planner.ts";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import { callOf, envelopeOf, NOTIFICATIONS, parseCall, warehouseOf } from "../extend/envelope.ts";
import type { Issue } from "../issues.ts";
import { parseJsonBody, readBody, readJsonBody } from "../json.ts";
import { RULES_KEY } from "../kv-keys.ts";
import { explain, type RouteVerdict } from "../rules/explain.ts";
import { type CompiledRules, compileRules } from "../rules/matcher.ts";
import { validateRules } from "../rules/schema.ts";
import { loadRules, resetRulesCache } from "../rules/store.ts";

/** PUT /admin/rules and POST /admin/rules/validate answer this. */
export interface RulesAnswer {
  status: "stored" | "valid";
  warnings: Issue[];
}

/** POST /admin/route answers this. */
export interface DryRun {
  id: string;
  notifications: {
    index: number;
    action: string;
    warehouse: string | null;
    matched: string[];
    destinations: string[];
    notMatched: RouteVerdict[];
  }[];
  deliveries: { deliveryId: string; destination: string; routes: string[]; notifications: number; bytes: number }[];
  batches: number;
}

const body = (c: Context<AppEnv>) => readJsonBody(c.req.raw, c.var.settings.MAX_BODY_BYTES);

async function getRules(c: Context<AppEnv>): Promise<Response> {
  const text = await c.env.RULES.get(RULES_KEY, "text");
  if (text === null)
    throw new RelayError("rules_not_found", `There is no rules document in KV key "${RULES_KEY}" yet.`);
  return c.body(text, 200, { "Content-Type": "application/json" });
}

async function putRules(c: Context<AppEnv>): Promise<Response> {
  const document = await body(c);
  const validation = validated(document, c.env);
  await c.env.RULES.put(RULES_KEY, JSON.stringify(document, null, 2));
  resetRulesCache();
  return c.json({ status: "stored", warnings: validation.warnings } satisfies RulesAnswer);
}

async function validateRulesDocument(c: Context<AppEnv>): Promise<Response> {
  const validation = validated(await body(c), c.env);
  return c.json({ status: "valid", warnings: validation.warnings } satisfies RulesAnswer);
}

/**
 * Dry run: an envelope in (or `{"envelope": …, "rules": …}` to try rules before storing them); for each
 * notification its warehouse, every route's verdict and the destinations; and the deliveries that would be
 * enqueued. Nothing is enqueued and no signature is needed.
 */
async function dryRun(c: Context<AppEnv>): Promise<Response> {
  const parsed = parseJsonBody(await readBody(c.req.raw, c.var.settings.MAX_BODY_BYTES), NOTIFICATIONS);
  const value = parsed.value as { envelope?: unknown; rules?: unknown; Id?: unknown } | null;
  const wrapped = typeof value === "object" && value !== null && "envelope" in value && !("Id" in value);
  // The envelope as sent, or (given beside rules) re-serialised: the plan's sizes come from its text.
  const call = wrapped
    ? parseCall(new TextEncoder().encode(JSON.stringify(envelopeOf(value.envelope))))
    : callOf(parsed);
  const { envelope } = call;
  const compiled: CompiledRules =
    wrapped && "rules" in value
      ? compileRules(validated(value.rules, c.env).rules)
      : await loadRules(c.env.RULES, c.var.settings.RULES_CACHE_SECONDS);
  const messages = planMessages(call, fanOut(compiled, envelope.Notifications), compiled, Date.now());
  return c.json({
    id: envelope.Id,
    notifications: envelope.Notifications.map((notification, index) => {
      const verdicts = explain(compiled.rules, notification);
      return {
        index,
        action: notification.Action,
        warehouse: warehouseOf(notification) ?? null,
        matched: verdicts.filter((v) => v.matched).map((v) => v.route),
        destinations: [...new Set(compiled.match(notification).flatMap((r) => r.to))],
        notMatched: verdicts.filter((v) => !v.matched),
      };
    }),
    deliveries: messages.map((m) => ({
      deliveryId: m.body.deliveryId,
      destination: m.body.destination,
      routes: m.body.routes,
      notifications: m.body.indices.length,
      bytes: m.bytes,
    })),
    batches: batchMessages(messages).length,
  } satisfies DryRun);
}

function validated(document: unknown, env: object) {
  const validation = validateRules(document, env);
  if (!validation.ok) {
    throw new RelayError("rules_invalid", "The rules document is invalid and was not stored.", {
      issues: validation.issues,
    });
  }
  return validation;
}

/** The rules half of the admin API (docs/admin-api.md) and the routing dry run. */
export const rulesAdmin = new Hono<AppEnv>()
  .get("/rules", getRules)
  .put("/rules", putRules)
  .post("/rules/validate", validateRulesDocument)
  .post("/route", dryRun);
