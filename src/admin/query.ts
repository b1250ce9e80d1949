import type { Context } from "hono";
import { RelayError } from "../errors.ts";
import { type Cursor, decodeCursor } from "../ledger/paging.ts";

/** Query parameters of the admin API, each checked on its own: a bad one is a 400 naming it. */

const invalid = (name: string, wanted: string, got: string) =>
  new RelayError("invalid_query", `${name} must be ${wanted} (got "${got.slice(0, 100)}").`, { parameter: name });

/** ?limit=: 1 to `max`, `fallback` when absent. */
export function limitParam(c: Context, fallback = 50, max = 100): number {
  const raw = c.req.query("limit");
  if (raw === undefined) return fallback;
  const limit = Number(raw);
  if (!/^\d+$/.test(raw) || limit < 1 || limit > max) throw invalid("limit", `a whole number from 1 to ${max}`, raw);
  return limit;
}

/** ?cursor=: one this API returned. */
export function cursorParam(c: Context): Cursor | undefined {
  const raw = c.req.query("cursor");
  if (raw === undefined) return undefined;
  const cursor = decodeCursor(raw);
  if (cursor === undefined) throw invalid("cursor", "a cursor this API returned", raw);
  return cursor;
}

/** ?since= / ?until=: an ISO-8601 time (or milliseconds since 1970), as milliseconds. */
export function timeParam(c: Context, name: string): number | undefined {
  const raw = c.req.query(name);
  if (raw === undefined) return undefined;
  const ms = /^\d+$/.test(raw) ? Number(raw) : /^\d{4}-\d{2}-\d{2}/.test(raw) ? Date.parse(raw) : Number.NaN;
  if (!Number.isFinite(ms)) throw invalid(name, "an ISO-8601 time such as 2026-12-01T08:00:00Z", raw);
  return ms;
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
  const raw = c.req.query(name);
  if (raw === undefined) return undefined;
  if (raw === "" || raw.length > 200) throw invalid(name, "1 to 200 characters", raw);
  return raw;
}
