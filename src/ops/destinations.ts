import { describe, RelayError } from "../errors.ts";
import type { GateView } from "../gate/client.ts";
import { gateOf, remember } from "../gate/client.ts";
import { log } from "../log.ts";
import { currentDestinations, destinationOf } from "../rules/destinations.ts";
import type { Destination } from "../rules/schema.ts";
import type { Settings } from "../settings.ts";
import { type OpContext, recorded } from "./record.ts";

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
  if (destination === undefined) {
    throw new RelayError("destination_not_found", `The rules have no destination "${name}".`);
  }
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
  if (destination === undefined) {
    throw new RelayError("destination_not_found", `The rules have no destination "${name}".`);
  }
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
