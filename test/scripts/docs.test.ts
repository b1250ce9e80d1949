import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { blocksIn, GENERATED_PAGES, refreshTables } from "../../scripts/lib/docs-tables.ts";
import { ROOT } from "../../scripts/lib/wrangler-dev.ts";
import { ERRORS } from "../../src/errors.ts";
import { ALERT_TYPES } from "../../src/queues/alert.ts";
import { DEAD_LETTER_REASONS } from "../../src/queues/dead-letter.ts";
import { HELD_REASONS } from "../../src/queues/ledger.ts";
import { VAR_NAMES } from "../../src/settings.ts";

const read = (page: string) => readFileSync(join(ROOT, page), "utf8");

describe("the generated tables in docs/", () => {
  const BLOCKS: Record<(typeof GENERATED_PAGES)[number], string[]> = {
    "docs/operations.md": ["dead-letter-reasons", "errors", "vars"],
    "docs/flow-control.md": ["held-reasons"],
    "docs/alerts.md": ["alert-examples"],
  };

  it.each(GENERATED_PAGES)("%s is what the code says today (regenerate with: npm run docs)", (page) => {
    const text = read(page);
    expect(blocksIn(text).sort()).toEqual(BLOCKS[page]);
    expect(refreshTables(text)).toBe(text);
  });

  it("show every held reason, and each alert type's text as the relay writes it", () => {
    const flow = read("docs/flow-control.md");
    for (const reason of Object.keys(HELD_REASONS)) expect(flow).toMatch(new RegExp(`^\\| \`${reason}\` \\|`, "m"));
    const alerts = read("docs/alerts.md");
    for (const type of ALERT_TYPES) expect(alerts).toContain(`#### \`${type}\``);
    expect(alerts).toContain(
      "wms is paused: 20 attempts in a row failed since 2026-12-01 09:00:00 UTC, the last: HTTP 503.",
    );
  });

  it("list every error code, var and dead-letter reason exactly once, with its status", () => {
    const text = read("docs/operations.md");
    for (const [code, { status }] of Object.entries(ERRORS)) {
      expect(text.match(new RegExp(`^\\| ${status} \\| \`${code}\` \\|`, "gm"))).toHaveLength(1);
    }
    for (const name of VAR_NAMES) expect(text.match(new RegExp(`^\\| \`${name}\` \\|`, "gm"))).toHaveLength(1);
    for (const reason of Object.keys(DEAD_LETTER_REASONS)) {
      expect(text.match(new RegExp(`^\\| \`${reason}\` \\|`, "gm"))).toHaveLength(1);
    }
  });

  it("and wrangler.toml's [vars] are exactly the vars the settings schema knows", () => {
    const toml = read("wrangler.toml");
    const vars = toml.slice(toml.indexOf("[vars]")).split(/^\[(?!vars)/m)[0]!;
    expect([...vars.matchAll(/^([A-Z_]+) = /gm)].map((m) => m[1])).toEqual(VAR_NAMES);
  });
});

describe("code, tests and docs", () => {
  it("never cite a contract outside this repository: they cite docs/", () => {
    // Built so that this file does not match itself.
    const outside = new RegExp(["SPEC", "(§|\\.md)"].join(" ?"));
    const files = execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" })
      .split("\n")
      .filter((file) => /\.(ts|tsx|js|md|toml|json|sql)$|^\.ci\//.test(file) && file !== "package-lock.json");
    expect(files.length).toBeGreaterThan(100);
    expect(files.filter((file) => outside.test(read(file)))).toEqual([]);
  });
});
