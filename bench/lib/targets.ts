/**
 * The Workers under test, all under `wrangler dev` on loopback with their own state folders: the relay
 * (this repository's wrangler.toml as shipped), the baseline (bench/baseline/), both also with no devtools
 * session, and with `--against` the relay as another commit has it. Every relay gets the same bench rules through the admin API; every consumer
 * delivers to the same loopback receiver, under its own path prefix.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT, startWranglerDev, type WranglerDev } from "../../scripts/lib/wrangler-dev.ts";
import { benchRules, RELAY_BASE_VARS, SECRETS } from "./fixtures.ts";
import { relayConfig } from "./snapshot.ts";

/** Also the receiver's source name (first path segment of the target's deliveries). */
export type TargetName = "relay" | "main" | "baseline" | NoDevtoolsName;
/**
 * The relay as shipped and the baseline, each started with no devtools session on its isolate (as in production;
 * `wrangler dev` keeps one and relays every console line through it). Ingress only: the consumers log nothing
 * for a first-time success, so the session costs them nothing.
 */
export type NoDevtoolsName = (typeof NO_DEVTOOLS)[number];
export const NO_DEVTOOLS = ["relay-nodevtools", "baseline-nodevtools"] as const;
export const isNoDevtools = (name: TargetName): name is NoDevtoolsName =>
  (NO_DEVTOOLS as readonly string[]).includes(name);

/**
 * `--against <git ref>`: also run the relay as that commit has it (as shipped there), beside this tree's, so a
 * change is measured side by side with main in one run. The commit is checked out into a temporary worktree.
 */
export const AGAINST: string | undefined = (() => {
  const at = process.argv.indexOf("--against");
  return at < 0 ? undefined : process.argv[at + 1];
})();

/** Every target, in the order the tables list them. */
export const TARGET_NAMES: readonly TargetName[] = [
  "relay",
  ...(AGAINST ? (["main"] as const) : []),
  "baseline",
  ...NO_DEVTOOLS,
];

/** How the report names a target: "relay", "main (<ref>)", "baseline", "relay, no devtools", … */
export const labelOf = (name: TargetName): string =>
  isNoDevtools(name)
    ? `${name === "relay-nodevtools" ? "relay" : "baseline"}, no devtools`
    : name === "main"
      ? `main (${AGAINST})`
      : name;

/** A checkout of `ref` beside this one, sharing its node_modules; remove() deletes it. */
function worktree(ref: string): { dir: string; remove(): void } {
  const dir = join(mkdtempSync(join(tmpdir(), "extend-relay-against-")), "tree");
  execFileSync("git", ["worktree", "add", "--detach", "--quiet", dir, ref], { cwd: ROOT, stdio: "pipe" });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return {
    dir,
    remove() {
      execFileSync("git", ["worktree", "remove", "--force", dir], { cwd: ROOT, stdio: "pipe" });
      rmSync(join(dir, ".."), { recursive: true, force: true });
    },
  };
}

export interface Target {
  name: TargetName;
  dev: WranglerDev;
  /** Structured log lines (`"event":"…"`) this Worker has printed so far. */
  logLines(): number;
}

export interface Targets {
  all: Record<TargetName, Target>;
  stop(): Promise<void>;
}

export async function startTargets(receiverUrl: string): Promise<Targets> {
  const counters = Object.fromEntries(TARGET_NAMES.map((name) => [name, 0])) as Record<TargetName, number>;
  // Counts the relay's JSON log lines in wrangler's output (the `log` helper writes `"event":"…"`).
  const count = (name: TargetName) => (line: string) => {
    if (line.includes('"event":"')) counters[name]++;
  };
  const against = AGAINST === undefined ? undefined : worktree(AGAINST);
  const results = await Promise.allSettled(
    TARGET_NAMES.map((name) =>
      name === "baseline" || name === "baseline-nodevtools"
        ? startWranglerDev({
            config: join(ROOT, "bench", "baseline", "wrangler.toml"),
            vars: { RECEIVER_URL: `${receiverUrl}/${name}` },
            onOutput: count(name),
            devtools: name === "baseline",
          })
        : name === "relay-nodevtools"
          ? startWranglerDev({
              config: relayConfig(),
              secrets: SECRETS,
              vars: RELAY_BASE_VARS,
              onOutput: count(name),
              devtools: false,
            })
          : name === "main"
            ? startWranglerDev({
                config: join(against!.dir, "wrangler.toml"),
                secrets: SECRETS,
                vars: RELAY_BASE_VARS,
                onOutput: count(name),
              })
            : startWranglerDev({
                config: relayConfig(),
                secrets: SECRETS,
                vars: RELAY_BASE_VARS,
                onOutput: count(name),
              }),
    ),
  );
  const started = results.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
  const stop = () =>
    Promise.all(started.map((dev) => dev.stop())).then(() => {
      against?.remove();
    });
  const failed = results.find((result) => result.status === "rejected");
  if (failed !== undefined) {
    await stop();
    throw failed.reason;
  }
  const all = Object.fromEntries(
    TARGET_NAMES.map((name, i) => [name, { name, dev: started[i]!, logLines: () => counters[name] }]),
  ) as Record<TargetName, Target>;
  const targets: Targets = { all, stop };
  try {
    for (const name of TARGET_NAMES.filter((n) => n !== "baseline" && n !== "baseline-nodevtools")) {
      await pushRules(all[name].dev.url, benchRules(receiverUrl, name));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return targets;
}

async function pushRules(relayUrl: string, rules: unknown): Promise<void> {
  const response = await fetch(`${relayUrl}/admin/rules`, {
    method: "PUT",
    signal: AbortSignal.timeout(30_000),
    headers: { Authorization: `Bearer ${SECRETS.ADMIN_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(rules),
  });
  if (!response.ok) throw new Error(`PUT /admin/rules answered ${response.status}: ${await response.text()}`);
}
