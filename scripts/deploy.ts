/**
 * `npm run deploy`: takes a logged-in wrangler from nothing to a running relay, and changes nothing that is
 * already in place: login check, the queues (only missing ones are created), `wrangler deploy` (which
 * provisions the KV namespace and the D1 database), the ledger schema (idempotent), a report of the secrets
 * still unset, and the Callback URL for Extend Commerce. `--dry-run` prints every command and runs none.
 *
 * Exit codes: 0 deployed (unset secrets are a to-do list, not a failure) or dry run · 2 usage, not logged in,
 * or a wrangler failure (its own words are shown; fix it and run again: every step is safe to repeat).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { schemaScript } from "../src/ledger/migrations.ts";
import { QUEUES } from "../src/queues/names.ts";
import { CLAIMS_PREFIX, TEXTS_PREFIX } from "../src/r2-keys.ts";
import { sendProblem } from "../src/rules/hosts.ts";
import { secretsOf, validateRulesText } from "../src/rules/schema.ts";
import type { RelaySecret } from "../src/secrets.ts";
import { parseSettings } from "../src/settings.ts";
import {
  d1DatabaseName,
  parseDeploy,
  parseQueueList,
  parseSecretList,
  parseWhoami,
  r2BucketName,
  shownCommand,
  tomlVar,
  workersDevOn,
} from "./lib/deploy-wrangler.ts";
import { consoleOutput, type Output, shownPath } from "./lib/output.ts";
import { ROOT } from "./lib/wrangler-dev.ts";
import { kvValue, RULES_KEY } from "./lib/wrangler-kv.ts";
import { runWrangler, WranglerError, wranglerFailure } from "./lib/wrangler-run.ts";

const USAGE = `Usage: npm run deploy -- [options]

Deploys the relay with wrangler (log in first: npx wrangler login), step by step:
  1 check the login   2 create the missing queues   3 wrangler deploy (provisions KV, D1 and R2)
  4 apply the ledger schema and R2's lifecycle rule   5 report unset secrets   6 print the Callback URL
Running it again changes nothing that is already in place.

Options
  --dry-run         Print every step's command and run none of them.
  --config <file>   wrangler config (default wrangler.toml).
  -h, --help        This text.

Exit codes: 0 deployed (or dry run), 2 usage, not logged in or wrangler failure.`;

/** 14 days, the longest Queues keeps a message (docs/operations.md, "Deploying"). */
const RETENTION_SECONDS = 1_209_600;
/** The free plan's longest retention: used when the plan refuses the longer one. */
const FREE_PLAN_RETENTION_SECONDS = 86_400;
const QUEUE_NAMES: string[] = Object.values(QUEUES);
const LEDGER_BINDING = "LEDGER";
const PAYLOADS_BINDING = "PAYLOADS";
/** What the lifecycle rule keeps beyond the longest the ledger keeps anything, before R2 deletes it itself. */
const LIFECYCLE_SLACK_DAYS = 7;
const RULES_BINDING = "RULES";
const STEPS = 6;

/** The relay's own secrets that deploy reports on; EXTEND_WEBHOOK_SECRET_PREVIOUS is only for a rotation. */
const REPORTED_SECRETS: { name: RelaySecret; unset: string }[] = [
  { name: "EXTEND_WEBHOOK_SECRET", unset: "required: the relay refuses every call until it is set" },
  {
    name: "ADMIN_TOKEN",
    unset:
      "optional with Cloudflare Access: the admin API's operator bearer and the console's token sign-in (at least 32 characters: openssl rand -hex 32)",
  },
  { name: "VIEWER_TOKEN", unset: "optional: a read-only bearer and sign-in (at least 32 characters)" },
  { name: "ALERT_WEBHOOK", unset: "optional: alerts go only to the destinations' techContact and alertWebhook" },
];

class UsageError extends Error {}
/** Not logged in: exit 2 with the login hint alone. */
class LoginError extends Error {}

