/** `.dev.vars` (dotenv syntax): the secrets `wrangler dev` gives the Worker locally. */
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./wrangler-dev.ts";

export const DEV_VARS = join(ROOT, ".dev.vars");
export const DEV_VARS_EXAMPLE = join(ROOT, ".dev.vars.example");

export function parseDevVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (match === null) continue;
    let value = match[2]!;
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = JSON.parse(value) as string;
    else if (value.startsWith("'") && value.endsWith("'") && value.length >= 2) value = value.slice(1, -1);
    vars[match[1]!] = value;
  }
  return vars;
}

export function readDevVars(path = DEV_VARS): Record<string, string> {
  return existsSync(path) ? parseDevVars(readFileSync(path, "utf8")) : {};
}

/** Creates `.dev.vars` from `.dev.vars.example` when it is missing; true when it did. */
export function ensureDevVars(path = DEV_VARS, example = DEV_VARS_EXAMPLE): boolean {
  if (existsSync(path)) return false;
  copyFileSync(example, path);
  return true;
}
