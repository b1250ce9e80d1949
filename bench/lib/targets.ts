/**
 * The Workers under test, all under `wrangler dev` on loopback with their own state folders: the relay
 * (this repository's wrangler.toml, LOG_LEVEL as shipped: info), the same relay started with
 * `--var LOG_LEVEL:warn`, and the baseline (bench/baseline/). Both relays get the same bench rules through
 * the admin API; every consumer delivers to the same loopback receiver, under its own path prefix.
 */
import { join } from "node:path";
import { ROOT, startWranglerDev, type WranglerDev } from "../../scripts/lib/wrangler-dev.ts";
import { SECRETS, benchRules } from "./fixtures.ts";

/** Also the receiver's source name (first path segment of the target's deliveries). */
export type TargetName = "relay" | "relay-warn" | "baseline";

/** Every target, in the order the tables list them. */
export const TARGET_NAMES: readonly TargetName[] = ["relay", "relay-warn", "baseline"];

/** How the report names a target. */
export const LABEL: Record<TargetName, string> = {
  relay: "relay",
  "relay-warn": "relay (LOG_LEVEL=warn)",
  baseline: "baseline",
};

export interface Target {
  name: TargetName;
  dev: WranglerDev;
  /** Structured log lines (`"event":"…"`) this Worker has printed so far. */
  logLines(): number;
}

export interface Targets {
  relay: WranglerDev;
  all: Record<TargetName, Target>;
  stop(): Promise<void>;
}

export async function startTargets(receiverUrl: string): Promise<Targets> {
  const counters: Record<TargetName, number> = { relay: 0, "relay-warn": 0, baseline: 0 };
  // Counts the relay's JSON log lines in wrangler's output (the `log` helper writes `"event":"…"`).
  const count = (name: TargetName) => (line: string) => {
    if (line.includes('"event":"')) counters[name]++;
  };
  const results = await Promise.allSettled([
    startWranglerDev({ secrets: SECRETS, onOutput: count("relay") }),
    startWranglerDev({ secrets: SECRETS, vars: { LOG_LEVEL: "warn" }, onOutput: count("relay-warn") }),
    startWranglerDev({
      config: join(ROOT, "bench", "baseline", "wrangler.toml"),
      vars: { RECEIVER_URL: `${receiverUrl}/baseline` },
      onOutput: count("baseline"),
    }),
  ]);
  const started = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const stop = () => Promise.all(started.map((dev) => dev.stop())).then(() => {});
  const failed = results.find((result) => result.status === "rejected");
  if (failed !== undefined) {
    await stop();
    throw failed.reason;
  }
  const [relay, relayWarn, baseline] = started as [WranglerDev, WranglerDev, WranglerDev];
  const target = (name: TargetName, dev: WranglerDev): Target => ({ name, dev, logLines: () => counters[name] });
  const targets: Targets = {
    relay,
    all: { relay: target("relay", relay), "relay-warn": target("relay-warn", relayWarn), baseline: target("baseline", baseline) },
    stop,
  };
  try {
    await pushRules(relay.url, benchRules(receiverUrl, "relay"));
    await pushRules(relayWarn.url, benchRules(receiverUrl, "relay-warn"));
  } catch (error) {
    await stop();
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