export async function runDeploy(
  argv: string[],
  io: Output = consoleOutput,
  cwd = process.env.INIT_CWD ?? process.cwd(),
): Promise<number> {
  try {
    return await run(argv, io, cwd);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`error: ${error.message} (npm run deploy -- --help lists the options)`);
      return 2;
    }
    if (error instanceof LoginError || error instanceof WranglerError) {
      io.err(`error: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

async function run(argv: string[], io: Output, cwd: string): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        "dry-run": { type: "boolean", default: false },
        config: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const config = values.config !== undefined ? resolve(cwd, values.config) : join(ROOT, "wrangler.toml");
  if (!existsSync(config)) throw new UsageError(`wrangler config ${config} does not exist`);
  const shownConfig = shownPath(cwd, config);
  const ownConfig = config === join(ROOT, "wrangler.toml");
  const configText = readFileSync(config, "utf8");
  const database = d1DatabaseName(configText, LEDGER_BINDING) ?? LEDGER_BINDING;
  const bucket = r2BucketName(configText, PAYLOADS_BINDING) ?? "extend-relay-payloads";
  const days = lifecycleDays(configText);
  // The vars as the Worker will parse them (one schema: src/settings.ts).
  const vars = parseSettings(
    Object.fromEntries(
      ["SECRET_HOSTS", "DESTINATION_HOSTS", "ACCESS_TEAM_DOMAIN", "ACCESS_AUD", "OPERATORS", "DEV_CLOCK"].map(
        (name) => [name, tomlVar(configText, name)],
      ),
    ),
  );
  if ((tomlVar(configText, "DEV_CLOCK") ?? "").trim() !== "") {
    throw new UsageError(
      `${shownConfig} sets DEV_CLOCK, the test-only clock; a deployed relay must not have it: set DEV_CLOCK = "" and run again`,
    );
  }
  const schema = schemaScript();
  const statements = schema.split(";\n").filter((s) => s.trim() !== "").length;

  /** One wrangler command: what is run (absolute config path) and what is shown (as given). */
  const command = (...args: string[]) => ({
    args: [...args, "--config", config],
    shown: shownCommand([...args, "--config", shownConfig]),
  });
  const whoami = command("whoami", "--json");
  const list = command("queues", "list");
  const create = (name: string, retention: number) =>
    command("queues", "create", name, "--message-retention-period-secs", String(retention));
  const info = (name: string) => command("queues", "info", name);
  const deploy = command("deploy");
  const execute = (file: string) => command("d1", "execute", database, "--remote", "--file", file, "--yes");
  const lifecycle = (file: string) => command("r2", "bucket", "lifecycle", "set", bucket, "--file", file, "--force");
  const secretList = command("secret", "list", "--format", "json");
  const rulesGet = command("kv", "key", "get", RULES_KEY, "--binding", RULES_BINDING, "--remote", "--text");
  /** What a person runs by hand: with --config only when it is not the relay's own wrangler.toml. */
  const configTail = ownConfig ? "" : ` --config ${shownConfig}`;
  const step = (n: number, label: string, text: string) => io.out(`[${n}/${STEPS}] ${label}: ${text}`);

  if (values["dry-run"]) {
    io.out(`Dry run: the steps of npm run deploy with ${shownConfig}, each with its command; nothing is run.`);
    step(1, "login", `${whoami.shown}   (stops with exit 2 unless wrangler is logged in)`);
    step(2, "queues", `${list.shown}   then, for each queue it does not list:`);
    for (const name of QUEUE_NAMES) io.out(`  ${create(name, RETENTION_SECONDS).shown}`);
    step(
      3,
      "deploy",
      `${deploy.shown}   (the first deploy provisions the KV namespace, the D1 database and the R2 bucket)`,
    );
    step(
      4,
      "schema",
      `${execute(join(tmpdir(), "extend-relay-schema-XXXXXX", "ledger-schema.sql")).shown}   (a temporary file: the ledger schema, ${statements} statements from src/ledger/schema.ts, all IF NOT EXISTS)`,
    );
    step(
      4,
      "payloads",
      `${lifecycle(join(tmpdir(), "extend-relay-lifecycle-XXXXXX", "lifecycle.json")).shown}   (R2 deletes objects older than ${days} days: a backstop, the ledger deletes them with its rows)`,
    );
    step(5, "secrets", `${secretList.shown}`);
    step(
      5,
      "secrets",
      `${rulesGet.shown}   (then lists the unset ones among ${REPORTED_SECRETS.map((s) => s.name).join(", ")} and the secrets the rules name)`,
    );
    step(
      6,
      "webhook",
      "prints the Callback URL for Extend Commerce (<workers.dev URL from step 3>/webhook) and /healthz",
    );
    for (const line of accessLines("<workers.dev URL from step 3>", configText, vars.settings, shownConfig))
      io.out(line);
    io.out("Dry run: nothing was run.");
    return 0;
  }

  // 1. Login.
  const login = await runWrangler(whoami.args);
  const user = parseWhoami(login.stdout);
  if (user?.loggedIn === false) {
    throw new LoginError(
      "wrangler is not logged in: run npx wrangler login (or set CLOUDFLARE_API_TOKEN), then npm run deploy again",
    );
  }
  if (login.code !== 0 || user === undefined) throw wranglerFailure(whoami.shown, login);
  const accounts = user.accounts.map((a) => a.name);
  step(
    1,
    "login",
    `logged in${user.email !== undefined ? ` as ${user.email}` : ""}${user.authType !== undefined ? ` (${user.authType})` : ""}${accounts.length > 0 ? `, account${accounts.length === 1 ? "" : "s"} ${accounts.join(", ")}` : ""}`,
  );

  // 2. Queues: the missing ones are created, existing ones left alone (their retention too).
  const listed = await runWrangler(list.args);
  if (listed.code !== 0) throw wranglerFailure(list.shown, listed);
  const existing = new Set(parseQueueList(listed.stdout));
  for (const name of QUEUE_NAMES) {
    if (existing.has(name)) {
      step(2, "queues", `${name} exists`);
      continue;
    }
    const first = create(name, RETENTION_SECONDS);
    const created = await runWrangler(first.args);
    if (created.code === 0) {
      step(2, "queues", `${name} created (messages kept up to 14 days)`);
      continue;
    }
    // queues list shows one page of the account's queues: a queue beyond it exists and cannot be created again.
    const known = await runWrangler(info(name).args);
    if (known.code === 0) {
      step(2, "queues", `${name} exists`);
      continue;
    }
    // wrangler's words for the API's "invalid queue settings" (code 100128): the free plan keeps 24 hours at most.
    if (/queue settings are invalid/i.test(`${created.stdout}\n${created.stderr}`)) {
      const shorter = create(name, FREE_PLAN_RETENTION_SECONDS);
      const retried = await runWrangler(shorter.args);
      if (retried.code !== 0) throw wranglerFailure(shorter.shown, retried);
      step(2, "queues", `${name} created (messages kept up to 24 hours: the plan refused 14 days)`);
      continue;
    }
    throw wranglerFailure(first.shown, created);
  }

  // 3. Deploy: wrangler provisions RULES (KV), LEDGER (D1) and PAYLOADS (R2) itself when they are not bound yet.
  const deployed = await runWrangler(deploy.args);
  if (deployed.code !== 0) {
    throw wranglerFailure(
      deploy.shown,
      deployed,
      "Fix that and run npm run deploy again (every step is safe to repeat).",
    );
  }
  const result = parseDeploy(`${deployed.stdout}\n${deployed.stderr}`);
  const details = [
    ...(result.versionId !== undefined ? [`version ${result.versionId}`] : []),
    result.created.length > 0 ? `created ${result.created.join(", ")}` : "KV, D1 and R2 already provisioned",
  ];
  step(
    3,
    "deploy",
    `${result.url !== undefined ? `deployed to ${result.url}` : "deployed (wrangler showed no workers.dev URL)"} (${details.join("; ")})`,
  );

  // 4. The ledger schema, also created by the Worker on first use; every statement is IF NOT EXISTS.
  const dir = mkdtempSync(join(tmpdir(), "extend-relay-schema-"));
  try {
    const file = join(dir, "ledger-schema.sql");
    writeFileSync(file, schema);
    const applied = await runWrangler(execute(file).args);
    if (applied.code !== 0) throw wranglerFailure(execute(file).shown, applied);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  step(4, "schema", `applied the ledger schema to D1 ${database} (${statements} statements, all IF NOT EXISTS)`);

  // 4. R2's lifecycle rule, replacing the bucket's (so the same each time): a backstop for what retention deletes.
  const rulesDir = mkdtempSync(join(tmpdir(), "extend-relay-lifecycle-"));
  try {
    const file = join(rulesDir, "lifecycle.json");
    writeFileSync(file, JSON.stringify(lifecycleRules(days), null, 2));
    const applied = await runWrangler(lifecycle(file).args);
    if (applied.code !== 0) throw wranglerFailure(lifecycle(file).shown, applied);
  } finally {
    rmSync(rulesDir, { recursive: true, force: true });
  }
  step(
    4,
    "payloads",
    `R2 bucket ${bucket} deletes objects older than ${days} days (a backstop: the ledger deletes them with its rows)`,
  );

  // 5. Secrets: the relay's own and the ones the rules in remote KV name.
  const listedSecrets = await runWrangler(secretList.args);
  const set = listedSecrets.code === 0 ? parseSecretList(listedSecrets.stdout) : undefined;
  if (set === undefined) throw wranglerFailure(secretList.shown, listedSecrets);
  const rulesRun = await runWrangler(rulesGet.args);
  const rulesText = kvValue(rulesRun);
  if (rulesText === undefined) throw wranglerFailure(rulesGet.shown, rulesRun);
  const wanted = REPORTED_SECRETS.map((s) => ({ name: s.name as string, unset: s.unset }));
  if (rulesText === null) {
    step(
      5,
      "rules",
      `remote KV holds no rules yet, so every call is accepted with 0 deliveries; push yours with: npm run rules -- push rules.json --remote${configTail}`,
    );
  } else {
    const validation = validateRulesText(rulesText);
    if (!validation.ok) {
      const issue = validation.issues[0]!;
      step(
        5,
        "rules",
        `the rules in remote KV are invalid (${issue.path}: ${issue.message}), so the relay answers 503 stored_rules_invalid; see npm run rules -- pull --remote${configTail}`,
      );
    } else {
      const destinations = Object.entries(validation.rules.destinations);
      for (const [id, destination] of destinations) {
        for (const { path, name } of secretsOf(destination)) {
          if (!wanted.some((w) => w.name === name))
            wanted.push({ name, unset: `named by the rules: destinations.${id}.${path}` });
        }
      }
      // Where the rules send each secret must be allowed by SECRET_HOSTS, or those deliveries dead-letter.
      const policy = {
        secretHosts: vars.settings.SECRET_HOSTS ?? new Map(),
        destinationHosts: vars.settings.DESTINATION_HOSTS,
      };
      const needed = new Map<string, Set<string>>();
      for (const [, destination] of destinations) {
        if (typeof destination.url !== "string") continue;
        const host = new URL(destination.url).hostname;
        for (const { name } of secretsOf(destination)) {
          if (sendProblem(policy, host, name) !== undefined)
            needed.set(name, new Set([...(needed.get(name) ?? []), host]));
        }
      }
      if (needed.size > 0) {
        const bound = Object.fromEntries(
          [
            ...policy.secretHosts,
            ...[...needed].map(([name, hosts]) => [name, [...(policy.secretHosts.get(name) ?? []), ...hosts]] as const),
          ].map(([name, hosts]) => [name, hosts.length === 1 ? hosts[0] : hosts]),
        );
        step(
          5,
          "rules",
          `SECRET_HOSTS does not let ${[...needed.keys()].join(", ")} go where the rules send them, so those deliveries dead-letter (host_not_allowed). In ${shownConfig} [vars]:`,
        );
        io.out(`  SECRET_HOSTS = '${JSON.stringify(bound)}'`);
      }
      const named = wanted.slice(REPORTED_SECRETS.length).map((w) => w.name);
      step(
        5,
        "rules",
        `remote KV holds rules with ${destinations.length} destination${destinations.length === 1 ? "" : "s"}${named.length > 0 ? `, naming the secrets ${named.join(", ")}` : " and no secrets"}`,
      );
    }
  }
  const unset = wanted.filter((w) => !set.includes(w.name));
  const isSet = wanted.filter((w) => set.includes(w.name)).map((w) => w.name);
  if (unset.length === 0) {
    step(5, "secrets", `all set (${isSet.join(", ")})`);
  } else {
    step(
      5,
      "secrets",
      `${isSet.length > 0 ? `set: ${isSet.join(", ")}; ` : ""}unset: ${unset.map((w) => w.name).join(", ")}. Put each (wrangler asks for the value):`,
    );
    const commands = unset.map((w) => `npx wrangler secret put ${w.name}${configTail}`);
    const width = Math.max(...commands.map((c) => c.length));
    unset.forEach((w, i) => {
      io.out(`  ${commands[i]!.padEnd(width)}   # ${w.unset}`);
    });
  }

  // 6. What to paste into Extend Commerce.
  const base = result.url ?? "https://<your route or custom domain>";
  step(6, "webhook", `Callback URL for Extend Commerce's webhook form: ${base}/webhook`);
  io.out(`  its secret: the value of EXTEND_WEBHOOK_SECRET · health: ${base}/healthz`);
  for (const line of accessLines(base, configText, vars.settings, shownConfig)) io.out(line);
  return 0;
}

