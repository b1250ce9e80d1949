/**
 * Running wrangler from the scripts (`npm run deploy`, `npm run rules`): the project's pinned Node first on
 * PATH, its output collected, a failure told in wrangler's own words.
 */
import { spawn } from "node:child_process";
import { withoutColour } from "./output.ts";
import { ROOT, WRANGLER, wranglerEnv } from "./wrangler-dev.ts";

/** Names another wrangler program (tests point it at a fake); unset or empty: the project's own. */
export const WRANGLER_OVERRIDE = "EXTEND_RELAY_WRANGLER";

/** wrangler failed (not installed, not logged in, no such binding, …): its own words are in `message`. */
export class WranglerError extends Error {
  override name = "WranglerError";
}

export interface WranglerRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs wrangler; resolves with whatever it did, rejects only when it cannot be started. */
export function runWrangler(args: string[]): Promise<WranglerRun> {
  const program = process.env[WRANGLER_OVERRIDE] || WRANGLER;
  return new Promise((resolve, reject) => {
    // stdout is a pipe, so wrangler runs non-interactively: it asks nothing and writes nothing back to the config.
    const child = spawn(program, args, { cwd: ROOT, env: wranglerEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", (error) =>
      reject(new WranglerError(`could not run wrangler (${program}: ${error.message}); run npm ci first`)),
    );
    child.on("close", (code) => resolve({ code, stdout: withoutColour(stdout), stderr: withoutColour(stderr) }));
  });
}

/** A failed run as a WranglerError: what was run, its exit code and the lines of its output that say why. */
export function wranglerFailure(shown: string, run: WranglerRun, advice = ""): WranglerError {
  const lines = `${run.stdout}\n${run.stderr}`
    .split("\n")
    .map((line) => line.trimEnd())
    .filter((line) => line.trim() !== "" && !/^\s*(⛅️ wrangler|─+$)/.test(line));
  const problem = lines
    .slice(-12)
    .map((line) => `  ${line}`)
    .join("\n");
  return new WranglerError(`${shown} failed (exit ${run.code}):\n${problem}${advice === "" ? "" : `\n${advice}`}`);
}
