/**
 * The rules document in KV through `wrangler kv key get|put` (binding RULES, key "rules"): local storage
 * (a `wrangler dev` state folder) by default, the Cloudflare account with `remote`.
 */
import { join } from "node:path";
import { shownPath } from "./output.ts";
import { ROOT } from "./wrangler-dev.ts";
import { runWrangler, type WranglerRun, wranglerFailure } from "./wrangler-run.ts";

const RULES_BINDING = "RULES";
export const RULES_KEY = "rules";
/** Where `npm run dev` keeps its local KV and Queues, so they survive restarts. */
export const DEV_STATE_DIR = join(ROOT, ".wrangler", "state");

export interface KvTarget {
  /** The Cloudflare account's namespace instead of local storage. */
  remote?: boolean;
  /** Local state folder (`wrangler dev --persist-to`); defaults to DEV_STATE_DIR. Ignored with `remote`. */
  persistTo?: string;
  /** wrangler config; defaults to the relay's wrangler.toml. */
  config?: string;
}

export function describeTarget(target: KvTarget): string {
  return target.remote === true
    ? `remote KV (binding ${RULES_BINDING}, key "${RULES_KEY}")`
    : `local KV in ${shownPath(ROOT, target.persistTo ?? DEV_STATE_DIR)} (binding ${RULES_BINDING}, key "${RULES_KEY}")`;
}

function targetArgs(target: KvTarget): string[] {
  const args = ["--binding", RULES_BINDING, "--config", target.config ?? join(ROOT, "wrangler.toml")];
  if (target.remote === true) args.push("--remote");
  else args.push("--local", "--persist-to", target.persistTo ?? DEV_STATE_DIR);
  return args;
}

/** The rules document's text, or null when the key is empty; WranglerError when wrangler fails. */
export async function getRulesText(target: KvTarget): Promise<string | null> {
  const args = ["kv", "key", "get", RULES_KEY, "--text", ...targetArgs(target)];
  const run = await runWrangler(args);
  const value = kvValue(run);
  if (value === undefined) throw wranglerFailure(`wrangler ${args.slice(0, 3).join(" ")}`, run);
  return value;
}

/**
 * `wrangler kv key get <key> --text`: the value (exit 0). A missing local key prints "Value not found" (exit
 * 0; a rules document is JSON, so it cannot be one); a missing remote key is an error naming the API's 404
 * ("Failed to fetch …/values/rules - 404: Not Found"). Null for a missing key, undefined for any other failure.
 */
export function kvValue(run: WranglerRun): string | null | undefined {
  if (run.code === 0) {
    if (run.stdout.trim() === "Value not found") return null;
    return run.stdout.endsWith("\n") ? run.stdout.slice(0, -1) : run.stdout;
  }
  return /\b404\b:? Not Found/i.test(`${run.stdout}\n${run.stderr}`) ? null : undefined;
}

/** Writes the file at `path` as the rules document, byte for byte; WranglerError when wrangler fails. */
export async function putRulesFile(path: string, target: KvTarget): Promise<void> {
  const args = ["kv", "key", "put", RULES_KEY, "--path", path, ...targetArgs(target)];
  const run = await runWrangler(args);
  if (run.code !== 0) throw wranglerFailure(`wrangler ${args.slice(0, 3).join(" ")}`, run);
}
