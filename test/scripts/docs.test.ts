import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, expect, it } from "vitest";
import { awaitedBlocks, blocksIn, GENERATED_PAGES, refreshTables } from "../../scripts/lib/docs-tables.ts";
import { ROOT } from "../../scripts/lib/wrangler-dev.ts";
import { API_KEYS, TAGS } from "../../src/admin/api.ts";
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
    "docs/admin-api.md": ["admin-api"],
  };

  it.each(GENERATED_PAGES)("%s is what the code says today (regenerate with: npm run docs)", async (page) => {
    const text = read(page);
    expect(blocksIn(text).sort()).toEqual(BLOCKS[page]);
    expect(refreshTables(text, await awaitedBlocks())).toBe(text);
  });

  it("describe every route of the admin API once, under its section, from its OpenAPI document", () => {
    const text = read("docs/admin-api.md");
    for (const key of API_KEYS) {
      const heading = `### \`${key.replace(/:(\w+)/g, "{$1}")}\``;
      expect(
        text.split("\n").filter((line) => line === heading),
        key,
      ).toHaveLength(1);
    }
    const sections = [...text.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(sections).toEqual(["Authentication", "Requests and answers", ...Object.keys(TAGS), "Schemas"]);
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
      .filter((file) => /\.(ts|tsx|js|md|toml|json|sql)$|^\.ci\//.test(file) && file !== "package-lock.json")
      // A file deleted but not yet committed is still listed.
      .filter((file) => existsSync(join(ROOT, file)));
    expect(files.length).toBeGreaterThan(100);
    expect(files.filter((file) => outside.test(read(file)))).toEqual([]);
  });
});

/** The tracked files under `folders`, as paths from the repository's root. */
function tracked(...folders: string[]): string[] {
  return execFileSync("git", ["ls-files", "--", ...folders], { cwd: ROOT, encoding: "utf8" })
    .split("\n")
    .filter((file) => file !== "" && existsSync(join(ROOT, file)));
}

/** A page's text without its fenced code blocks, where a `#` starts a comment, not a heading. */
const prose = (text: string) => text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");

/** The `##` and `###` headings of a page, as written. */
const headingsOf = (text: string) => [...prose(text).matchAll(/^#{2,3} (.+?)\s*$/gm)].map((m) => m[1]!);

/** The anchors GitHub gives a page's headings (any level): lower case, punctuation dropped, spaces as hyphens. */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  for (const [, title] of prose(text).matchAll(/^#{1,6} (.+?)\s*$/gm)) {
    const slug = title!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    let anchor = slug;
    for (let n = 1; anchors.has(anchor); n++) anchor = `${slug}-${n}`;
    anchors.add(anchor);
  }
  return anchors;
}

describe("what cites the docs", () => {
  // A citation may run over a comment's line break, the heading's words on two lines.
  const citations = tracked("src", "scripts", "test").flatMap((file) => {
    const text = read(file).replace(/\n\s*(?:\*|\/\/|#)?\s*/g, " ");
    return [...text.matchAll(/docs\/([a-z-]+\.md)(?:, ["“]([^"”]+)["”])?/g)].map((m) => ({
      file,
      page: `docs/${m[1]}`,
      heading: m[2],
    }));
  });

  it("finds the citations in code, scripts and tests", () => {
    expect(citations.filter((c) => c.heading !== undefined).length).toBeGreaterThan(20);
  });

  it("names only pages that exist, and only their ## or ### headings", () => {
    const missing = citations.filter(
      ({ page, heading }) =>
        !existsSync(join(ROOT, page)) || (heading !== undefined && !headingsOf(read(page)).includes(heading)),
    );
    expect(
      missing.map(({ file, page, heading }) => `${file}: ${page}${heading === undefined ? "" : `, "${heading}"`}`),
    ).toEqual([]);
  });

  it("links between the README and the pages reach a file, and a heading when they name one", () => {
    const pages = [
      "README.md",
      "docs/images/README.md",
      ...readdirSync(join(ROOT, "docs"))
        .filter((f) => f.endsWith(".md"))
        .map((f) => `docs/${f}`),
    ];
    const broken: string[] = [];
    for (const page of pages) {
      for (const [, target, anchor] of prose(read(page)).matchAll(
        /\]\((?!https?:|mailto:)([^)#\s]*)(?:#([^)\s]+))?\)/g,
      )) {
        const file = target === "" ? page : normalize(join(dirname(page), target!));
        if (!existsSync(join(ROOT, file))) broken.push(`${page} → ${target}`);
        else if (anchor !== undefined && file.endsWith(".md") && !anchorsOf(read(file)).has(anchor)) {
          broken.push(`${page} → ${target}#${anchor}`);
        }
      }
    }
    expect(pages.length).toBeGreaterThan(5);
    expect(broken).toEqual([]);
  });
});
