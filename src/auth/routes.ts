import type { Context } from "hono";
import { matchedRoutes } from "hono/route";
import type { Action } from "../ledger/activity.ts";
import type { Role } from "./actor.ts";

/**
 * What every route of /admin and /console needs (docs/console.md, "Who may do what"): the one table. `public`
 * needs nobody (the sign-in form, the stylesheet); `viewer` any signed-in actor; `operator` one who may change
 * things, and `action` is what a refused try is recorded as. test/auth/routes.test.ts walks the app's routes
 * and fails for one missing here; a route the table lacks needs an operator (fail closed).
 */
export const ROUTES = {
  // The admin API (docs/admin-api.md)
  "GET /admin/whoami": { role: "viewer" },
  "GET /admin/rules": { role: "viewer" },
  "PUT /admin/rules": { role: "operator", action: "rules.save" },
  "POST /admin/rules/validate": { role: "viewer" },
  "GET /admin/rules/versions": { role: "viewer" },
  "GET /admin/rules/versions/:version": { role: "viewer" },
  "POST /admin/rules/versions/:version/restore": { role: "operator", action: "rules.restore" },
  "POST /admin/route": { role: "viewer" },
  "GET /admin/calls": { role: "viewer" },
  "GET /admin/calls/:id": { role: "viewer" },
  "GET /admin/deliveries": { role: "viewer" },
  "GET /admin/deliveries/:id": { role: "viewer" },
  "POST /admin/deliveries/:id/replay": { role: "operator", action: "delivery.resend" },
  "GET /admin/deliveries/count": { role: "viewer" },
  "POST /admin/deliveries/replay": { role: "operator", action: "deliveries.bulk_replay" },
  "GET /admin/jobs": { role: "viewer" },
  "GET /admin/jobs/:id": { role: "viewer" },
  "GET /admin/stats/hourly": { role: "viewer" },
  "GET /admin/stats": { role: "viewer" },
  "GET /admin/dead-letters": { role: "viewer" },
  "POST /admin/dead-letters/replay": { role: "operator", action: "dead_letters.replay_all" },
  "POST /admin/dead-letters/delete": { role: "operator", action: "dead_letters.bulk_delete" },
  "GET /admin/dead-letters/:id": { role: "viewer" },
  "POST /admin/dead-letters/:id/replay": { role: "operator", action: "dead_letter.replay" },
  "DELETE /admin/dead-letters/:id": { role: "operator", action: "dead_letter.delete" },
  "GET /admin/destinations": { role: "viewer" },
  "GET /admin/destinations/:name": { role: "viewer" },
  "POST /admin/destinations/:name/pause": { role: "operator", action: "destination.pause" },
  "POST /admin/destinations/:name/resume": { role: "operator", action: "destination.resume" },
  "POST /admin/destinations/:name/probe": { role: "operator", action: "destination.probe" },
  "GET /admin/alerts": { role: "viewer" },
  "POST /admin/ledger/redrive": { role: "operator", action: "ledger.redrive" },
  "GET /admin/activity": { role: "viewer" },
  "GET /admin/activity/:id": { role: "viewer" },
  "GET /admin/sessions": { role: "viewer" },
  "POST /admin/sessions/end-all": { role: "operator", action: "sessions.end_all" },
  "GET /admin/openapi.json": { role: "viewer" },
  // The console (docs/console.md)
  "GET /console/style.css": { role: "public" },
  "GET /console/login": { role: "public" },
  "POST /console/login": { role: "public" },
  "POST /console/logout": { role: "viewer" },
  "GET /console": { role: "viewer" },
  "GET /console/calls": { role: "viewer" },
  "GET /console/calls/:id": { role: "viewer" },
  "GET /console/deliveries/:id/resend": { role: "viewer" },
  "POST /console/deliveries/:id/resend": { role: "operator", action: "delivery.resend" },
  "GET /console/deliveries/bulk/replay": { role: "viewer" },
  "POST /console/deliveries/bulk/replay": { role: "operator", action: "deliveries.bulk_replay" },
  "GET /console/deliveries/bulk/delete": { role: "viewer" },
  "POST /console/deliveries/bulk/delete": { role: "operator", action: "dead_letters.bulk_delete" },
  "GET /console/jobs": { role: "viewer" },
  "GET /console/jobs/:id": { role: "viewer" },
  "GET /console/dead-letters": { role: "viewer" },
  "GET /console/dead-letters/replay": { role: "viewer" },
  "POST /console/dead-letters/replay": { role: "operator", action: "dead_letters.replay_all" },
  "GET /console/dead-letters/:id": { role: "viewer" },
  "GET /console/dead-letters/:id/replay": { role: "viewer" },
  "POST /console/dead-letters/:id/replay": { role: "operator", action: "dead_letter.replay" },
  "GET /console/dead-letters/:id/delete": { role: "viewer" },
  "POST /console/dead-letters/:id/delete": { role: "operator", action: "dead_letter.delete" },
  "GET /console/destinations": { role: "viewer" },
  "GET /console/destinations/:name": { role: "viewer" },
  "GET /console/destinations/:name/probe": { role: "viewer" },
  "POST /console/destinations/:name/probe": { role: "operator", action: "destination.probe" },
  "POST /console/destinations/:name/pause": { role: "operator", action: "destination.pause" },
  "POST /console/destinations/:name/resume": { role: "operator", action: "destination.resume" },
  "GET /console/alerts": { role: "viewer" },
  "GET /console/rules": { role: "viewer" },
  "POST /console/rules": { role: "operator" },
  "POST /console/rules/save": { role: "operator", action: "rules.save" },
  "GET /console/rules/versions/:version": { role: "viewer" },
  "POST /console/rules/versions/:version/restore": { role: "operator" },
  "POST /console/rules/versions/:version/restore/confirm": { role: "operator", action: "rules.restore" },
  "GET /console/try": { role: "viewer" },
  "POST /console/try": { role: "viewer" },
  "GET /console/activity": { role: "viewer" },
  "GET /console/activity/:id": { role: "viewer" },
  "GET /console/sessions/end-all": { role: "viewer" },
  "POST /console/sessions/end-all": { role: "operator", action: "sessions.end_all" },
  // Any other console path: a 404 page, for someone signed in.
  "ALL /console/*": { role: "viewer" },
} as const satisfies Record<string, { role: Role | "public"; action?: Action }>;