/**
 * Days after which R2 deletes an object on its own: past the longest the ledger keeps a call or a dead letter
 * (LEDGER_RETENTION_DAYS, DEAD_LETTER_TTL_SECONDS), whose rows it deletes with them.
 */
export function lifecycleDays(configText: string): number {
  const retention = Number(tomlVar(configText, "LEDGER_RETENTION_DAYS") || 14);
  const deadLetters = Number(tomlVar(configText, "DEAD_LETTER_TTL_SECONDS") || 1_209_600) / 86_400;
  return Math.ceil(Math.max(retention, deadLetters)) + 3 + LIFECYCLE_SLACK_DAYS;
}

/** `wrangler r2 bucket lifecycle set`'s file: one rule over the whole bucket. */
export function lifecycleRules(days: number) {
  // Claims and call texts only: the ledger records waiting for D1 (WAITING_PREFIX) stay until they are written.
  return {
    rules: [CLAIMS_PREFIX, TEXTS_PREFIX].map((prefix) => ({
      id: `extend-relay-backstop-${prefix.replaceAll("/", "-").replace(/-$/, "")}`,
      enabled: true,
      conditions: { prefix },
      deleteObjectsTransition: { condition: { type: "Age", maxAge: days * 86_400 } },
    })),
  };
}

/**
 * Who can reach /console and /admin (docs/console.md, "Cloudflare Access"): the Access application to make,
 * the vars it needs, and what workers_dev leaves open.
 */
