/**
 * A fake wrangler for test/scripts/deploy.test.ts: no network, no account. It answers the commands
 * `npm run deploy` runs, printing what wrangler 4.156 prints for them (the formats are read in
 * node_modules/wrangler/wrangler-dist/cli.js: whoami --json, the cli-table3 table of queues list, deploy's
 * targets, d1 execute --file, secret list's JSON, kv key get's value or 404), keeps the account in
 * $FAKE_WRANGLER_DIR/account.json and records every invocation in calls.jsonl.
 *
 * Run: node test/scripts/fake-wrangler/wrangler.ts <wrangler arguments>
 */
import { readFileSync } from "node:fs";
import { QUEUES } from "../../../src/queues/names.ts";
import { type FakeAccount, readAccount, recordCall, writeAccount } from "./state.ts";

const ACCOUNT_ID = "4f0c7d2a9e1b48c3a5d6e7f809a1b2c3";
const SUBDOMAIN = "example-ops";
const BANNER = `\n ⛅️ wrangler 4.156.2\n${"─".repeat(47)}`;

const dir = process.env.FAKE_WRANGLER_DIR;
if (dir === undefined || dir === "") {
  process.stderr.write("fake wrangler: FAKE_WRANGLER_DIR is not set\n");
  process.exit(1);
}
const args = process.argv.slice(2);