export type RouteKey = keyof typeof ROUTES;
export interface RouteNeed {
  role: Role | "public";
  action?: Action;
  /** What the route acts on (its :name, :id or :version), for a refused try's record. */
  target?: string;
}

/**
 * What the request's route needs: the first route the router matched that the table names, a wildcard
 * (`ALL …/*`, which middleware shares) only when no other matched. An unknown /admin path needs a viewer
 * (then answers 404); a route the table lacks, an operator.
 */
export function needOf(c: Context): RouteNeed {
  const keys = matchedRoutes(c).map((r) => `${r.method} ${r.path}`);
  const named = keys.filter((k): k is RouteKey => Object.hasOwn(ROUTES, k));
  const key = named.find((k) => !k.endsWith("/*")) ?? named[0];
  if (key !== undefined) {
    const target = targetOf(key.slice(key.indexOf(" ") + 1), new URL(c.req.url).pathname);
    return { ...ROUTES[key], ...(target !== undefined && { target }) };
  }
  const concrete = matchedRoutes(c).some((r) => !r.path.endsWith("*"));
  return { role: concrete ? "operator" : "viewer" };
}

/** The value of the pattern's first parameter in `path` (middleware cannot read the route's own params). */
function targetOf(pattern: string, path: string): string | undefined {
  const parts = path.split("/");
  const at = pattern.split("/").findIndex((segment) => segment.startsWith(":"));
  if (at < 0 || parts[at] === undefined) return undefined;
  try {
    return decodeURIComponent(parts[at]!);
  } catch {
    return parts[at];
  }
}
