import { type Notification, warehouseOf } from "../extend/envelope.ts";
import type { Coalesce, Condition, Route, Rules } from "./schema.ts";

/**
 * Rules compiled once per document into an index by Action (exact, prefix, `*`) and warehouse, so that
 * matching a notification only looks at routes that could match it: the cost does not grow with routes
 * for other Actions or warehouses.
 */
export interface CompiledRoute {
  /** Position in the document; matches are reported in this order. */
  index: number;
  name: string;
  /** Enabled destinations only. */
  to: readonly string[];
  where: readonly Predicate[];
  coalesce?: Coalesce;
}

export interface Predicate {
  path: string;
  test(notification: Notification): boolean;
}

interface Bucket {
  anyWarehouse: CompiledRoute[];
  byWarehouse: Map<string, CompiledRoute[]>;
}

export interface CompiledRules {
  rules: Rules;
  /** Whether any destination or route coalesces (so that routing need not look for it otherwise). */
  coalesces: boolean;
  /** The hash of the stored document's text (src/rules/save.ts rulesHash), when it came from KV. */
  hash?: string;
  /** The enabled routes that match, in document order. */
  match(notification: Notification): CompiledRoute[];
}

const EMPTY: readonly CompiledRoute[] = [];

export function compileRules(rules: Rules): CompiledRules {
  const exact = new Map<string, Bucket>();
  const prefixes = new Map<string, Bucket>();
  const any: Bucket = { anyWarehouse: [], byWarehouse: new Map() };

  rules.routes.forEach((route, index) => {
    if (!route.enabled) return;
    const to = route.to.filter((id) => rules.destinations[id]?.enabled === true);
    if (to.length === 0) return;
    const compiled: CompiledRoute = {
      index,
      name: route.name,
      to,
      where: compileWhere(route.where),
      ...(route.coalesce !== undefined && { coalesce: route.coalesce }),
    };
    for (const action of new Set(route.actions)) {
      let bucket: Bucket;
      if (action === "*") bucket = any;
      else if (action.endsWith("*")) bucket = bucketIn(prefixes, action.slice(0, -1));
      else bucket = bucketIn(exact, action);
      addToBucket(bucket, compiled, route.warehouses);
    }
  });
  const prefixLengths = [...new Set([...prefixes.keys()].map((p) => p.length))].sort((a, b) => a - b);

  return {
    rules,
    coalesces:
      Object.values(rules.destinations).some((d) => d.coalesce !== undefined) ||
      rules.routes.some((r) => r.coalesce !== undefined),
    match(notification) {
      const action = notification.Action;
      const warehouse = warehouseOf(notification);
      const lists: (readonly CompiledRoute[])[] = [];
      collect(lists, exact.get(action), warehouse);
      for (const length of prefixLengths) {
        if (length > action.length) break;
        collect(lists, prefixes.get(action.slice(0, length)), warehouse);
      }
      collect(lists, any, warehouse);
      const candidates = lists.length === 1 ? lists[0]! : mergeInOrder(lists);
      return candidates.filter((route) => route.where.every((p) => p.test(notification)));
    },
  };
}

function bucketIn(map: Map<string, Bucket>, key: string): Bucket {
  let bucket = map.get(key);
  if (bucket === undefined) {
    bucket = { anyWarehouse: [], byWarehouse: new Map() };
    map.set(key, bucket);
  }
  return bucket;
}

function addToBucket(bucket: Bucket, route: CompiledRoute, warehouses: readonly string[] | undefined): void {
  if (warehouses === undefined) {
    bucket.anyWarehouse.push(route);
    return;
  }
  for (const warehouse of new Set(warehouses)) {
    let list = bucket.byWarehouse.get(warehouse);
    if (list === undefined) bucket.byWarehouse.set(warehouse, (list = []));
    list.push(route);
  }
}

function collect(lists: (readonly CompiledRoute[])[], bucket: Bucket | undefined, warehouse: string | undefined): void {
  if (bucket === undefined) return;
  if (bucket.anyWarehouse.length > 0) lists.push(bucket.anyWarehouse);
  if (warehouse !== undefined) {
    const list = bucket.byWarehouse.get(warehouse);
    if (list !== undefined) lists.push(list);
  }
}

/** Candidates from several buckets, in document order, each route once. */
function mergeInOrder(lists: (readonly CompiledRoute[])[]): readonly CompiledRoute[] {
  if (lists.length === 0) return EMPTY;
  const seen = new Set<CompiledRoute>();
  for (const list of lists) for (const route of list) seen.add(route);
  return [...seen].sort((a, b) => a.index - b.index);
}

/** Whether an Action is what `pattern` names: `*` any, a trailing `*` a prefix, else exactly that one. */
export function actionMatches(pattern: string, action: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("*")) return action.startsWith(pattern.slice(0, -1));
  return pattern === action;
}

/** The value at a dot path such as `Details.Order.Warehouse`, or undefined. */
export function valueAt(root: unknown, path: readonly string[]): unknown {
  let value = root;
  for (const key of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function compileWhere(where: Route["where"]): Predicate[] {
  if (where === undefined) return [];
  return Object.entries(where).map(([path, condition]) => {
    const keys = path.split(".");
    const holds = conditionTest(condition);
    return { path, test: (notification: Notification) => holds(valueAt(notification, keys)) };
  });
}

type Scalar = string | number | boolean | null;

/** How one `where` condition judges the value found at its path (undefined when absent). */
export function conditionTest(condition: Condition): (value: unknown) => boolean {
  if (Array.isArray(condition)) {
    const set = new Set<unknown>(condition);
    return (value) => set.has(value);
  }
  if (condition !== null && typeof condition === "object") {
    if ("prefix" in condition) {
      const prefix = condition.prefix;
      return (value) => typeof value === "string" && value.startsWith(prefix);
    }
    if ("exists" in condition) {
      const wanted = condition.exists;
      return (value) => (value !== undefined && value !== null) === wanted;
    }
    const inner = conditionTest(condition.not as Scalar | Scalar[]);
    return (value) => !inner(value);
  }
  return (value) => value === condition;
}
