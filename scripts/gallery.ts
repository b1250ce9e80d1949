/**
 * `npm run gallery`: copies the console's screenshots from the last browser run
 * (`npx vitest run test/e2e/console.test.ts` writes every page at 375 and 1280 px to test/e2e/screenshots/) into
 * docs/images/, one pair per page, and rewrites docs/images/README.md, the gallery. With `pngquant` on the PATH
 * the copies are quantised (about a third of the size); without it they are copied as they are.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./lib/wrangler-dev.ts";

/** The pages shown, in an operator's order: the screenshot's name in the browser test, and what it shows. */
const PAGES: [name: string, caption: string][] = [
  ["login", "Sign-in (when Cloudflare Access is not in front)"],
  ["overview", "Overview: each destination's state, its last 24 hours as a picture and a table"],
  ["calls", "Calls: the newest first, searchable, paged"],
  ["call", "A call's trace: its notifications, where each went, every attempt"],
  [
    "call-request",
    "A delivery's request and body (secrets are shown by name), copy as curl, a failed attempt's answer",
  ],
  ["resend", "Resend asks first and warns when the destination is paused"],
  ["dead-letters", "Dead letters, with filters, and replay or delete for the whole filtered set"],
  ["dead-letter", "One dead letter: why, its attempts, the body its destination gets"],
  ["dead-letter-replay", "Replay one dead letter: the confirmation"],
  ["dead-letter-delete", "Delete one dead letter: the confirmation (irreversible)"],
  ["dead-letters-replay-all", "Replay every dead letter of a filter: the confirmation"],
  ["bulk-replay", "A bulk replay: filter, preview count, confirmation"],
  ["bulk-delete", "A bulk delete: filter, preview count, confirmation"],
  ["job", "A bulk job's page: its progress (the page refreshes while it runs)"],
  ["jobs", "Jobs: every bulk action, who started it, how far it got"],
  ["destinations", "Destinations: state, limits, pause and resume"],
  ["destination", "One destination: its picture over 24 h or 7 d, actions, dead letters, alerts"],
  ["probe", "Probe now: the confirmation for a destination its breaker paused"],
  ["alerts", "Alerts: each destination's state and open episode, what was sent to whom and when"],
  ["rules", "Rules: the editor, with the version in force"],
  ["rules-issue", "Rules: errors above the editor, by path and line"],
  ["rules-confirm", "Rules: what a save changes, asked before it is made"],
  ["rules-conflict", "Rules: someone else saved first; what they changed, then what yours changes"],
  ["rules-version", "Rules history: one earlier version, with restore"],
  ["try", "Try a payload: where each notification would go, and what a transform makes of it"],
  ["activity", "Activity: who changed what, and when"],
  ["not-found", "A page that does not exist"],
];
const WIDTHS = [1280, 375] as const;

const from = join(ROOT, "test", "e2e", "screenshots");
const to = join(ROOT, "docs", "images");
const missing = PAGES.flatMap(([name]) => WIDTHS.map((w) => `${name}-${w}.png`)).filter(
  (file) => !existsSync(join(from, file)),
);
if (missing.length > 0) {
  console.error(
    `No screenshot for ${missing.join(", ")} in test/e2e/screenshots/; run: npx vitest run test/e2e/console.test.ts`,
  );
  process.exit(1);
}
const taken = statSync(join(from, `${PAGES[0]![0]}-${WIDTHS[0]}.png`)).mtime;
console.log(`Screenshots from the browser run of ${taken.toISOString()}.`);
const quantise = spawnSync("pngquant", ["--version"]).status === 0;
if (!quantise) console.warn("pngquant is not on the PATH: the screenshots are copied at full size.");

for (const file of readdirSync(to)) if (file.endsWith(".png")) rmSync(join(to, file));
for (const [name] of PAGES) {
  for (const width of WIDTHS) {
    const file = `${name}-${width}.png`;
    if (!quantise) copyFileSync(join(from, file), join(to, file));
    else {
      const run = spawnSync("pngquant", [
        "--quality",
        "60-85",
        "--speed",
        "1",
        "--strip",
        "-f",
        "-o",
        join(to, file),
        join(from, file),
      ]);
      // pngquant exits 99 when it cannot reach the quality asked for: keep the original then.
      if (run.status !== 0) copyFileSync(join(from, file), join(to, file));
    }
  }
}

const rows = PAGES.map(
  ([name, caption]) =>
    `| ${caption} | [![${name} at 1280 px](${name}-1280.png)](${name}-1280.png) | [![${name} at 375 px](${name}-375.png)](${name}-375.png) |`,
);
writeFileSync(
  join(to, "README.md"),
  `# The console, page by page

Every page of the console at a laptop's width (1280 px) and a phone's (375 px), as the browser test
(\`test/e2e/console.test.ts\`) leaves them after checking each with axe-core and for layout problems. The relay
behind them ran on \`wrangler dev\` with a ledger big enough to page and five destinations: one fine, one answering
500, one 503 (its breaker opens), one 410, one unreachable. [docs/console.md](../console.md) explains what each page is for.

To make them again, with Chromium at \`/usr/bin/chromium\` (without it the browser tests are skipped):
\`npx vitest run test/e2e/console.test.ts\`, then \`npm run gallery\`.

| Page | 1280 px | 375 px |
| --- | --- | --- |
${rows.join("\n")}
`,
);
console.log(`Copied ${PAGES.length * WIDTHS.length} screenshots to docs/images/ and wrote its README.md.`);
