import type { Settings } from "../settings.ts";
import type { Destination } from "./schema.ts";
import { loadRules } from "./store.ts";

/** A destination of the rules by id (own keys only: never `__proto__` or `constructor`). */
export function destinationOf(destinations: Record<string, Destination>, id: string): Destination | undefined {
  return Object.hasOwn(destinations, id) ? destinations[id] : undefined;
}

/** The destinations of the current rules (cached per isolate, as the door reads them). */
export async function currentDestinations(
  env: { RULES: KVNamespace },
  settings: Pick<Settings, "RULES_CACHE_SECONDS">,
): Promise<Record<string, Destination>> {
  return (await loadRules(env.RULES, settings.RULES_CACHE_SECONDS)).rules.destinations;
}

/** The destinations of the current rules, with the hash of the document they are in. */
export async function currentRules(
  env: { RULES: KVNamespace },
  settings: Pick<Settings, "RULES_CACHE_SECONDS">,
): Promise<{ destinations: Record<string, Destination>; hash?: string }> {
  const compiled = await loadRules(env.RULES, settings.RULES_CACHE_SECONDS);
  return { destinations: compiled.rules.destinations, ...(compiled.hash !== undefined && { hash: compiled.hash }) };
}
