import type { Context } from "hono";
import * as z from "zod";
import { RelayError } from "../errors.ts";
import { ACTIONS } from "../ledger/activity-names.ts";
import { type Cursor, decodeCursor } from "../ledger/paging.ts";
import { CALL_STATUSES, DELIVERY_STATUSES } from "../ledger/views.ts";

/**
 * Query parameters of the admin API as Zod schemas, each checked on its own: a bad one is a 400 `invalid_query`
 * naming it, whose message says what it must be (every refusal of a parameter's schema has that as its message).
 * The routes validate their query with these (src/admin/api.ts), and the console's pages read theirs with the
 * helpers below. Free of Workers types.
 */

const invalid = (name: string, wanted: string, got: string) =>
  new RelayError("invalid_query", `${name} must be ${wanted} (got "${got.slice(0, 100)}").`, { parameter: name });

/** A text parameter read by `read`, which gives undefined for one it refuses. */
const checked = <T>(wanted: string, read: (raw: string) => T | undefined) =>
  z.string({ error: wanted }).transform((raw, ctx): T => {
    const value = read(raw);
    if (value === undefined) ctx.addIssue({ code: "custom", message: wanted, input: raw });
    return value as T;
  });

/** ?limit=: 1 to `max`, `fallback` when absent. */
export const limitQuery = (max = 100, fallback = 50) => {
  const wanted = `a whole number from 1 to ${max}`;
  return checked(wanted, (raw) =>
    /^\d+$/.test(raw) && Number(raw) >= 1 && Number(raw) <= max ? Number(raw) : undefined,
  )
    .optional()
    .transform((limit) => limit ?? fallback)
    .meta({ description: `Page size, 1 to ${max} (default ${fallback}).` });
};

/** ?cursor= of the ledger's lists: one this API returned. */
export const cursorQuery = checked<Cursor>("a cursor this API returned", decodeCursor)
  .optional()
  .meta({ description: "The `cursor` of the previous page, for the next one." });

/** ?cursor= of the activity log: the id of the last row shown, as this API wrote it. */
export const activityCursorQuery = checked("a cursor this API returned", (raw) => {
  const match = /^a([1-9]\d{0,15})$/.exec(raw);
  return match === null ? undefined : Number(match[1]);
})
  .optional()
  .meta({ description: "The `cursor` of the previous page, for the next one." });

/** A rules version (?cursor= of the versions list, and :version). */
export const versionNumber = checked("a version number", (raw) =>
  /^[1-9]\d{0,9}$/.test(raw) ? Number(raw) : undefined,
);

/** ?since= / ?until=: an ISO-8601 time (or milliseconds since 1970), as milliseconds. */
export const timeQuery = (description: string) =>
  checked("an ISO-8601 time such as 2026-12-01T08:00:00Z", (raw) => {
    const ms = /^\d+$/.test(raw) ? Number(raw) : /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : Number.NaN;
    return Number.isFinite(ms) ? ms : undefined;
  })
    .optional()
    .meta({ description: `${description}: ISO-8601 or milliseconds since 1970.` });

/** ?name=: one of `values`. */
export const oneOfQuery = <const T extends readonly [string, ...string[]]>(values: T, description: string) =>
  z
    .enum(values, { error: `one of ${values.join(", ")}` })
    .optional()
    .meta({ description });

/** ?name=: a non-empty text of at most 200 characters, matched exactly. */
export const textQuery = (description: string) => {
  const wanted = "1 to 200 characters";
  return z
    .string({ error: wanted })
    .min(1, { error: wanted })
    .max(200, { error: wanted })
    .optional()
    .meta({ description });
};

const since = timeQuery("Accepted from (inclusive)");
const until = timeQuery("Accepted until (exclusive)");

