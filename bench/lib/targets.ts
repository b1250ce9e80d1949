/**
 * The two Workers under test, both under `wrangler dev` on loopback with their own state folders:
 * the relay (this repository's wrangler.toml, bench rules pushed through the admin API) and the
 * baseline (bench/baseline/). Both consumers deliver to the same loopback receiver.
 */
import { join } from "node:path";
import { ROOT, startWranglerDev, type WranglerDev } from "../../scripts/lib/wrangler-dev.ts";
import { SECRETS, benchRules } from "./fixtures.ts";

export interface Targets {
  relay: WranglerDev;
  baseline: WranglerDev;
  stop(): Promise<void>;
}

export async function startTargets(receiverUrl: string): Promise<Targets> {
  const [relay, baseline] = await Promise.all([
    startWranglerDev({ secrets: SECRETS }),
    startWranglerDev({ config: join(ROOT, "bench", "baseline", "wrangler.toml"), vars: { RECEIVER_URL: `${receiverUrl}/baseline` } }),
  ]);
  const targets = { relay, baseline, stop: () => Promise.all([relay.stop(), baseline.stop()]).then(() => {}) };
  try {
    await pushRules(relay.url, benchRules(receiverUrl));
  } catch (error) {
    await targets.stop();
    throw error;
  }
  return targets;
}

export async function pushRules(relayUrl: string, rules: unknown): Promise<void> {
  const response = await fetch(`${relayUrl}/admin/rules`, {
    method: "PUT",
    headers: { Authorization: `Bearer ${SECRETS.ADMIN_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(rules),
  });
  if (!response.ok) throw new Error(`PUT /admin/rules answered ${response.status}: ${await response.text()}`);
}
