import type { DestinationState } from "../admin/schemas.ts";
import type { Env } from "../env.ts";
import { describe, RelayError } from "../errors.ts";
import type { GateView } from "../gate/client.ts";
import { gateOf, remember } from "../gate/client.ts";
import { log } from "../log.ts";
import { currentDestinations, destinationOf } from "../rules/destinations.ts";
import type { Destination } from "../rules/schema.ts";
import type { Settings } from "../settings.ts";
import { type OpContext, recorded } from "./record.ts";

/** One destination as GET /admin/destinations and the console show it: its limits from the rules, its gate's state. */
export type { DestinationState };

export const destinationNotFound = (name: string) =>
  new RelayError("destination_not_found", `The rules have no destination "${name}".`);

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

export async function viewOf(env: Env, name: string): Promise<GateView | undefined> {
  try {
    return await gateOf(env, name).status(name);
  } catch (error) {
    log("warn", "gate_unavailable", { destination: name, error: describe(error) });
    return undefined;
  }
}

/**
 * Pauses or resumes a destination of the rules by hand (`destination.pause` / `destination.resume`); 404 for
 * one the rules do not have. The gate is told who paused it and the activity row, so its alert can say so.
 */
export async function setPaused(
  op: OpContext,
  settings: Settings,
  name: string,
  paused: boolean,
): Promise<{ destination: Destination; view: GateView }> {
  const destination = destinationOf(await currentDestinations(op.env, settings), name);
  if (destination === undefined) throw destinationNotFound(name);
  const change = { action: paused ? ("destination.pause" as const) : ("destination.resume" as const), target: name };
  return recorded(op, change, async (activity) => {
    let view: GateView;
    try {
      const gate = gateOf(op.env, name);
      view = paused ? await gate.pause(name, { actor: op.actor.id, activity }) : await gate.resume(name);
    } catch (error) {
      log("error", "gate_unavailable", { destination: name, error: describe(error) });
      throw new RelayError(
        "gate_unavailable",
        `The gate of "${name}" could not be reached; nothing changed. Try again.`,
      );
    }
    remember(name, view);
    return { destination, view };
  });
}

/**
 * Probes a destination its circuit breaker paused now, rather than at the end of its cool-down
 * (`destination.probe`): its oldest held delivery goes; if it succeeds the rest follow. 409 `not_paused_by_circuit`
 * for one that is not so paused.
 */
export async function probeDestination(
  op: OpContext,
  settings: Settings,
  name: string,
): Promise<{ destination: Destination; view: GateView }> {
  const destination = destinationOf(await currentDestinations(op.env, settings), name);
  if (destination === undefined) throw destinationNotFound(name);
  return recorded(op, { action: "destination.probe", target: name }, async () => {
    let view: GateView & { probed: boolean };
    try {
      view = await gateOf(op.env, name).probe(name);
    } catch (error) {
      log("error", "gate_unavailable", { destination: name, error: describe(error) });
      throw new RelayError(
        "gate_unavailable",
        `The gate of "${name}" could not be reached; nothing changed. Try again.`,
      );
    }
    if (!view.probed) {
      throw new RelayError(
        "not_paused_by_circuit",
        `"${name}" is not paused by its circuit breaker, so it has no probe to send; ${view.status === "paused" ? "resume it instead" : "it is already sending"}.`,
      );
    }
    const { probed: _, ...shown } = view;
    remember(name, shown);
    return { destination, view: shown };
  });
}
