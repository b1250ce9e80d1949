import { type Notification, warehouseOf } from "../extend/envelope.ts";
import { actionMatches, conditionTest, valueAt } from "./matcher.ts";
import type { Route, Rules } from "./schema.ts";

/** For the dry run: every route's verdict on one notification, with the reason when it did not match. */
export interface RouteVerdict {
  route: string;
  matched: boolean;
  /** action | warehouse | where | disabled | destinations_disabled */
  reason?: string;
  /** With reason "where": the dot path of the first condition that did not hold. */
  condition?: string;
  detail?: string;
}

/**
 * The slow, plain walk over every route (the compiled matcher indexes the same logic). Used by
 * POST /admin/route to say why a route did not match.
 */
export function explain(rules: Rules, notification: Notification): RouteVerdict[] {
  const warehouse = warehouseOf(notification);
  return rules.routes.map((route) => verdict(rules, route, notification, warehouse));
}

function verdict(rules: Rules, route: Route, notification: Notification, warehouse: string | undefined): RouteVerdict {
  const no = (reason: string, detail: string): RouteVerdict => ({ route: route.name, matched: false, reason, detail });
  if (!route.enabled) return no("disabled", "the route is disabled");
  if (!route.actions.some((pattern) => actionMatches(pattern, notification.Action))) {
    return no("action", `${notification.Action} is not one of ${route.actions.join(", ")}`);
  }
  if (route.warehouses !== undefined && (warehouse === undefined || !route.warehouses.includes(warehouse))) {
    return no(
      "warehouse",
      warehouse === undefined
        ? "the notification has no warehouse"
        : `warehouse ${warehouse} is not one of ${route.warehouses.join(", ")}`,
    );
  }
  for (const [path, condition] of Object.entries(route.where ?? {})) {
    const value = valueAt(notification, path.split("."));
    if (!conditionTest(condition)(value)) {
      return {
        ...no(
          "where",
          `${path} is ${value === undefined ? "absent" : JSON.stringify(value)}, wanted ${JSON.stringify(condition)}`,
        ),
        condition: path,
      };
    }
  }
  if (route.to.every((id) => rules.destinations[id]?.enabled !== true)) {
    return no("destinations_disabled", "every destination of the route is disabled");
  }
  return { route: route.name, matched: true };
}
