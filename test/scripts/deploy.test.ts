/**
 * `npm run deploy` as a person runs it (a real process): the dry run, and the real path against a fake
 * wrangler (test/scripts/fake-wrangler) that keeps a pretend account in a folder, prints wrangler 4.156's
 * output formats and records every invocation. Nothing here needs an account or the network.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runDeploy } from "../../scripts/deploy.ts";
import { ROOT } from "../../scripts/lib/wrangler-dev.ts";
import { schemaScript } from "../../src/ledger/migrations.ts";
import { QUEUES } from "../../src/queues/names.ts";
import { WAITING_PREFIX } from "../../src/r2-keys.ts";
import { tempDir } from "../temp.ts";
import { fakeAccount } from "./fake-wrangler/account.ts";
import type { FakeCall } from "./fake-wrangler/state.ts";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const NODE = join(ROOT, "node_modules", ".bin", "node");
const QUEUE_NAMES: string[] = Object.values(QUEUES);
const EXAMPLE_RULES = readFileSync(join(ROOT, "rules.example.json"), "utf8");

function deploy(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(NODE, ["scripts/deploy.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, INIT_CWD: ROOT, NO_COLOR: "1", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

/** Each of `parts` occurs in `text`, in this order. */
function expectInOrder(text: string, parts: string[]): void {
  let from = 0;
  for (const part of parts) {
    const at = text.indexOf(part, from);
    expect(at, `${JSON.stringify(part)} after position ${from} in:\n${text}`).toBeGreaterThanOrEqual(0);
    from = at + part.length;
  }
}

const created = (calls: FakeCall[]) =>
  calls.filter((c) => c.args[0] === "queues" && c.args[1] === "create").map((c) => c.args[2]);

describe("npm run deploy -- --dry-run", () => {
  it("prints every step's command, in order, and runs none of them", async () => {
    const fake = fakeAccount();
    const run = await deploy(fake.env, "--dry-run");
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expectInOrder(run.stdout, [
      "[1/6] login: npx wrangler whoami --json --config wrangler.toml",
      "[2/6] queues: npx wrangler queues list --config wrangler.toml",
      ...QUEUE_NAMES.map(
        (name) => `npx wrangler queues create ${name} --message-retention-period-secs 1209600 --config wrangler.toml`,
      ),
      "[3/6] deploy: npx wrangler deploy --config wrangler.toml",
      "[4/6] schema: npx wrangler d1 execute extend-relay-ledger --remote --file ",
      "ledger-schema.sql --yes --config wrangler.toml",
      "[4/6] payloads: npx wrangler r2 bucket lifecycle set extend-relay-payloads --file ",
      "lifecycle.json --force --config wrangler.toml",
      "deletes objects older than 24 days",
      "[5/6] secrets: npx wrangler secret list --format json --config wrangler.toml",
      "npx wrangler kv key get rules --binding RULES --remote --text --config wrangler.toml",
      "[6/6] webhook: ",
      "/webhook",
      "Dry run: nothing was run.",
    ]);
    expect(fake.calls()).toEqual([]);
  });

  it("shows the config it was given, relative to where npm was run", async () => {
    const fake = fakeAccount();
    const run = await deploy(fake.env, "--dry-run", "--config", "./wrangler.toml");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("npx wrangler deploy --config wrangler.toml");
    expect(fake.calls()).toEqual([]);
  });
});

