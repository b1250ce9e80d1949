/**
 * What `npm run deploy` (scripts/deploy.ts) needs from wrangler beside running it (scripts/lib/wrangler-run.ts):
 * showing the command a person could paste, and reading what it prints. Each reader follows the output of the
 * wrangler in package.json (4.156, read in node_modules/wrangler/wrangler-dist/cli.js); test/scripts/fake-wrangler
 * prints the same.
 */
import { shellWord } from "./output.ts";

/** `npx wrangler …` as a person would type it (arguments with spaces or quotes single-quoted). */
export function shownCommand(args: string[]): string {
  return ["npx", "wrangler", ...args].map(shellWord).join(" ");
}

/** The JSON value printed from the first line that starts with `start` on, or undefined. */
function jsonFrom(stdout: string, start: "{" | "["): unknown {
  const at = stdout.search(start === "{" ? /^\{/m : /^\[/m);
  if (at < 0) return undefined;
  try {
    return JSON.parse(stdout.slice(at));
  } catch {
    return undefined;
  }
}

export type Login =
  | { loggedIn: false }
  | { loggedIn: true; authType?: string; email?: string; accounts: { id: string; name: string }[] };

/**
 * `wrangler whoami --json`: `{"loggedIn":false}` (exit 1) or `{"loggedIn":true,"authType",…,"email",
 * "accounts":[{id,name}],…}` pretty-printed (exit 0). Undefined when the output is neither.
 */
export function parseWhoami(stdout: string): Login | undefined {
  const value = jsonFrom(stdout, "{") as { loggedIn?: unknown; accounts?: unknown } | undefined;
  if (value === undefined || typeof value.loggedIn !== "boolean") return undefined;
  if (!value.loggedIn) return { loggedIn: false };
  const accounts = Array.isArray(value.accounts)
    ? value.accounts.filter((a): a is { id: string; name: string } => typeof a?.id === "string")
    : [];
  const { authType, email } = value as { authType?: unknown; email?: unknown };
  return {
    loggedIn: true,
    accounts,
    ...(typeof authType === "string" && { authType }),
    ...(typeof email === "string" && { email }),
  };
}

/**
 * The queue names in `wrangler queues list`: a cli-table3 table (│ id │ name │ created_on │ … │, a
 * `jurisdiction` column when any queue has one), nothing at all when the account has no queue. It is one
 * page of the API's list, so a queue it does not show may still exist (see scripts/deploy.ts).
 */
export function parseQueueList(output: string): string[] {
  const rows = output
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.startsWith("│"))
    .map((line) =>
      line
        .split("│")
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  const column = rows[0]?.indexOf("name") ?? -1;
  if (column < 0) return [];
  return rows
    .slice(1)
    .map((row) => row[column] ?? "")
    .filter((name) => name !== "");
}

export interface Deployed {
  /** The workers.dev URL, from the targets wrangler lists under "Deployed <name> triggers". */
  url?: string;
  versionId?: string;
  /** What automatic provisioning created, e.g. `KV Namespace "extend-relay-rules"`. */
  created: string[];
}

/**
 * `wrangler deploy`: "Uploaded <name> (… sec)", "Deployed <name> triggers (… sec)" followed by one indented
 * line per target ("  https://<name>.<subdomain>.workers.dev", "  schedule: …", "  Producer for …"), then
 * "Current Version ID: …". Provisioning prints `🌀 Creating new KV Namespace "<name>"...` per resource.
 */
export function parseDeploy(output: string): Deployed {
  const url = /^\s+(https:\/\/[^\s/]+\.workers\.dev)\/?\s*$/m.exec(output)?.[1];
  const versionId = /^Current Version ID:\s*(\S+)/m.exec(output)?.[1];
  const created = [...output.matchAll(/Creating new (.+?) "([^"]+)"/g)].map((m) => `${m[1]} "${m[2]}"`);
  return { created, ...(url !== undefined && { url }), ...(versionId !== undefined && { versionId }) };
}

/** `wrangler secret list --format json`: `[{"name": …, "type": "secret_text"}, …]`. Undefined if not that. */
export function parseSecretList(stdout: string): string[] | undefined {
  const value = jsonFrom(stdout, "[");
  if (!Array.isArray(value)) return undefined;
  return value.flatMap((s: { name?: unknown }) => (typeof s?.name === "string" ? [s.name] : []));
}

/**
 * A field of the binding `binding` in a wrangler config (TOML `[[table]]` tables, or the flat objects of a JSON
 * config), or undefined.
 */
function bindingField(configText: string, table: string, binding: string, field: string): string | undefined {
  for (const block of configText.split(/^\s*(?=\[)/m)) {
    if (!block.startsWith(`[[${table}]]`)) continue;
    const value = (key: string) => new RegExp(`^\\s*${key}\\s*=\\s*["']([^"']*)["']`, "m").exec(block)?.[1];
    if (value("binding") === binding) return value(field);
  }
  for (const object of configText.match(/\{[^{}]*\}/g) ?? []) {
    const value = (key: string) => new RegExp(`"${key}"\\s*:\\s*"([^"]*)"`).exec(object)?.[1];
    if (value("binding") === binding && value(field) !== undefined) return value(field);
  }
  return undefined;
}

/** The `database_name` of the D1 binding `binding`; `wrangler d1 execute` takes the binding as well. */
export const d1DatabaseName = (configText: string, binding: string) =>
  bindingField(configText, "d1_databases", binding, "database_name");

/** The `bucket_name` of the R2 binding `binding`. */
export const r2BucketName = (configText: string, binding: string) =>
  bindingField(configText, "r2_buckets", binding, "bucket_name");

/**
 * A var of wrangler.toml's [vars] as its text (a "…" or '…' string), or undefined when it is not there.
 * Enough for the relay's own config, which writes each var on one line.
 */
export function tomlVar(configText: string, name: string): string | undefined {
  const table = configText.split(/^\s*(?=\[)/m).find((t) => /^\[vars\]/.test(t));
  if (table === undefined) return undefined;
  const match = new RegExp(`^\\s*${name}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|'([^']*)')`, "m").exec(table);
  if (match === null) return undefined;
  return match[2] ?? JSON.parse(`"${match[1]}"`);
}

/** Whether wrangler.toml turns the workers.dev URL off (`workers_dev = false`); it is on by default. */
export function workersDevOn(configText: string): boolean {
  const top = configText.split(/^\s*\[/m)[0] ?? "";
  return !/^\s*workers_dev\s*=\s*false\b/m.test(top);
}
