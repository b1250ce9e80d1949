import { type Context, Hono } from "hono";
import type { AppEnv, Env } from "../env.ts";
import {
  destinationNotFound,
  destinationStates,
  probeDestination,
  setPaused,
  stateOf,
  viewOf,
} from "../ops/destinations.ts";
import { opContext } from "../ops/record.ts";
import { currentDestinations, destinationOf } from "../rules/destinations.ts";
import type { Settings } from "../settings.ts";
import { described, query } from "./openapi.ts";

const destinationsOf = (env: Env, settings: Settings) => currentDestinations(env, settings);

/** /admin/destinations (docs/admin-api.md, "Destinations"). */
export const destinationsAdmin = new Hono<AppEnv>()
  .get("/", described("GET /admin/destinations"), async (c) =>
    c.json({ destinations: await destinationStates(c.env, await destinationsOf(c.env, c.var.settings)) }),
  )
  .get("/:name", described("GET /admin/destinations/:name"), async (c) => {
    const name = c.req.param("name");
    const destination = destinationOf(await destinationsOf(c.env, c.var.settings), name);
    if (destination === undefined) throw destinationNotFound(name);
    return c.json(stateOf(name, destination, await viewOf(c.env, name)));
  })
  .post("/:name/pause", described("POST /admin/destinations/:name/pause"), (c) => pauseOrResume(c, true))
  .post("/:name/resume", described("POST /admin/destinations/:name/resume"), (c) => pauseOrResume(c, false))
  .post("/:name/probe", described("POST /admin/destinations/:name/probe"), async (c) => {
    const name = c.req.param("name");
    const { destination, view } = await probeDestination(opContext(c), c.var.settings, name);
    return c.json(stateOf(name, destination, view));
  });

/** GET /admin/alerts: what was sent to whom and when (src/ledger/alerts.ts). */
export const alertsAdmin = new Hono<AppEnv>().get(
  "/",
  described("GET /admin/alerts"),
  query("GET /admin/alerts"),
  async (c) => {
    const { destination, limit } = c.req.valid("query");
    return c.json({
      items: await c.var.ledger.listAlertsSent({ ...(destination !== undefined && { destination }), limit }),
    });
  },
);

async function pauseOrResume(c: Context<AppEnv>, paused: boolean): Promise<Response> {
  const name = c.req.param("name")!;
  const { destination, view } = await setPaused(opContext(c), c.var.settings, name, paused);
  return c.json(stateOf(name, destination, view));
}
