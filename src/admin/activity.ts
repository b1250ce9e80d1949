import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import type { ActivityFilter, ActivityRow } from "../ledger/activity.ts";
import { opContext } from "../ops/record.ts";
import { endAllSessions } from "../ops/sessions.ts";
import { described, query } from "./openapi.ts";
import { checkedQuery, QUERIES } from "./query.ts";
import type { ActivityPage, ActivityRowView } from "./schemas.ts";

export type { ActivityPage } from "./schemas.ts";

// The activity log's actions as src/ledger/activity.ts has them are the ones the API's schemas name.

/**
 * The filters of GET /admin/activity and /console/activity, each checked on its own (a bad one is a 400
 * `invalid_query` naming it); `limit` is the caller's.
 */
export function activityFilter(c: Context<AppEnv>, limit: number): ActivityFilter {
  const { cursor, ...filter } = checkedQuery(FILTER, c.req.query());
  return { ...filter, limit, before: cursor };
}

const FILTER = QUERIES.activity.omit({ limit: true });

async function pageOf(c: Context<AppEnv>, filter: ActivityFilter): Promise<ActivityPage> {
  const page = await c.var.ledger.listActivity(filter);
  return { items: page.items, ...(page.next !== undefined && { cursor: `a${page.next}` }) };
}

export function activityPage(c: Context<AppEnv>, limit: number): Promise<ActivityPage> {
  return pageOf(c, activityFilter(c, limit));
}

export async function activityRow(c: Context<AppEnv>): Promise<ActivityRow> {
  const raw = c.req.param("id") ?? "";
  const row = /^[1-9]\d{0,15}$/.test(raw) ? await c.var.ledger.getActivity(Number(raw)) : null;
  if (row === null) throw new RelayError("not_found", `The activity log has no row ${raw.slice(0, 40)}.`);
  return row;
}

/** Who is asking, the activity log, and the console's sessions (docs/admin-api.md, "Operators"). */
export const operatorsAdmin = new Hono<AppEnv>()
  .get("/whoami", described("GET /admin/whoami"), (c) => c.json(c.var.actor))
  .get("/activity", described("GET /admin/activity"), query("GET /admin/activity"), async (c) => {
    const { cursor, ...filter } = c.req.valid("query");
    return c.json((await pageOf(c, { ...filter, before: cursor })) satisfies ActivityPage);
  })
  .get("/activity/:id", described("GET /admin/activity/:id"), async (c) =>
    c.json((await activityRow(c)) satisfies ActivityRowView),
  )
  .get("/sessions", described("GET /admin/sessions"), async (c) =>
    c.json({ sessions: await c.var.ledger.listSessions(Date.now()) }),
  )
  .post("/sessions/end-all", described("POST /admin/sessions/end-all"), async (c) =>
    c.json(await endAllSessions(opContext(c))),
  );
