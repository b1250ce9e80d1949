/**
 * The tables in docs/ that are facts of the code: every error code (src/errors.ts), every var with its
 * default (src/settings.ts) and every dead-letter reason (src/queues.ts). Each sits in its page between
 * `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`; `npm run docs` rewrites them and
 * test/scripts/docs.test.ts fails when a page is out of date. Pure (no Node APIs).
 */
import { ERRORS, type ErrorCode } from "../../src/errors.ts";
import { DEAD_LETTER_REASONS, type DeadLetterReason } from "../../src/queues.ts";
import { varDocs } from "../../src/settings.ts";

const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");

const TABLES: Record<string, () => string> = {
  errors: () =>
    [
      "| Status | Code | Meaning and fix |",
      "|---|---|---|",
      ...(Object.keys(ERRORS) as ErrorCode[]).map(
        (code) => `| ${ERRORS[code].status} | \`${code}\` | ${cell(ERRORS[code].hint)} |`,
      ),
    ].join("\n"),
  vars: () =>
    [
      "| Var | Default | Meaning |",
      "|---|---|---|",
      ...varDocs().map(
        (v) => `| \`${v.name}\` | ${v.default === "" ? "(empty)" : `\`${v.default}\``} | ${cell(v.description)} |`,
      ),
    ].join("\n"),
  "dead-letter-reasons": () =>
    [
      "| Reason | What happened, and what to do |",
      "|---|---|",
      ...(Object.keys(DEAD_LETTER_REASONS) as DeadLetterReason[]).map(
        (reason) => `| \`${reason}\` | ${cell(DEAD_LETTER_REASONS[reason])} |`,
      ),
    ].join("\n"),
};

/** The pages that hold generated tables. */
export const GENERATED_PAGES = ["docs/operations.md"] as const;

/** `text` with every generated block it holds rewritten from the code; throws on an unknown block name. */
export function refreshTables(text: string): string {
  return text.replace(/<!-- generated:([a-z-]+) -->\n[\s\S]*?\n?<!-- \/generated:\1 -->/g, (_, name: string) => {
    const render = TABLES[name];
    if (render === undefined) throw new Error(`unknown generated block "${name}"`);
    return `<!-- generated:${name} -->\n${render()}\n<!-- /generated:${name} -->`;
  });
}

/** The names of the generated blocks in `text`. */
export function blocksIn(text: string): string[] {
  return [...text.matchAll(/<!-- generated:([a-z-]+) -->/g)].map((m) => m[1]!);
}