/** The value after `--name`, or undefined. */
function option(name: string): string | undefined {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

const out = (text: string) => process.stdout.write(`${text}\n`);
function fail(message: string): never {
  process.stderr.write(`\n✘ [ERROR] ${message}\n\n`);
  process.exit(1);
}

/** A table as wrangler's logger.table draws it (cli-table3 defaults: a rule between rows). */
function table(rows: Record<string, string>[]): string {
  if (rows.length === 0) return "";
  const head = Object.keys(rows[0]!);
  const cells = [head, ...rows.map((row) => head.map((key) => row[key] ?? ""))];
  const widths = head.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const rule = (left: string, mid: string, right: string) =>
    `${left}${widths.map((w) => "─".repeat(w + 2)).join(mid)}${right}`;
  const line = (row: string[]) => `│${row.map((cell, i) => ` ${cell.padEnd(widths[i]!)} `).join("│")}│`;
  const lines = [rule("┌", "┬", "┐")];
  cells.forEach((row, i) => {
    if (i > 0) lines.push(rule("├", "┼", "┤"));
    lines.push(line(row));
  });
  lines.push(rule("└", "┴", "┘"));
  return lines.join("\n");
}

function queueId(name: string): string {
  let hash = 0;
  for (const c of name) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return hash.toString(16).padStart(8, "0").repeat(4);
}

const account: FakeAccount = readAccount(dir);
const command = args[0] === "whoami" || args[0] === "deploy" ? args[0] : `${args[0]} ${args[1]}`;
const call: { args: string[]; file?: string } = { args };
const file = option("--file");
if ((args[0] === "d1" || args[0] === "r2") && file !== undefined) call.file = readFileSync(file, "utf8");
recordCall(dir, call);

const requireLogin = () => {
  if (!account.loggedIn) fail("Not logged in. Please run `wrangler login`.");
};
const requireDeployed = () => {
  if (!account.deployed)
    fail(`Worker "extend-relay" not found.\n\nIf this is a new Worker, run \`wrangler deploy\` first to create it.`);
};

switch (command) {
  case "whoami": {
    if (!account.loggedIn) {
      out('\n{"loggedIn":false}');
      process.exit(1);
    }
    out("");
    out(
      JSON.stringify(
        {
          loggedIn: true,
          authType: "OAuth Token",
          email: account.email,
          accounts: [{ id: ACCOUNT_ID, name: "Example Ops" }],
          tokenPermissions: ["account:read", "workers:write", "d1:write", "queues:write"],
        },
        null,
        4,
      ),
    );
    break;
  }
  case "queues list": {
    requireLogin();
    out(BANNER);
    const shown = account.queues.slice(0, account.listLimit ?? account.queues.length);
    out(
      table(
        shown.map((name) => ({
          id: queueId(name),
          name,
          created_on: "2026-11-02T09:14:27.183716Z",
          modified_on: "2026-11-02T09:14:27.183716Z",
          producers: "1",
          consumers: "1",
        })),
      ),
    );
    break;
  }
  case "queues info": {
    requireLogin();
    const name = args[2]!;
    out(BANNER);
    if (!account.queues.includes(name))
      fail(`Queue "${name}" does not exist. To create it, run: wrangler queues create ${name}`);
    out(`Queue Name: ${name}\nQueue ID: ${queueId(name)}\nCreated On: 2026-11-02T09:14:27.183716Z`);
    break;
  }
  case "queues create": {
    requireLogin();
    const name = args[2]!;
    out(BANNER);
    out(`🌀 Creating queue '${name}'`);
    if (account.queues.includes(name))
      fail(`A request to the Cloudflare API (/accounts/${ACCOUNT_ID}/queues) failed.\n\n  Queue name already taken`);
    const retention = Number(option("--message-retention-period-secs") ?? 345_600);
    if (retention > (account.maxRetention ?? 1_209_600)) fail("The specified queue settings are invalid.");
    account.queues.push(name);
    writeAccount(dir, account);
    out(`✅ Created queue '${name}'\n\nConfigure your Worker to send messages to this queue:\n\n[[queues.producers]]`);
    break;
  }
  case "deploy": {
    requireLogin();
    out(BANNER);
    for (const name of Object.values(QUEUES)) {
      if (!account.queues.includes(name))
        fail(`Queue "${name}" does not exist. To create it, run: wrangler queues create ${name}`);
    }
    if (account.deployError !== undefined) fail(account.deployError);
    out("Total Upload: 392.37 KiB / gzip: 89.92 KiB");
    if (!account.deployed) {
      out("\nThe following bindings need to be provisioned:\nBinding               Resource");
      out(
        "env.RULES             KV Namespace\nenv.LEDGER (extend-relay-ledger)  D1 Database\nenv.PAYLOADS (extend-relay-payloads)  R2 Bucket\n",
      );
      out('Provisioning RULES (KV Namespace)...\n🌀 Creating new KV Namespace "extend-relay-rules"...');
      out("✨ RULES provisioned 🎉\n");
      out("Provisioning LEDGER (D1 Database)...\nResource name found in config: extend-relay-ledger");
      out('🌀 Creating new D1 Database "extend-relay-ledger"...\n✨ LEDGER provisioned 🎉\n');
      out(
        'Provisioning PAYLOADS (R2 Bucket)...\n🌀 Creating new R2 Bucket "extend-relay-payloads"...\n✨ PAYLOADS provisioned 🎉\n',
      );
      out("🎉 Resources provisioned, continuing with deployment...\n");
    }
    out("Worker Startup Time: 14 ms\nYour Worker has access to the following bindings:");
    out(
      "Binding                                        Resource\nenv.RULES                                      KV Namespace",
    );
    out("Uploaded extend-relay (3.41 sec)");
    out("Deployed extend-relay triggers (1.12 sec)");
    out(`  https://extend-relay.${SUBDOMAIN}.workers.dev`);
    out("  schedule: */10 * * * *");
    for (const name of Object.values(QUEUES)) out(`  Consumer for ${name}`);
    out(`  Producer for ${QUEUES.deliveries}\n  Producer for ${QUEUES.deadLetters}`);
    out("Current Version ID: 6c1e2f4a-8b9d-4e0f-a1b2-c3d4e5f60718");
    account.deployed = true;
    writeAccount(dir, account);
    break;
  }
  case "d1 execute": {
    requireLogin();
    out(BANNER);
    if (!args.includes("--remote") || !args.includes("--yes") || call.file === undefined)
      fail("fake wrangler: expected d1 execute <db> --remote --file <file> --yes");
    if (!account.deployed) fail(`Couldn't find a D1 DB named '${args[2]}' in the API.`);
    const queries = call.file.split(";").filter((s) => s.trim() !== "").length;
    out(
      "▲ [WARNING] ⚠️ This process may take some time, during which your D1 database will be unavailable to serve queries.\n",
    );
    out(`🌀 Executing on remote database ${args[2]} (0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0):`);
    out("🌀 To execute on your local development database, remove the --remote flag from your wrangler command.");
    out(
      "Note: if the execution fails to complete, your DB will return to its original state and you can safely retry.",
    );
    out(`🚣 Executed ${queries} queries in 3.21ms (0 rows read, ${queries} rows written)`);
    out("   Database is currently at bookmark 00000001-00000005-00004f7a-1c2d3e4f5a6b7c8d9e0f.");
    break;
  }
  case "r2 bucket": {
    requireLogin();
    if (args[2] !== "lifecycle" || args[3] !== "set" || !args.includes("--force") || call.file === undefined)
      fail("fake wrangler: only r2 bucket lifecycle set <bucket> --file <file> --force");
    if (!account.deployed) fail(`The specified bucket does not exist. [code: 10006]`);
    out(BANNER);
    out(
      `Setting lifecycle configuration (${(JSON.parse(call.file) as { rules: unknown[] }).rules.length} rules) for bucket '${args[4]}'...`,
    );
    out(`✨ Set lifecycle configuration for bucket '${args[4]}'.`);
    break;
  }
  case "secret list": {
    requireLogin();
    requireDeployed();
    out(
      JSON.stringify(
        account.secrets.map((name) => ({ name, type: "secret_text" })),
        null,
        "  ",
      ),
    );
    break;
  }
  case "kv key": {
    requireLogin();
    requireDeployed();
    if (args[2] !== "get" || args[3] !== "rules") fail("fake wrangler: only kv key get rules");
    if (account.rules === null)
      fail(
        `Failed to fetch https://api.cloudflare.com/client/v4/accounts/${ACCOUNT_ID}/storage/kv/namespaces/8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a/values/rules - 404: Not Found`,
      );
    out(account.rules);
    break;
  }
  default:
    fail(`fake wrangler: unsupported command ${args.join(" ")}`);
}