describe("npm run deploy against a fake wrangler", () => {
  it("creates only the missing queues, deploys, applies the schema, lists unset secrets; a second run creates nothing", async () => {
    const fake = fakeAccount({
      queues: ["other-app-jobs", QUEUES.deliveries],
      secrets: ["EXTEND_WEBHOOK_SECRET", "WMS_SECRET"],
      rules: EXAMPLE_RULES,
    });
    const first = await deploy(fake.env);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);

    const missing = QUEUE_NAMES.filter((name) => name !== QUEUES.deliveries);
    expect(created(fake.calls())).toEqual(missing);
    for (const call of fake.calls().filter((c) => c.args[1] === "create")) {
      expect(call.args).toContain("--message-retention-period-secs");
      expect(call.args).toContain("1209600");
    }
    expect(first.stdout).toContain(`[2/6] queues: ${QUEUES.deliveries} exists`);
    for (const name of missing) expect(first.stdout).toContain(`[2/6] queues: ${name} created`);

    // The order of the steps: whoami, the queues, deploy, the schema, then the secrets and the rules.
    expect(fake.calls().map((c) => c.args.slice(0, 2).join(" "))).toEqual([
      "whoami --json",
      "queues list",
      ...missing.map(() => "queues create"),
      "deploy --config",
      "d1 execute",
      "r2 bucket",
      "secret list",
      "kv key",
    ]);
    expect(first.stdout).toContain("[3/6] deploy: deployed to https://extend-relay.example-ops.workers.dev");
    expect(first.stdout).toContain(
      'created KV Namespace "extend-relay-rules", D1 Database "extend-relay-ledger", R2 Bucket "extend-relay-payloads"',
    );

    const execute = fake.calls().find((c) => c.args[0] === "d1")!;
    expect(execute.args.slice(0, 4)).toEqual(["d1", "execute", "extend-relay-ledger", "--remote"]);
    expect(execute.args).toContain("--yes");
    const schemaFile = execute.args[execute.args.indexOf("--file") + 1]!;
    expect(execute.file).toBe(schemaScript());
    expect(execute.file).toContain("CREATE TABLE IF NOT EXISTS ledger_calls");
    expect(execute.file).toContain("CREATE TABLE IF NOT EXISTS ledger_deliveries");
    const statements = execute.file!.split(";\n").filter((s) => s.trim() !== "");
    for (const statement of statements) {
      expect(statement).toMatch(/^(CREATE (TABLE|INDEX) IF NOT EXISTS |INSERT OR IGNORE INTO ledger_meta )/);
    }
    // The bucket's lifecycle rules: claims and call texts past the longest the ledger keeps anything (14 days here)
    // and slack. Never the ledger records waiting for D1: losing one of those takes an operator (docs/ledger.md).
    const rules = fake.calls().find((c) => c.args[0] === "r2")!;
    expect(rules.args.slice(0, 5)).toEqual(["r2", "bucket", "lifecycle", "set", "extend-relay-payloads"]);
    const lifecycle = JSON.parse(rules.file!) as { rules: { conditions: { prefix: string } }[] };
    expect(lifecycle).toEqual({
      rules: ["claims/", "ledger/texts/"].map((prefix) => ({
        id: `extend-relay-backstop-${prefix.replaceAll("/", "-").replace(/-$/, "")}`,
        enabled: true,
        conditions: { prefix },
        deleteObjectsTransition: { condition: { type: "Age", maxAge: 24 * 86_400 } },
      })),
    });
    expect(lifecycle.rules.filter((r) => WAITING_PREFIX.startsWith(r.conditions.prefix))).toEqual([]);
    expect(first.stdout).toContain(
      "[4/6] payloads: R2 bucket extend-relay-payloads deletes objects older than 24 days",
    );
    expect(existsSync(schemaFile), "the temporary schema file is removed").toBe(false);

    expect(first.stdout).toContain("[5/6] rules: remote KV holds rules with 3 destinations");
    expect(first.stdout).toMatch(/\[5\/6\] secrets: set: EXTEND_WEBHOOK_SECRET, WMS_SECRET; unset: ADMIN_TOKEN, /);
    for (const name of ["ADMIN_TOKEN", "SHOP_SECRET", "SHOP_API_KEY"])
      expect(first.stdout).toMatch(new RegExp(`^ {2}npx wrangler secret put ${name} +# `, "m"));
    expect(first.stdout).not.toContain("secret put EXTEND_WEBHOOK_SECRET");
    expect(first.stdout).not.toContain("secret put WMS_SECRET");
    expect(first.stdout).toContain("destinations.shop.headers.X-Api-Key");
    expect(first.stdout).toContain(
      "[6/6] webhook: Callback URL for Extend Commerce's webhook form: https://extend-relay.example-ops.workers.dev/webhook",
    );
    expect(first.stdout).toContain("health: https://extend-relay.example-ops.workers.dev/healthz");
    expect(fake.account().queues).toEqual(["other-app-jobs", QUEUES.deliveries, ...missing]);

    const callsBefore = fake.calls().length;
    const second = await deploy(fake.env);
    expect(second.stderr).toBe("");
    expect(second.code).toBe(0);
    const again = fake.calls().slice(callsBefore);
    expect(created(again)).toEqual([]);
    for (const name of QUEUE_NAMES) expect(second.stdout).toContain(`[2/6] queues: ${name} exists`);
    expect(second.stdout).toContain("KV, D1 and R2 already provisioned");
    expect(second.stdout).toContain("/webhook");
  });

  it("says when there are no rules yet and how to push them; an unset EXTEND_WEBHOOK_SECRET is marked required", async () => {
    const fake = fakeAccount({ queues: [...QUEUE_NAMES], deployed: true });
    const run = await deploy(fake.env);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      "[5/6] rules: remote KV holds no rules yet, so every call is accepted with 0 deliveries; push yours with: npm run rules -- push rules.json --remote",
    );
    expect(run.stdout).toMatch(
      /^ {2}npx wrangler secret put EXTEND_WEBHOOK_SECRET +# required: the relay refuses every call until it is set$/m,
    );
    expect(run.stdout).toMatch(/^ {2}npx wrangler secret put ADMIN_TOKEN +# optional with Cloudflare Access: /m);
    expect(run.stdout).toMatch(/^ {2}npx wrangler secret put VIEWER_TOKEN +# optional: a read-only bearer/m);
    expect(run.stdout).toMatch(/^Operators: Cloudflare Access is not configured, so \/console and \/admin are open/m);
    expect(run.stdout).toContain("Application Audience (AUD) tag");
    expect(run.stdout).toMatch(/workers_dev is on: .* serves \/console and \/admin too/);
    expect(created(fake.calls())).toEqual([]);
  });

  it("finds a queue that queues list does not show, and falls back to 24 hours when the plan refuses 14 days", async () => {
    const [listed, beyond, ...rest] = QUEUE_NAMES;
    const fake = fakeAccount({ queues: [listed!, beyond!], listLimit: 1, maxRetention: 86_400 });
    const run = await deploy(fake.env);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`[2/6] queues: ${beyond} exists`);
    for (const name of rest)
      expect(run.stdout).toContain(`[2/6] queues: ${name} created (messages kept up to 24 hours`);
    expect(fake.account().queues).toEqual(QUEUE_NAMES);
  });

  it("stops with exit 2 and the login hint when wrangler is not logged in, running nothing else", async () => {
    const fake = fakeAccount({ loggedIn: false });
    const run = await deploy(fake.env);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(
      "error: wrangler is not logged in: run npx wrangler login (or set CLOUDFLARE_API_TOKEN), then npm run deploy again\n",
    );
    expect(fake.calls().map((c) => c.args[0])).toEqual(["whoami"]);
  });

  it("exits 2 with wrangler's own words when a step fails, and goes no further", async () => {
    const fake = fakeAccount({ queues: [...QUEUE_NAMES], deployError: "Your Worker failed validation: bad script" });
    const run = await deploy(fake.env);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("error: npx wrangler deploy --config wrangler.toml failed (exit 1):");
    expect(run.stderr).toContain("Your Worker failed validation: bad script");
    expect(run.stderr).toContain("safe to repeat");
    expect(fake.calls().some((c) => c.args[0] === "d1")).toBe(false);
  });

  it("exits 2 with one line for an unknown option or a missing config", async () => {
    const fake = fakeAccount();
    const unknown = await deploy(fake.env, "--bogus");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe("error: Unknown option '--bogus' (npm run deploy -- --help lists the options)\n");
    const missing = await deploy(fake.env, "--config", "no-such.toml");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: wrangler config .*no-such\.toml does not exist/);
    expect(fake.calls()).toEqual([]);
  });
});

