import { Hono } from "hono";
import { batchMessages, fanOut, planMessages } from "../delivery/planner.ts";
import { RelayError } from "../errors.ts";
import { envelopeSchema, warehouseOf } from "../extend/envelope.ts";
import { issuesOf } from "../issues.ts";
import { explain } from "../rules/explain.ts";
import { type CompiledRules, compileRules } from "../rules/matcher.ts";
import { validateRules } from "../rules/schema.ts";
import { loadRules, RULES_KEY, resetRulesCache } from "../rules/store.ts";
import { type Env, settingsOf } from "../settings.ts";
import { jsonBody } from "./json-body.ts";

/** The rules half of the admin API (SPEC §5) and the routing dry run. */
export const rulesAdmin = new Hono<{ Bindings: Env }>();

rulesAdmin.get("/rules", async (c) => {
  const text = await c.env.RULES.get(RULES_KEY, "text");
  if (text === null)
    throw new RelayError(404, "rules_not_found", `There is no rules document in KV key "${RULES_KEY}" yet.`);
  return c.body(text, 200, { "Content-Type": "application/json" });
});

rulesAdmin.put("/rules", async (c) => {
  const document = await jsonBody(c);
  const validation = validated(document, c.env);
  await c.env.RULES.put(RULES_KEY, JSON.stringify(document, null, 2));
  resetRulesCache();
  return c.json({ status: "stored", warnings: validation.warnings });
});

rulesAdmin.post("/rules/validate", async (c) => {
  const validation = validated(await jsonBody(c), c.env);
  return c.json({ status: "valid", warnings: validation.warnings });
});

/**
 * Dry run: an envelope in (or `{"envelope": …, "rules": …}` to try rules before storing them); for each
 * notification its warehouse, every route's verdict and the destinations; and the deliveries that would
 * be enqueued. Nothing is enqueued and no signature is needed.
 */
rulesAdmin.post("/route", async (c) => {
  const body = (await jsonBody(c)) as { envelope?: unknown; rules?: unknown; Id?: unknown } | null;
  const wrapped = typeof body === "object" && body !== null && "envelope" in body && !("Id" in body);
  const parsed = envelopeSchema.safeParse(wrapped ? body.envelope : body);
  if (!parsed.success) {
    throw new RelayError(400, "invalid_envelope", "The body is not an Extend Commerce envelope.", {
      issues: issuesOf(parsed.error),
    });
  }
  const envelope = parsed.data;
  let compiled: CompiledRules;
  if (wrapped && "rules" in body) {
    compiled = compileRules(validated(body.rules, c.env).rules);
  } else {
    compiled = await loadRules(c.env.RULES, settingsOf(c.env).rulesCacheSeconds);
  }
  const fanouts = fanOut(compiled, envelope.Notifications);
  const messages = planMessages(envelope, fanouts, compiled, Date.now());
  return c.json({
    id: envelope.Id,
    notifications: envelope.Notifications.map((notification, index) => {
      const verdicts = explain(compiled.rules, notification);
      return {
        index,
        action: notification.Action,
        warehouse: warehouseOf(notification) ?? null,
        matched: verdicts.filter((v) => v.matched).map((v) => v.route),
        destinations: compiled
          .match(notification)
          .flatMap((r) => r.to)
          .filter((d, i, all) => all.indexOf(d) === i),
        notMatched: verdicts.filter((v) => !v.matched),
      };
    }),
    deliveries: messages.map((m) => ({
      deliveryId: m.body.deliveryId,
      destination: m.body.destination,
      routes: m.body.routes,
      notifications: m.body.notifications.length,
      bytes: m.bytes,
    })),
    batches: batchMessages(messages).length,
  });
});

function validated(document: unknown, env: Env) {
  const validation = validateRules(document, env as unknown as Record<string, unknown>);
  if (!validation.ok) {
    throw new RelayError(422, "rules_invalid", "The rules document is invalid and was not stored.", {
      issues: validation.issues,
    });
  }
  return validation;
}
