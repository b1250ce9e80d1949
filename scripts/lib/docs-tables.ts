/**
 * The tables in docs/ that are facts of the code: every error code (src/errors.ts), every var with its
 * default (src/settings.ts), every dead-letter and held reason (src/queues.ts), and what each alert says
 * (src/alerts/text.ts, for one example episode). Each sits in its page between
 * `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`; `npm run docs` rewrites them and
 * test/scripts/docs.test.ts fails when a page is out of date. Pure (no Node APIs).
 */
import { alertText } from "../../src/alerts/text.ts";
import { alertLink } from "../../src/console/links.ts";
import { ERRORS, type ErrorCode } from "../../src/errors.ts";
import type { Alert } from "../../src/queues/alert.ts";
import { DEAD_LETTER_REASONS, type DeadLetterReason } from "../../src/queues/dead-letter.ts";
import { HELD_REASONS, type HeldReason } from "../../src/queues/ledger.ts";
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
  "held-reasons": () =>
    [
      "| Reason | Why the delivery waits, and when it goes |",
      "|---|---|",
      ...(Object.keys(HELD_REASONS) as HeldReason[]).map(
        (reason) => `| \`${reason}\` | ${cell(HELD_REASONS[reason])} |`,
      ),
    ].join("\n"),
  "alert-examples": () =>
    EXAMPLE_ALERTS.map((alert) => {
      const { subject, text } = alertText(alert, alertLink(alert, "https://relay.example.com"));
      return [
        `#### \`${alert.type}\`${alert.reason === "hand" ? " (by hand)" : ""}`,
        "",
        `Subject: **${subject}**`,
        "",
        "```text",
        text,
        "```",
      ].join("\n");
    }).join("\n\n"),
};

/** One episode of a broken receiver, as docs/alerts.md tells it: the alerts the relay sends, in order. */
const T = Date.parse("2026-12-01T09:00:00Z");
const EXAMPLE_ALERTS: Alert[] = [
  {
    id: `wms:destination_failing:${T}`,
    type: "destination_failing",
    destination: "wms",
    count: 5,
    firstAt: T,
    lastAt: T + 62_000,
    lastStatus: 503,
    held: 0,
  },
  {
    id: `wms:destination_paused:${T}`,
    type: "destination_paused",
    destination: "wms",
    count: 20,
    firstAt: T,
    lastAt: T + 250_000,
    lastStatus: 503,
    reason: "circuit",
    probeAt: T + 550_000,
    held: 0,
  },
  {
    id: `wms:destination_recovered:${T}`,
    type: "destination_recovered",
    destination: "wms",
    count: 21,
    firstAt: T,
    lastAt: T + 1_150_000,
    lastStatus: 503,
    held: 340,
  },
  {
    id: `wms:deliveries_dead:${T + 2_400_000}`,
    type: "deliveries_dead",
    destination: "wms",
    count: 3,
    firstAt: T + 2_400_000,
    lastAt: T + 2_460_000,
    reason: "permanent_failure",
    lastStatus: 422,
  },
  {
    id: `shop:destination_paused:${T + 3_600_000}`,
    type: "destination_paused",
    destination: "shop",
    count: 0,
    firstAt: T + 3_600_000,
    lastAt: T + 3_600_000,
    reason: "hand",
    held: 0,
    actor: "ann@example.com",
    activity: 412,
  },
  {
    id: `shop:destination_held_near_cap:${T + 7_200_000}`,
    type: "destination_held_near_cap",
    destination: "shop",
    count: 80_000,
    firstAt: T + 7_200_000,
    lastAt: T + 7_200_000,
    reason: "100000",
    held: 80_000,
  },
  {
    id: `sender_silent:${T}`,
    type: "sender_silent",
    count: 95,
    firstAt: T,
    lastAt: T + 95 * 60_000,
  },
];
/** The pages that hold generated tables. */
export const GENERATED_PAGES = ["docs/operations.md", "docs/flow-control.md", "docs/alerts.md"] as const;

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
