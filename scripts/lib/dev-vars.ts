/** `.dev.vars` (dotenv syntax): the secrets `wrangler dev` gives the Worker locally. */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
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

/** The tokens the local loop generates: the relay refuses ones shorter than 32 characters. */
const TOKENS = ["ADMIN_TOKEN", "VIEWER_TOKEN"] as const;
const MIN_TOKEN_LENGTH = 32;

/** `text` with each token line that is missing a value of 32 characters or more given a random one. */
function withLongTokens(text: string): { text: string; replaced: string[] } {
  const vars = parseDevVars(text);
  const replaced: string[] = [];
  let out = text;
  for (const name of TOKENS) {
    if ((vars[name]?.length ?? 0) >= MIN_TOKEN_LENGTH && !/replaced-by-npm-run-dev/.test(vars[name]!)) continue;
    const line = `${name}=${randomBytes(32).toString("hex")}`;
    const pattern = new RegExp(`^\\s*(?:export\\s+)?${name}\\s*[=:].*$`, "m");
    out = pattern.test(out) ? out.replace(pattern, line) : `${out.replace(/\n?$/, "\n")}${line}\n`;
    replaced.push(name);
  }
  return { text: out, replaced };
}

/**
 * Creates `.dev.vars` from `.dev.vars.example` when it is missing, with random tokens; in an existing one, gives
 * a token shorter than 32 characters (an older example's) a random value. Returns what it did, for a line.
 */
export function ensureDevVars(path = DEV_VARS, example = DEV_VARS_EXAMPLE): { created: boolean; replaced: string[] } {
  const created = !existsSync(path);
  const { text, replaced } = withLongTokens(readFileSync(created ? example : path, "utf8"));
  if (created || replaced.length > 0) writeFileSync(path, text, { mode: 0o600 });
  return { created, replaced };
}
