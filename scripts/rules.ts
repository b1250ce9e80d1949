/**
 * The rules CLI: `npm run rules -- <command>`. Validates rules files with the relay's own schema and
 * moves them in and out of KV with wrangler.
 *
 * Exit codes: 0 ok · 1 the rules are invalid, or differ, or KV holds none · 2 usage, unreadable file or
 * wrangler failure.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Issue } from "../src/issues.ts";
import { canonicalLines, lineDiff, withContext } from "../src/rules/diff.ts";
import { type Rules, secretsOf, validateRules, validateRulesText } from "../src/rules/schema.ts";
import { DEV_VARS, readDevVars } from "./lib/dev-vars.ts";
import { consoleOutput, type Output, shownPath } from "./lib/output.ts";
import { RULES_SCHEMA_FILE, rulesJsonSchemaText } from "./lib/rules-json-schema.ts";
import { ROOT } from "./lib/wrangler-dev.ts";
import { describeTarget, getRulesText, type KvTarget, putRulesFile } from "./lib/wrangler-kv.ts";
import { WranglerError } from "./lib/wrangler-run.ts";

const USAGE = `Usage: npm run rules -- <command> [options]

Commands
  validate <file>          Check a rules file (exit 1 when invalid).
  push <file>              Validate, then store it as the rules document in KV.
  pull                     Print the rules document in KV (or --out <file>).
  diff <file>              Compare a rules file with KV (exit 1 when they differ).
  schema                   Write ${RULES_SCHEMA_FILE} from the rules schema (--check: exit 1 when outdated).

Options
  --url <relay>            Go through the relay's admin API (https://…): push is then validated by the relay,
                           kept in its rules history and on record in its activity log. Token: ADMIN_TOKEN
                           (environment, then .dev.vars); pull and diff also work with only VIEWER_TOKEN.
  --remote                 Use the Cloudflare account's KV instead of local storage (no history, no record).
  --persist-to <dir>       Local state folder (default .wrangler/state, the one npm run dev uses).
  --config <file>          wrangler config (default wrangler.toml).
  --env-file <file>        Warn about secrets the rules name that this dotenv file lacks
                           (local push / validate default: .dev.vars when it exists).
  --out <file>             pull: write to this file; schema: write here instead of ${RULES_SCHEMA_FILE}.

Exit codes: 0 ok, 1 invalid / different / no rules in KV, 2 usage or wrangler failure.`;

class UsageError extends Error {}
/** A file that cannot be read or written: exit 2 without the usage text. */
class FileError extends Error {}