describe("npm run deploy and the operators' settings", () => {
  it("refuses to deploy a config that sets the test-only DEV_CLOCK, running nothing", async () => {
    const dir = tempDir("deploy-clock");
    const config = join(dir, "wrangler.toml");
    writeFileSync(
      config,
      readFileSync(join(ROOT, "wrangler.toml"), "utf8").replace('DEV_CLOCK = ""', 'DEV_CLOCK = "on"'),
    );
    const lines: string[] = [];
    const code = await runDeploy(
      ["--dry-run", "--config", config],
      { out: (l) => lines.push(l), err: (l) => lines.push(l) },
      dir,
    );
    expect(code).toBe(2);
    expect(lines.join("\n")).toContain("sets DEV_CLOCK, the test-only clock");
  });

  it("says in the dry run which Access application to make and which vars to set", async () => {
    const lines: string[] = [];
    expect(await runDeploy(["--dry-run"], { out: (l) => lines.push(l), err: (l) => lines.push(l) }, ROOT)).toBe(0);
    const text = lines.join("\n");
    expect(text).toContain("Self-hosted: domain <your host>, paths console and admin (not webhook");
    expect(text).toContain(
      'ACCESS_TEAM_DOMAIN = "https://<team>.cloudflareaccess.com", ACCESS_AUD = "<AUD tag>", OPERATORS =',
    );
  });
});
