/**
 * The rules CLI as a person runs it (a real process): validation messages and exit codes, and
 * push / pull / diff against a local KV state folder through wrangler.
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/lib/wrangler-dev.ts";
import { tempDir } from "../temp.ts";
import { fakeAccount } from "./fake-wrangler/account.ts";

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function rules(...args: string[]): Promise<Run> {
  return rulesWith({}, ...args);
}

function rulesWith(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(join(ROOT, "node_modules", ".bin", "node"), ["scripts/rules.ts", ...args], {
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

const dir = tempDir("rules-cli");
function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2));
  return path;
}

const example = JSON.parse(readFileSync(join(ROOT, "rules.example.json"), "utf8")) as {
  destinations: Record<string, unknown>;
  routes: { name: string; actions: string[]; to: string[] }[];
};
const invalid = {
  version: 1,
  destinations: { bad: { url: "http://example.com/hook" } },
  routes: [
    { name: "a", actions: ["OrderCreated"], to: ["nowhere"] },
    { name: "a", actions: [], to: ["bad"] },
  ],
};

describe("rules validate", () => {
  it("accepts the example rules: exit 0 with a summary and the secrets they name", async () => {
    const run = await rules("validate", "rules.example.json");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("rules.example.json: valid, 3 destinations, 6 routes (5 enabled).");
    expect(run.stdout).toContain("Worker secrets it names: WMS_SECRET, SHOP_SECRET, SHOP_API_KEY");
  });

  it("refuses an invalid file with exit 1 and every problem named by its path", async () => {
    const run = await rules("validate", file("invalid.json", invalid));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("invalid (4 problems)");
    expect(run.stderr).toContain("destinations.bad.url: must use https (http only for localhost / 127.0.0.1)");
    expect(run.stderr).toContain('routes[0].to[0]: unknown destination "nowhere"');
    expect(run.stderr).toContain("routes[1].actions: must list at least one Action");
    expect(run.stderr).toContain('routes[1].name: duplicate route name "a"');
  });

  it("refuses a file that is not JSON with exit 1, quoting the parser", async () => {
    const run = await rules("validate", file("broken.json", '{"version": 1,\n  "routes": [}'));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/broken\.json: invalid \(1 problem\)\.\n {2}\(file\): is not JSON: .*"routes": \[}/);
  });

  it("prints warnings (an unknown Action, a secret the env file lacks) but still exits 0", async () => {
    const typo = file("typo.json", {
      ...example,
      routes: [{ name: "orders", actions: ["OrderCreatd"], to: ["wms"] }],
    });
    const env = file("partial.env", "WMS_SECRET=x\nSHOP_API_KEY=y\n");
    const run = await rules("validate", typo, "--env-file", env);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(
      'warning routes[0].actions[0]: "OrderCreatd" is not an Action Extend Commerce documents',
    );
    expect(run.stderr).toContain("warning destinations.shop.signing.secret: secret SHOP_SECRET is not set");
    expect(run.stderr).not.toContain("WMS_SECRET is not set");
  });

  it("exits 2 for usage mistakes: no command, unknown command, missing file, unknown option", async () => {
    for (const args of [
      [],
      ["frobnicate"],
      ["validate"],
      ["validate", join(dir, "missing.json")],
      ["validate", "--bogus", "x"],
    ]) {
      const run = await rules(...args);
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr, args.join(" ")).toMatch(/^error: /);
    }
    expect((await rules("validate", join(dir, "missing.json"))).stderr).toContain("missing.json does not exist");
  });
});

describe("rules push / pull / diff against local KV", () => {
  const state = tempDir("rules-kv");
  const at = ["--persist-to", state];
  let exampleFile: string;
  beforeAll(() => {
    exampleFile = file("rules.json", example);
  });

  it("walks an empty state folder through push, pull and diff", async () => {
    const empty = await rules("pull", ...at);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain("There is no rules document in local KV");

    const refused = await rules("push", file("invalid-push.json", invalid), ...at);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("nothing was pushed");

    const added = await rules("diff", exampleFile, ...at);
    expect(added.code).toBe(1);
    expect(added.stdout).toContain("holds no rules document");

    // An explicit env file naming every secret, so no warning depends on this machine's .dev.vars.
    const env = file("complete.env", "WMS_SECRET=w\nSHOP_SECRET=whsec_c2hvcC1zZWNyZXQ=\nSHOP_API_KEY=k\n");
    const pushed = await rules("push", exampleFile, "--env-file", env, ...at);
    expect(pushed.stderr).toBe("");
    expect(pushed.code).toBe(0);
    expect(pushed.stdout).toContain(`Pushed ${exampleFile} to local KV in ${state}`);

    const pulled = await rules("pull", ...at);
    expect(pulled.code).toBe(0);
    expect(JSON.parse(pulled.stdout)).toEqual(example);

    const same = await rules("diff", exampleFile, ...at);
    expect(same.code).toBe(0);
    expect(same.stdout).toContain("hold the same rules");

    // Key order and $schema do not count as differences; a changed value does.
    const reordered = file("reordered.json", {
      routes: example.routes,
      destinations: example.destinations,
      version: 1,
    });
    expect((await rules("diff", reordered, ...at)).code).toBe(0);
    const changed = structuredClone(example);
    changed.routes[0]!.to = ["wms"];
    const different = await rules("diff", file("changed.json", changed), ...at);
    expect(different.code).toBe(1);
    expect(different.stdout).toMatch(/^-\s+"shop"/m);
    expect(different.stdout).toMatch(/^\+\s+"wms"/m);

    const out = join(dir, "pulled.json");
    const written = await rules("pull", "--out", out, ...at);
    expect(written.code).toBe(0);
    expect(JSON.parse(readFileSync(out, "utf8"))).toEqual(example);

    const nowhere = join(dir, "no-such-folder", "pulled.json");
    const unwritable = await rules("pull", "--out", nowhere, ...at);
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr).toBe(`error: cannot write ${nowhere}: its folder does not exist\n`);
  }, 120_000);

  it("exits 2 with wrangler's own words when wrangler fails", async () => {
    const config = file(
      "no-rules.toml",
      'name = "no-rules"\nmain = "src/index.ts"\ncompatibility_date = "2026-10-01"\n[[kv_namespaces]]\nbinding = "OTHER"\nid = "1"\n',
    );
    const run = await rules("pull", "--config", config, ...at);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("error: wrangler kv key get failed (exit 1):");
    expect(run.stderr).toContain('No KV namespace with binding "RULES"');
  }, 60_000);

  it("refuses --remote together with --persist-to", async () => {
    const run = await rules("pull", "--remote", ...at);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("cannot be combined with --remote");
  });
});

describe("rules schema", () => {
  it("reports the committed rules.schema.json up to date, and writes the same text elsewhere", async () => {
    expect((await rules("schema", "--check")).code).toBe(0);
    const out = join(dir, "schema.json");
    const run = await rules("schema", "--out", out);
    expect(run.code).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(readFileSync(join(ROOT, "rules.schema.json"), "utf8"));
  });

  it("exits 2 with one line naming the path when --out cannot be written", async () => {
    const nowhere = join(dir, "no-such-folder", "schema.json");
    const run = await rules("schema", "--out", nowhere);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`error: cannot write ${nowhere}: its folder does not exist\n`);
  });

  it("--check exits 1 when the file is out of date", async () => {
    const stale = file("stale.schema.json", "{}\n");
    const run = await rules("schema", "--check", "--out", stale);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("is out of date");
  });
});

describe("rules pull against the account's KV (--remote, a fake wrangler)", () => {
  it("says there is no rules document when the remote key is missing (wrangler answers 404), exit 1", async () => {
    const empty = fakeAccount({ deployed: true, rules: null });
    const run = await rulesWith(empty.env, "pull", "--remote");
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain("There is no rules document in remote KV");
    expect(run.stderr).not.toContain("404");
  });

  it("prints the remote document, and names wrangler's own words when it fails for another reason", async () => {
    const stored = fakeAccount({ deployed: true, rules: JSON.stringify(example) });
    const pulled = await rulesWith(stored.env, "pull", "--remote");
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(JSON.parse(pulled.stdout)).toEqual(example);
    const loggedOut = fakeAccount({ loggedIn: false, deployed: true });
    const failed = await rulesWith(loggedOut.env, "pull", "--remote");
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain("wrangler kv key get failed (exit 1)");
  });
});
