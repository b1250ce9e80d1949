import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import { ACTIONS, type ActivityRow, getActivity, listActivity } from "../ledger/activity.ts";
import { listSessions } from "../ledger/sessions.ts";
import { opContext } from "../ops/record.ts";
import { endAllSessions } from "../ops/sessions.ts";
import { limitParam, oneOfParam, textParam, timeParam } from "./query.ts";

/** GET /admin/activity answers this: newest first, `cursor` for the next page. */
export interface ActivityPage {
  items: ActivityRow[];
  cursor?: string;
}

/** ?cursor= of the activity list: the id of the last row shown, as this API wrote it. */
export function activityCursor(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const match = /^a([1-9]\d{0,15})$/.exec(raw);
  if (match === null) {
    throw new RelayError("invalid_query", `cursor must be a cursor this API returned (got "${raw.slice(0, 100)}").`, {
      parameter: "cursor",
    });
  }
  return Number(match[1]);
}

/** The filters of GET /admin/activity and /console/activity, each checked on its own. */
export function activityFilter(c: Context<AppEnv>, limit: number) {
  return {
    actor: textParam(c, "actor"),
    action: oneOfParam(c, "action", ACTIONS),
    target: textParam(c, "target"),
    since: timeParam(c, "since"),
    until: timeParam(c, "until"),
    limit,
    before: activityCursor(c.req.query("cursor")),
  };
}

export async function activityPage(c: Context<AppEnv>, limit: number): Promise<ActivityPage> {
  const page = await listActivity(c.env.LEDGER, activityFilter(c, limit));
  return { items: page.items, ...(page.next !== undefined && { cursor: `a${page.next}` }) };
}

export async function activityRow(c: Context<AppEnv>): Promise<ActivityRow> {
  const raw = c.req.param("id") ?? "";
  const row = /^[1-9]\d{0,15}$/.test(raw) ? await getActivity(c.env.LEDGER, Number(raw)) : null;
  if (row === null) throw new RelayError("not_found", `The activity log has no row ${raw.slice(0, 40)}.`);
  return row;
}

/** Who is asking, the activity log, and the console's sessions (docs/admin-api.md, "Operators"). */
export const operatorsAdmin = new Hono<AppEnv>()
  .get("/whoami", (c) => c.json(c.var.actor))
  .get("/activity", async (c) => c.json((await activityPage(c, limitParam(c))) satisfies ActivityPage))
  .get("/activity/:id", async (c) => c.json(await activityRow(c)))
  .get("/sessions", async (c) => c.json({ sessions: await listSessions(c.env.LEDGER, Date.now()) }))
  .post("/sessions/end-all", async (c) => c.json(await endAllSessions(opContext(c))));
