import { claimsNeeded, fanOut, placeholderClaim, planMessages } from "../delivery/planner.ts";
import {
  type Call,
  callOf,
  envelopeOf,
  markedCall,
  NOTIFICATIONS,
  parseCall,
  warehouseOf,
} from "../extend/envelope.ts";
import { parseJsonBody } from "../json.ts";
import { batchMessages } from "../queues/limits.ts";
import { explain, type RouteVerdict } from "../rules/explain.ts";
import { type CompiledRules, compileRules } from "../rules/matcher.ts";
import { checkedRules } from "../rules/save.ts";
import { loadRules } from "../rules/store.ts";
import { hostPolicy, type Settings } from "../settings.ts";

/**
 * The routing dry run, shared by POST /admin/route and the console's "Try a payload": how the door would
 * route a call, with every route's verdict, and the deliveries it would enqueue. Nothing is enqueued and no
 * signature is needed. (It plans with the delivery planner, so it lives here rather than in rules/.)
 */

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
    /** Too large for a queue message: the door would keep it in R2 and its messages would carry its claim. */
    keptInR2?: true;
  }[];
  deliveries: { deliveryId: string; destination: string; routes: string[]; notifications: number; bytes: number }[];
  batches: number;
}

/**
 * The dry run of a body: an envelope, or `{"envelope": …, "rules": …}` to try rules before storing them
 * (without `rules`, the stored ones). 400 for a body that is not an envelope, 422 for invalid `rules`.
 */
export async function dryRunBody(body: Uint8Array, env: { RULES: KVNamespace }, settings: Settings): Promise<DryRun> {
  const parsed = parseJsonBody(body, NOTIFICATIONS);
  const value = parsed.value as { envelope?: unknown; rules?: unknown; Id?: unknown } | null;
  const wrapped = typeof value === "object" && value !== null && "envelope" in value && !("Id" in value);
  // The envelope as sent, or (given beside rules) re-serialised: the plan's sizes come from its text.
  const call = wrapped
    ? parseCall(new TextEncoder().encode(JSON.stringify(envelopeOf(value.envelope))))
    : callOf(parsed);
  const compiled: CompiledRules =
    wrapped && "rules" in value
      ? compileRules(checkedRules(value.rules, env, hostPolicy(settings)).rules)
      : await loadRules(env.RULES, settings.RULES_CACHE_SECONDS);
  return dryRun(call, compiled);
}

/** How `compiled` routes `call`: per notification its verdicts and destinations, then the planned deliveries. */
export function dryRun(call: Call, compiled: CompiledRules, now = Date.now()): DryRun {
  const { envelope } = call;
  const fanouts = fanOut(compiled, envelope.Notifications);
  // Notifications too large for a queue message would be kept in R2 (nothing is kept here).
  const claimed = claimsNeeded(call, fanouts, compiled);
  const claims = claimed.map((index) => placeholderClaim(call, index));
  const messages = planMessages(markedCall(call, claimed), fanouts, compiled, now, claims);
  return {
    id: envelope.Id,
    notifications: envelope.Notifications.map((notification, index) => {
      const verdicts = explain(compiled.rules, notification);
      return {
        index,
        action: notification.Action,
        warehouse: warehouseOf(notification) ?? null,
        ...(claimed.includes(index) && { keptInR2: true }),
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
  };
}
