/**
 * A plain reference for routing (docs/rules.md), written from the documentation rather than from src/: every route
 * is checked against every notification, one after the other, with no index. The property tests compare
 * the compiled matcher with it; the end-to-end tests use it to know which destination must get what.
 */

export type RefScalar = string | number | boolean | null;
export type RefCondition =
  | RefScalar
  | RefScalar[]
  | { prefix: string }
  | { exists: boolean }
  | { not: RefScalar | RefScalar[] };

export interface RefRoute {
  name: string;
  actions: string[];
  warehouses?: string[];
  where?: Record<string, RefCondition>;
  to: string[];
  enabled?: boolean;
}

export interface RefRules {
  destinations: Record<string, { enabled?: boolean; mode?: "envelope" | "single" }>;
  routes: RefRoute[];
}

export interface RefNotification {
  Action: string;
  Details: Record<string, unknown>;
  [key: string]: unknown;
}

/** `Details.Warehouse`, else `Details.Order.Warehouse`, when it is a string. */
export function refWarehouse(notification: RefNotification): string | undefined {
  const direct = notification.Details.Warehouse;
  if (typeof direct === "string") return direct;
  const order = notification.Details.Order;
  if (order !== null && typeof order === "object" && !Array.isArray(order)) {
    const nested = (order as Record<string, unknown>).Warehouse;
    if (typeof nested === "string") return nested;
  }
  return undefined;
}

function actionMatches(pattern: string, action: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("*")) return action.startsWith(pattern.slice(0, -1));
  return pattern === action;
}

/** Own properties only: a path never reaches into a prototype (`constructor`, `__proto__`, `length` of a string). */
function refValueAt(root: unknown, path: string): unknown {
  let value: unknown = root;
  for (const key of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    if (!Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function holds(condition: RefCondition, value: unknown): boolean {
  if (Array.isArray(condition)) return condition.some((c) => c === value);
  if (condition !== null && typeof condition === "object") {
    if ("prefix" in condition) return typeof value === "string" && value.startsWith(condition.prefix);
    // The relay treats null like absent: `{"exists": true}` needs a value that is neither.
    if ("exists" in condition) return (value !== undefined && value !== null) === condition.exists;
    return !holds(condition.not, value);
  }
  return value === condition;
}

export function refRouteMatches(route: RefRoute, notification: RefNotification): boolean {
  if (route.enabled === false) return false;
  if (!route.actions.some((pattern) => actionMatches(pattern, notification.Action))) return false;
  if (route.warehouses !== undefined) {
    const warehouse = refWarehouse(notification);
    if (warehouse === undefined || !route.warehouses.includes(warehouse)) return false;
  }
  return Object.entries(route.where ?? {}).every(([path, condition]) =>
    holds(condition, refValueAt(notification, path)),
  );
}

/** Names of the routes that match, in document order (routes whose destinations are all disabled deliver nothing and are left out). */
export function refMatch(rules: RefRules, notification: RefNotification): string[] {
  return rules.routes
    .filter((route) => refRouteMatches(route, notification) && refDestinations(rules, route).length > 0)
    .map((route) => route.name);
}

function refDestinations(rules: RefRules, route: RefRoute): string[] {
  return route.to.filter((id) => rules.destinations[id] !== undefined && rules.destinations[id]!.enabled !== false);
}

/** For each destination, the positions of the notifications it must get, ascending, each once. */
export function refFanout(rules: RefRules, notifications: readonly RefNotification[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  notifications.forEach((notification, index) => {
    for (const route of rules.routes) {
      if (!refRouteMatches(route, notification)) continue;
      for (const destination of refDestinations(rules, route)) {
        const list = out.get(destination) ?? [];
        if (!list.includes(index)) list.push(index);
        out.set(destination, list);
      }
    }
  });
  return out;
}