/** Runs one CLI command; returns the exit code. `cwd` is where relative file names start. */
export async function runRulesCli(
  argv: string[],
  io: Output = consoleOutput,
  cwd = process.env.INIT_CWD ?? process.cwd(),
): Promise<number> {
  try {
    return await run(argv, io, cwd);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`error: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    if (error instanceof WranglerError || error instanceof FileError) {
      io.err(`error: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

async function run(argv: string[], io: Output, cwd: string): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        remote: { type: "boolean", default: false },
        url: { type: "string" },
        "persist-to": { type: "string" },
        config: { type: "string" },
        "env-file": { type: "string" },
        out: { type: "string" },
        check: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === "help") {
    io.out(USAGE);
    return 0;
  }
  if (values.remote && values["persist-to"] !== undefined) {
    throw new UsageError("--persist-to is for local storage and cannot be combined with --remote");
  }
  const target: KvTarget = {
    remote: values.remote,
    ...(values["persist-to"] !== undefined && { persistTo: resolve(cwd, values["persist-to"]) }),
    ...(values.config !== undefined && { config: resolve(cwd, values.config) }),
  };
  if (values.url !== undefined && (values.remote || values["persist-to"] !== undefined)) {
    throw new UsageError("--url goes through the relay and cannot be combined with --remote or --persist-to");
  }
  const relay = values.url === undefined ? undefined : relayOf(values.url);
  const envFile = values["env-file"] !== undefined ? resolve(cwd, values["env-file"]) : undefined;
  /** The document in force: through the admin API with --url, else through wrangler's KV. */
  const readRules = () => (relay === undefined ? getRulesText(target) : relay.get());
  const where = relay === undefined ? describeTarget(target) : `the relay at ${relay.url}`;
  const fileArgument = () => {
    if (rest.length !== 1) throw new UsageError(`${command} needs exactly one rules file`);
    return resolve(cwd, rest[0]!);
  };
  const noArguments = () => {
    if (rest.length !== 0) throw new UsageError(`${command} takes no file (got ${rest.join(" ")})`);
  };

  switch (command) {
    case "validate": {
      const file = fileArgument();
      const checked = check(file, secretsEnv(envFile, !values.remote));
      report(io, cwd, file, checked, "");
      return checked.ok ? 0 : 1;
    }
    case "push": {
      const file = fileArgument();
      const checked = check(file, secretsEnv(envFile, !values.remote));
      report(io, cwd, file, checked, "nothing was pushed");
      if (!checked.ok) return 1;
      if (relay !== undefined) {
        const version = await relay.put(readFileSync(file, "utf8"));
        io.out(`Pushed ${shownPath(cwd, file)} to ${where}: version ${version} of its rules history, in force now.`);
        return 0;
      }
      await putRulesFile(file, target);
      io.out(
        `Pushed ${shownPath(cwd, file)} to ${describeTarget(target)}. A running relay uses it within RULES_CACHE_SECONDS (default 30 s). Written around the relay: no history, no record (--url pushes through it).`,
      );
      return 0;
    }
    case "pull": {
      noArguments();
      const text = await readRules();
      if (text === null) {
        io.err(`There is no rules document in ${where}. Store one with: npm run rules -- push <file>`);
        return 1;
      }
      if (values.out !== undefined) {
        const out = resolve(cwd, values.out);
        writeFile(out, text.endsWith("\n") ? text : `${text}\n`);
        io.err(`Wrote the rules document from ${where} to ${shownPath(cwd, out)}.`);
      } else {
        io.out(text);
      }
      const validation = validateRulesText(text);
      if (!validation.ok) {
        io.err(
          `warning: the rules document in KV is invalid, so the relay answers 503 stored_rules_invalid until it is fixed:`,
        );
        for (const issue of validation.issues) io.err(`  ${issue.path}: ${issue.message}`);
        return 1;
      }
      return 0;
    }
    case "diff": {
      const file = fileArgument();
      const local = check(file, undefined);
      if (!local.ok && local.kind === "json") {
        report(io, cwd, file, local, "");
        return 1;
      }
      const text = await readRules();
      const kvDocument = text === null ? null : parseJson(text);
      const before = text === null ? [] : canonicalLines(kvDocument ?? text);
      const after = canonicalLines((local as { document: unknown }).document);
      const changes = lineDiff(before, after);
      if (changes.every((line) => line.startsWith(" "))) {
        io.out(`${shownPath(cwd, file)} and ${where} hold the same rules.`);
        return 0;
      }
      io.out(
        text === null
          ? `${where} holds no rules document; pushing ${shownPath(cwd, file)} would add:`
          : `${where} (-) differs from ${shownPath(cwd, file)} (+):`,
      );
      io.out(`--- KV\n+++ ${shownPath(cwd, file)}`);
      for (const line of withContext(changes, 3)) io.out(line);
      return 1;
    }
    case "schema": {
      noArguments();
      const out = values.out !== undefined ? resolve(cwd, values.out) : resolve(ROOT, RULES_SCHEMA_FILE);
      const text = rulesJsonSchemaText();
      if (values.check) {
        const current = existsSync(out) ? readFileSync(out, "utf8") : null;
        if (current === text) {
          io.out(`${shownPath(cwd, out)} is up to date.`);
          return 0;
        }
        io.err(`${shownPath(cwd, out)} is out of date with src/rules/schema.ts; run: npm run rules -- schema`);
        return 1;
      }
      writeFile(out, text);
      io.out(`Wrote ${shownPath(cwd, out)} from src/rules/schema.ts.`);
      return 0;
    }
    case undefined:
      throw new UsageError("no command given");
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/**
 * The relay's admin API for the rules (--url): reads with ADMIN_TOKEN, or VIEWER_TOKEN when that is all there
 * is (environment first, then .dev.vars); pushes with ADMIN_TOKEN only.
 */
function relayOf(raw: string) {
  const url = raw.replace(/\/+$/, "");
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new UsageError(`--url ${raw} is not an http:// or https:// URL of a relay`);
  }
  const token = (name: "ADMIN_TOKEN" | "VIEWER_TOKEN") => {
    const value = process.env[name] || readDevVars()[name];
    return value === undefined || value === "" ? undefined : { name, value };
  };
  const call = async (method: "GET" | "PUT", use: ReturnType<typeof token>, body?: string) => {
    if (use === undefined) {
      throw new FileError(
        method === "GET"
          ? "no token: set ADMIN_TOKEN or VIEWER_TOKEN (or run npm run dev once to create .dev.vars)"
          : "no ADMIN_TOKEN: pushing changes the rules, which needs the operator's token (VIEWER_TOKEN only reads)",
      );
    }
    let response: Response;
    try {
      response = await fetch(`${url}/admin/rules`, {
        method,
        headers: { authorization: `Bearer ${use.value}`, "content-type": "application/json" },
        ...(body !== undefined && { body }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      throw new FileError(`the relay at ${url} could not be reached (${(error as Error).name})`);
    }
    const text = await response.text();
    if (method === "GET" && response.status === 404) return { status: 404, text: null };
    if (!response.ok) {
      let message = text.slice(0, 300);
      try {
        const json = JSON.parse(text) as { error?: string; message?: string; issues?: Issue[] };
        message = `${json.error}: ${json.message}${(json.issues ?? []).map((i) => `\n  ${i.path}: ${i.message}`).join("")}`;
      } catch {
        // not JSON: shown as it came
      }
      throw new FileError(`the relay at ${url} answered ${response.status} with ${use.name} (${message})`);
    }
    return { status: response.status, text };
  };
  return {
    url,
    get: async () => (await call("GET", token("ADMIN_TOKEN") ?? token("VIEWER_TOKEN"))).text,
    put: async (text: string) => {
      const answer = await call("PUT", token("ADMIN_TOKEN"), text);
      return (JSON.parse(answer.text!) as { version: number }).version;
    },
  };
}

type Checked =
  | { ok: true; document: unknown; rules: Rules; warnings: Issue[] }
  | { ok: false; kind: "json"; issues: Issue[] }
  | { ok: false; kind: "rules"; document: unknown; issues: Issue[] };

/** Reads and validates a rules file; an unreadable file is a usage error (exit 2). */
function check(file: string, env: Record<string, unknown> | undefined): Checked {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FileError(
      code === "ENOENT" ? `${file} does not exist` : `cannot read ${file}: ${(error as Error).message}`,
    );
  }
  let document: unknown;
  try {
    document = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (error) {
    return {
      ok: false,
      kind: "json",
      issues: [{ path: "(file)", message: `is not JSON: ${(error as Error).message}` }],
    };
  }
  const validation = validateRules(document, env);
  if (!validation.ok) return { ok: false, kind: "rules", document, issues: validation.issues };
  return { ok: true, document, rules: validation.rules, warnings: validation.warnings };
}

/** writeFileSync, with a failure (a missing folder, no permission, …) as a FileError naming the path. */
function writeFile(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FileError(
      code === "ENOENT"
        ? `cannot write ${path}: its folder does not exist`
        : `cannot write ${path}: ${(error as Error).message}`,
    );
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The environment to check named secrets against: --env-file, or .dev.vars for local targets. */
function secretsEnv(envFile: string | undefined, local: boolean): Record<string, unknown> | undefined {
  if (envFile !== undefined) {
    if (!existsSync(envFile)) throw new FileError(`--env-file ${envFile} does not exist`);
    return readDevVars(envFile);
  }
  return local && existsSync(DEV_VARS) ? readDevVars(DEV_VARS) : undefined;
}

/** Prints the outcome of check(): the problems (with `refused` saying what was not done), or a summary. */
function report(io: Output, cwd: string, file: string, checked: Checked, refused: string): void {
  const name = shownPath(cwd, file);
  if (!checked.ok) {
    const count = checked.issues.length;
    io.err(`${name}: invalid (${count} problem${count === 1 ? "" : "s"})${refused === "" ? "" : `; ${refused}`}.`);
    for (const issue of checked.issues) io.err(`  ${issue.path}: ${issue.message}`);
    return;
  }
  const { rules, warnings } = checked;
  const destinations = Object.keys(rules.destinations).length;
  const enabled = rules.routes.filter((r) => r.enabled).length;
  io.out(
    `${name}: valid, ${destinations} destination${destinations === 1 ? "" : "s"}, ${rules.routes.length} route${rules.routes.length === 1 ? "" : "s"} (${enabled} enabled).`,
  );
  const secrets = [...new Set(Object.values(rules.destinations).flatMap((d) => secretsOf(d).map((s) => s.name)))];
  if (secrets.length > 0) io.out(`  Worker secrets it names: ${secrets.join(", ")}`);
  for (const warning of warnings) io.err(`  warning ${warning.path}: ${warning.message}`);
}

if (import.meta.main) {
  process.exitCode = await runRulesCli(process.argv.slice(2));
}
