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
