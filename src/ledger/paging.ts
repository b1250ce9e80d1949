import type { Page } from "./views.ts";

/**
 * Pages of the ledger's lists (docs/admin-api.md, "The ledger: calls and deliveries"): newest first, at most `limit` items, and a cursor
 * for the next page when there is one. A cursor is the key of the last item shown (numbers), opaque to clients.
 */

export type Cursor = readonly number[];

export function encodeCursor(cursor: Cursor): string {
  return btoa(JSON.stringify(cursor)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** undefined for a cursor this relay did not write. */
export function decodeCursor(text: string): Cursor | undefined {
  try {
    const value = JSON.parse(atob(text.replaceAll("-", "+").replaceAll("_", "/"))) as unknown;
    if (Array.isArray(value) && value.length > 0 && value.every((n) => Number.isSafeInteger(n))) return value;
  } catch {
    // fall through
  }
  return undefined;
}

/** A query's WHERE, built up one condition at a time with numbered parameters. */
export class Where {
  readonly conditions: string[] = [];
  readonly params: unknown[] = [];

  /** `?n` for `value`, the next parameter. */
  param(value: unknown): string {
    this.params.push(value);
    return `?${this.params.length}`;
  }

  and(condition: string): this {
    this.conditions.push(condition);
    return this;
  }

  toString(): string {
    return this.conditions.length === 0 ? "" : `WHERE ${this.conditions.join(" AND ")}`;
  }
}

/**
 * The page of `rows` (queried with LIMIT `limit` + 1): the first `limit` as items, and the cursor of the last of
 * them when there was one more.
 */
export function pageOf<R, T>(rows: readonly R[], limit: number, item: (row: R) => T, key: (row: R) => Cursor): Page<T> {
  const items = rows.slice(0, limit).map(item);
  const last = rows.length > limit ? rows[limit - 1] : undefined;
  return { items, ...(last !== undefined && { cursor: encodeCursor(key(last)) }) };
}
