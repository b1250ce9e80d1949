/**
 * The Workers under test, all under `wrangler dev` on loopback with their own state folders: the relay
 * (this repository's wrangler.toml as shipped), the same relay with the settings in RELAYS, and the
 * baseline (bench/baseline/). Every relay gets the same bench rules through the admin API; every consumer
 * delivers to the same loopback receiver, under its own path prefix.
 */
import { join } from "node:path";
import { ROOT, startWranglerDev, type WranglerDev } from "../../scripts/lib/wrangler-dev.ts";
import { SECRETS, benchRules } from "./fixtures.ts";

/** Also the receiver's source name (first path segment of the target's deliveries). */
export type TargetName = "relay" | "relay-warn" | "relay-lean" | "baseline";
export type RelayName = Exclude<TargetName, "baseline">;

/**
 * The relay as shipped and the operator settings that trade its per-call work away, each started with
 * `--var`s over the same wrangler.toml. One place for what each runs with and how the report names it.
 */
export const RELAYS: Record<RelayName, { label: string; vars: Record<string, string>; setting: string }> = {
  relay: { label: "relay", vars: {}, setting: "" },
  "relay-warn": { label: "relay (LOG_LEVEL=warn)", vars: { LOG_LEVEL: "warn" }, setting: "LOG_LEVEL=warn" },
  "relay-lean": {
    label: "relay (LOG_LEVEL=warn, DEDUP_TTL_SECONDS=0)",
    vars: { LOG_LEVEL: "warn", DEDUP_TTL_SECONDS: "0" },
    setting: "LOG_LEVEL=warn, DEDUP_TTL_SECONDS=0",
  },
};
export const RELAY_NAMES = Object.keys(RELAYS) as RelayName[];

/** Every target, in the order the tables list them. */
export const TARGET_NAMES: readonly TargetName[] = [...RELAY_NAMES, "baseline"];

/** How the report names a target. */
export const LABEL: Record<TargetName, string> = {
  ...(Object.fromEntries(RELAY_NAMES.map((name) => [name, RELAYS[name].label])) as Record<RelayName, string>),
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
  const counters = Object.fromEntries(TARGET_NAMES.map((name) => [name, 0])) as Record<TargetName, number>;
  // Counts the relay's JSON log lines in wrangler's output (the `log` helper writes `"event":"…"`).
  const count = (name: TargetName) => (line: string) => {
    if (line.includes('"event":"')) counters[name]++;
  };
  const results = await Promise.allSettled(
    TARGET_NAMES.map((name) =>
      name === "baseline"
        ? startWranglerDev({
            config: join(ROOT, "bench", "baseline", "wrangler.toml"),
            vars: { RECEIVER_URL: `${receiverUrl}/baseline` },
            onOutput: count(name),
          })
        : startWranglerDev({ secrets: SECRETS, vars: RELAYS[name].vars, onOutput: count(name) }),
    ),
  );
  const started = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const stop = () => Promise.all(started.map((dev) => dev.stop())).then(() => {});
  const failed = results.find((result) => result.status === "rejected");
  if (failed !== undefined) {
    await stop();
    throw failed.reason;
  }
  const all = Object.fromEntries(
    TARGET_NAMES.map((name, i) => [name, { name, dev: started[i]!, logLines: () => counters[name] }]),
  ) as Record<TargetName, Target>;
  const targets: Targets = { relay: all.relay.dev, all, stop };
  try {
    for (const name of RELAY_NAMES) await pushRules(all[name].dev.url, benchRules(receiverUrl, name));
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