function accessLines(
  base: string,
  configText: string,
  settings: ReturnType<typeof parseSettings>["settings"],
  shownConfig: string,
): string[] {
  const host = URL.canParse(base) ? new URL(base).host : "<your host>";
  const lines: string[] = [];
  if (settings.ACCESS_AUD === undefined) {
    lines.push(
      `Operators: Cloudflare Access is not configured, so /console and /admin are open to anyone with a token${workersDevOn(configText) ? `, at ${base} (workers_dev is on)` : ""}. To put people in front of them:`,
      `  1. Zero Trust → Access → Applications → Add → Self-hosted: domain ${host}, paths console and admin (not webhook: Extend Commerce cannot sign in); a policy allowing your team.`,
      "  2. Copy the application's Application Audience (AUD) tag.",
      `  3. In ${shownConfig} [vars]: ACCESS_TEAM_DOMAIN = "https://<team>.cloudflareaccess.com", ACCESS_AUD = "<AUD tag>", OPERATORS = "you@example.com,*@ops.example.com" (everyone else Access admits is a viewer); then npm run deploy again.`,
    );
  } else {
    lines.push(
      `Operators: Cloudflare Access ${settings.ACCESS_TEAM_DOMAIN} (AUD ${settings.ACCESS_AUD.slice(0, 8)}…) guards /console and /admin; operators: ${settings.OPERATORS?.join(", ") ?? "none (set OPERATORS)"}.`,
    );
  }
  if (workersDevOn(configText)) {
    lines.push(
      `  workers_dev is on: ${base} serves /console and /admin too. An Access application on another hostname does not cover it: add one for ${host} as above, or set workers_dev = false in ${shownConfig} once Extend Commerce calls your own domain.`,
    );
  }
  return lines;
}

if (import.meta.main) {
  process.exitCode = await runDeploy(process.argv.slice(2));
}