/** The query of each list (its keys in the order they are checked, which says which one a 400 names). */
export const QUERIES = {
  calls: z.object({
    key: textQuery("A notification's [business key](ledger.md#the-business-key)."),
    action: textQuery("A notification's Action."),
    destination: textQuery("A delivery's destination."),
    status: oneOfQuery(CALL_STATUSES, "The worst of its deliveries' statuses."),
    since,
    until,
    limit: limitQuery(),
    cursor: cursorQuery,
  }),
  deliveries: z.object({
    destination: textQuery("Its destination."),
    status: oneOfQuery(DELIVERY_STATUSES, "Its status."),
    since,
    until,
    limit: limitQuery(),
    cursor: cursorQuery,
  }),
  stats: z.object({ since: timeQuery("Calls accepted from (default: 24 hours ago)") }),
  deadLetters: z.object({
    destination: textQuery("Its destination."),
    limit: limitQuery(),
    cursor: cursorQuery,
  }),
  bulkReplay: z.object({ destination: textQuery("Only this destination's.") }),
  count: z.object({
    destination: textQuery("Its destination."),
    status: oneOfQuery(DELIVERY_STATUSES, "Its status."),
    since,
    until,
  }),
  hourly: z.object({
    destination: textQuery("Only this destination (default: every one with figures)."),
    range: z
      .enum(["24h", "7d"], { error: "one of 24h, 7d" })
      .optional()
      .transform((range) => range ?? "24h")
      .meta({ description: "The last 24 hours (default) or 7 days." }),
  }),
  alerts: z.object({
    destination: textQuery("Only this destination's."),
    limit: limitQuery(),
  }),
  jobs: z.object({ limit: limitQuery(100, 20) }),
  versions: z.object({
    limit: limitQuery(),
    cursor: versionNumber.optional().meta({ description: "The `cursor` of the previous page, for the next one." }),
  }),
  activity: z.object({
    actor: textQuery("An email, `admin-token`, …"),
    action: oneOfQuery(ACTIONS, "What was done."),
    target: textQuery("A destination, a delivery id, a version."),
    since: timeQuery("From (inclusive)"),
    until: timeQuery("Until (exclusive)"),
    limit: limitQuery(),
    cursor: activityCursorQuery,
  }),
};

/** The path parameters checked by a schema (the others are any text, and an unknown one is a 404). */
export const PATHS = {
  version: z.object({ version: versionNumber.meta({ description: "A version number." }) }),
};

/** A problem a schema found, as Standard Schema reports it. */
interface Issue {
  readonly message: string;
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined;
}

/**
 * The routes' validators' hook: a query (or path) they refuse is a 400 `invalid_query` naming the first parameter
 * refused, as the helpers below answer (never hono-openapi's own body).
 */
export function refused(result: { success: boolean; data: unknown; error?: readonly Issue[] }): void {
  const issue = result.error?.[0];
  if (result.success || issue === undefined) return;
  const [segment] = issue.path ?? [];
  const name = String(typeof segment === "object" ? segment.key : segment);
  const raw = (result.data as Record<string, unknown> | undefined)?.[name];
  throw invalid(name, issue.message, Array.isArray(raw) ? raw.join(",") : String(raw ?? ""));
}

/** `values` (a request's query) checked by `schema`, or a 400 `invalid_query` naming the first parameter refused. */
export function checkedQuery<S extends z.ZodType>(schema: S, values: Record<string, unknown>): z.output<S> {
  const result = schema.safeParse(values);
  if (!result.success) refused({ success: false, error: result.error.issues, data: values });
  return result.data as z.output<S>;
}

/** The value of ?name= checked by `schema`, or a 400 `invalid_query` naming it. */
function param<T>(c: Context, name: string, schema: z.ZodType<T>): T {
  const raw = c.req.query(name);
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  throw invalid(name, result.error.issues[0]?.message ?? "valid", raw ?? "");
}

const LIMIT = limitQuery();
const TIME = timeQuery("A time");
const TEXT = textQuery("A text");

/** ?limit=: 1 to `max`, `fallback` when absent. */
export function limitParam(c: Context, fallback = 50, max = 100): number {
  return param(c, "limit", fallback === 50 && max === 100 ? LIMIT : limitQuery(max, fallback));
}

/** ?cursor=: one this API returned. */
export function cursorParam(c: Context): Cursor | undefined {
  return param(c, "cursor", cursorQuery);
}

/** ?since= / ?until=: an ISO-8601 time (or milliseconds since 1970), as milliseconds. */
export function timeParam(c: Context, name: string): number | undefined {
  return param(c, name, TIME);
}

/** ?name=: one of `values`. */
export function oneOfParam<T extends string>(c: Context, name: string, values: readonly T[]): T | undefined {
  const raw = c.req.query(name);
  if (raw === undefined) return undefined;
  if (!(values as readonly string[]).includes(raw)) throw invalid(name, `one of ${values.join(", ")}`, raw);
  return raw as T;
}

/** ?name=: a non-empty text of at most 200 characters. */
export function textParam(c: Context, name: string): string | undefined {
  return param(c, name, TEXT);
}
