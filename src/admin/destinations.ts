import { type Context, Hono } from "hono";
import type { AppEnv, Env } from "../env.ts";
import { describe, RelayError } from "../errors.ts";
import type { GateView } from "../gate/client.ts";
import { gateOf } from "../gate/client.ts";
import { listAlertsSent } from "../ledger/alerts.ts";
import { log } from "../log.ts";
import { probeDestination, setPaused } from "../ops/destinations.ts";
import { opContext } from "../ops/record.ts";
import { currentDestinations, destinationOf } from "../rules/destinations.ts";
import type { Destination } from "../rules/schema.ts";
import type { Settings } from "../settings.ts";
import { described, query } from "./openapi.ts";
import type { DestinationState } from "./schemas.ts";

/** One destination as GET /admin/destinations shows it: its limits from the rules and its gate's state. */
export type { DestinationState };

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function stateOf(name: string, d: Destination, view: GateView | undefined): DestinationState {
  return {
    name,
    enabled: d.enabled,
    ...(d.techContact !== undefined && { techContact: d.techContact }),
    ...(d.rateLimit !== undefined && { rateLimit: d.rateLimit }),
    ...(d.concurrency !== undefined && { concurrency: d.concurrency }),
    circuit: d.circuit,
    state: view?.status ?? "unknown",
    ...(view?.pausedBy !== undefined && { pausedBy: view.pausedBy }),
    ...(view?.pausedAt !== undefined && { pausedAt: iso(view.pausedAt) }),
    ...(view?.probeAt !== undefined && { probeAt: iso(view.probeAt) }),
    ...(view?.cooldownSeconds !== undefined && { cooldownSeconds: view.cooldownSeconds }),
    failures: view?.failures ?? 0,
    ...(view?.failingSince !== undefined && { failingSince: iso(view.failingSince) }),
    held: view?.held ?? 0,
    inFlight: view?.inFlight ?? 0,
    ...(view?.lastStatus !== undefined && { lastStatus: view.lastStatus }),
    ...(view?.lastError !== undefined && { lastError: view.lastError }),
    ...(view?.lastFailureAt !== undefined && { lastFailureAt: iso(view.lastFailureAt) }),
    ...(view?.lastSuccessAt !== undefined && { lastSuccessAt: iso(view.lastSuccessAt) }),
  };
}

const destinationsOf = (env: Env, settings: Settings) => currentDestinations(env, settings);

/**
 * Each of the rules' `destinations` with its gate's state (GET /admin/destinations, the console). The caller
 * passes the destinations it read, so that what it shows next to the states is the same rules.
 */
export async function destinationStates(
  env: Env,
  destinations: Record<string, Destination>,
): Promise<DestinationState[]> {
  return Promise.all(Object.entries(destinations).map(async ([name, d]) => stateOf(name, d, await viewOf(env, name))));
}

const notFound = (name: string) => new RelayError("destination_not_found", `The rules have no destination "${name}".`);

async function viewOf(env: Env, name: string): Promise<GateView | undefined> {
  try {
    return await gateOf(env, name).status(name);
  } catch (error) {
    log("warn", "gate_unavailable", { destination: name, error: describe(error) });
    return undefined;
  }
}

/** /admin/destinations (docs/admin-api.md, "Destinations"). */
export const destinationsAdmin = new Hono<AppEnv>()
  .get("/", described("GET /admin/destinations"), async (c) =>
    c.json({ destinations: await destinationStates(c.env, await destinationsOf(c.env, c.var.settings)) }),
  )
  .get("/:name", described("GET /admin/destinations/:name"), async (c) => {
    const name = c.req.param("name");
    const destination = destinationOf(await destinationsOf(c.env, c.var.settings), name);
    if (destination === undefined) throw notFound(name);
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
      items: await listAlertsSent(c.env.LEDGER, { ...(destination !== undefined && { destination }), limit }),
    });
  },
);

async function pauseOrResume(c: Context<AppEnv>, paused: boolean): Promise<Response> {
  const name = c.req.param("name")!;
  const { destination, view } = await setPaused(opContext(c), c.var.settings, name, paused);
  return c.json(stateOf(name, destination, view));
}
