import type { DryRun } from "../admin/schemas.ts";
import { bodyFor } from "../delivery/body.ts";
import { claimsNeeded, placeholderClaim, planMessages, route } from "../delivery/planner.ts";
import { TransformFailed } from "../delivery/transform.ts";
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
import type { Delivery } from "../queues/delivery.ts";
import { batchMessages } from "../queues/limits.ts";
import { explain } from "../rules/explain.ts";
import { type CompiledRules, compileRules } from "../rules/matcher.ts";
import { checkedRules } from "../rules/save.ts";
import type { Destination } from "../rules/schema.ts";
import { loadRules } from "../rules/store.ts";
import { hostPolicy, type Settings } from "../settings.ts";

/**
 * The routing dry run, shared by POST /admin/route and the console's "Try a payload": how the door would
 * route a call, with every route's verdict, and the deliveries it would enqueue. Nothing is enqueued and no
 * signature is needed. It routes with the door's own route() and plans with its planner; each notification's
 * fields are named as the trace names them (`routes`, `destinations`).
 */

/** POST /admin/route answers this (its schema is in src/admin/schemas.ts). */
export type { DryRun };

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

/**
 * How `compiled` routes `call`: per notification its verdicts and destinations, then the planned deliveries, each
 * with how it is shaped (coalesced, ordered, and a transform's output).
 */
export async function dryRun(call: Call, compiled: CompiledRules, now = Date.now()): Promise<DryRun> {
  const { envelope } = call;
  const routing = route(compiled, envelope.Notifications);
  const fanouts = routing.fanouts;
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
        routes: routing.matches[index]!.routes,
        destinations: routing.matches[index]!.destinations,
        notMatched: verdicts.filter((v) => !v.matched),
      };
    }),
    deliveries: await Promise.all(
      messages.map(async ({ body, bytes }) => {
        const destination = compiled.rules.destinations[body.destination];
        return {
          deliveryId: body.deliveryId,
          destination: body.destination,
          routes: body.routes,
          notifications: body.indices.length,
          bytes,
          ...(body.coalesce !== undefined && {
            coalesced: {
              key: JSON.parse(body.coalesce.key) as [string, string, string | null],
              windowSeconds: body.coalesce.window,
            },
          }),
          ...(destination?.order === "key" && body.keys !== undefined && { keys: body.keys }),
          ...(destination?.transform !== undefined && { transformed: await transformedBody(body, destination) }),
        };
      }),
    ),
    batches: batchMessages(messages).length,
  };
}

/** What a transform makes of a planned delivery; a claimed notification is not read back in a dry run. */
async function transformedBody(
  message: Delivery,
  destination: Destination,
): Promise<{ output: unknown } | { error: string }> {
  if (message.claims !== undefined && message.claims.length > 0) {
    return { error: "too large for a queue message: it would be kept in R2, and is not transformed in a dry run" };
  }
  try {
    return { output: JSON.parse(await bodyFor(message, 1, undefined, destination)) as unknown };
  } catch (error) {
    if (error instanceof TransformFailed) return { error: error.message };
    throw error;
  }
}
