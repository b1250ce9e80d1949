/**
 * The rules document in KV through `wrangler kv key get|put` (binding RULES, key "rules"): local storage
 * (a `wrangler dev` state folder) by default, the Cloudflare account with `remote`.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { shownPath, withoutColour } from "./output.ts";
import { ROOT, WRANGLER, wranglerEnv } from "./wrangler-dev.ts";

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

/** wrangler failed (not installed, not logged in, no such binding, …): its own words are in `message`. */
export class WranglerError extends Error {
  override name = "WranglerError";
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

/** Runs wrangler with the project's pinned Node; rejects with WranglerError on a non-zero exit. */
function runWrangler(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(WRANGLER, args, {
      cwd: ROOT,
      env: wranglerEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", (error) =>
      reject(new WranglerError(`could not run wrangler (${error.message}); run npm ci first`)),
    );
    child.on("close", (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else
        reject(
          new WranglerError(
            `wrangler ${args.slice(0, 3).join(" ")} failed (exit ${code}):\n${wranglerProblem(stdout + stderr)}`,
          ),
        );
    });
  });
}

/** The lines of wrangler's output that say what went wrong, without banners and colour codes. */
function wranglerProblem(output: string): string {
  const lines = withoutColour(output)
    .split("\n")
    .map((line) => line.trimEnd())
    .filter((line) => line.trim() !== "" && !/^\s*(⛅️ wrangler|─+$)/.test(line));
  return lines
    .slice(-12)
    .map((line) => `  ${line}`)
    .join("\n");
}

/** The rules document's text, or null when the key is empty. */
export async function getRulesText(target: KvTarget): Promise<string | null> {
  const { stdout } = await runWrangler(["kv", "key", "get", RULES_KEY, "--text", ...targetArgs(target)]);
  // wrangler prints this (exit 0) for a missing key; a rules document is JSON, so it cannot be one.
  if (stdout.trim() === "Value not found") return null;
  return stdout.endsWith("\n") ? stdout.slice(0, -1) : stdout;
}

/** Writes the file at `path` as the rules document, byte for byte. */
export async function putRulesFile(path: string, target: KvTarget): Promise<void> {
  await runWrangler(["kv", "key", "put", RULES_KEY, "--path", path, ...targetArgs(target)]);
}
