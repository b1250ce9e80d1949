/** `.dev.vars` (dotenv syntax): the secrets `wrangler dev` gives the Worker locally. */
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./wrangler-dev.ts";

export const DEV_VARS = join(ROOT, ".dev.vars");
const DEV_VARS_EXAMPLE = join(ROOT, ".dev.vars.example");

/**
 * dotenv 16's line rule, which wrangler reads .dev.vars with: `KEY=value` or `KEY: value`, optional
 * `export `; a value quoted with '', "" or `` may span lines; an unquoted one ends at `#`.
 */
const LINE =
  /^\s*(?:export\s+)?([\w.-]+)(?:\s*=\s*?|:\s+?)(\s*'(?:\\'|[^'])*'|\s*"(?:\\"|[^"])*"|\s*`(?:\\`|[^`])*`|[^#\r\n]+)?\s*(?:#.*)?$/gm;

/**
 * The variables as dotenv 16 (so wrangler) reads them: matching surrounding quotes are stripped; in a
 * double-quoted value `\n` and `\r` become a newline and a carriage return, and nothing else is
 * unescaped; an unquoted value loses a trailing `# comment` and surrounding whitespace. Never throws.
 */
export function parseDevVars(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const match of text.replace(/\r\n?/g, "\n").matchAll(LINE)) {
    let value = (match[2] ?? "").trim();
    const quote = value[0];
    value = value.replace(/^(['"`])([\s\S]*)\1$/gm, "$2");
    if (quote === '"') value = value.replace(/\\n/g, "\n").replace(/\\r/g, "\r");
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
