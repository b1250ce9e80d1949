/**
 * A real browser for the console's end-to-end tests: Debian's Chromium driven by playwright-core (no browser
 * download), axe-core run inside each page, and screenshots at a phone's and a laptop's width.
 */
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { ROOT } from "../../../scripts/lib/wrangler-dev.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const HAS_CHROMIUM = existsSync(CHROMIUM);
export const SCREENSHOTS = join(ROOT, "test", "e2e", "screenshots");
export const WIDTHS = [375, 1280] as const;

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}

const AXE_SOURCE = readFileSync(join(ROOT, "node_modules", "axe-core", "axe.min.js"), "utf8");

/**
 * Runs axe-core in the page and returns its violations of impact serious or critical. The console's CSP
 * allows no script, so axe is not added as a <script> tag: its source is evaluated through the DevTools
 * protocol (page.evaluate), which the page's CSP does not govern. The pages themselves keep their CSP.
 */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    // This runs in the page; the test's tsconfig has no DOM types, hence the casts.
    const { axe, document } = globalThis as unknown as {
      axe: { run(context: unknown, options: unknown): Promise<{ violations: AxeViolation[] }> };
      document: unknown;
    };
    const results = await axe.run(document, { resultTypes: ["violations"] });
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, ...(n.failureSummary && { failureSummary: n.failureSummary }) })),
    }));
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical");
}

/** `axe: <id> (<impact>): <help> at <targets>` per violation, for an assertion message. */
export function describeViolations(violations: readonly AxeViolation[]): string {
  return violations
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => JSON.stringify(n.target)).join(", ")}`)
    .join("\n");
}

/** Saves the page at each width in WIDTHS (full length) as <name>-<width>.png, then restores the viewport. */
export async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const before = page.viewportSize();
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: width < 600 ? 812 : 900 });
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
  }
  if (before !== null) await page.setViewportSize(before);
}

/** The few DOM shapes the checks below use in the page (the test's tsconfig has no DOM types). */
interface Box {
  top: number;
  bottom: number;
  left: number;
  right: number;
  width: number;
  height: number;
}
interface El {
  tagName: string;
  id: string;
  className: string;
  textContent: string | null;
  parentElement: El | null;
  scrollWidth: number;
  clientWidth: number;
  scrollHeight: number;
  clientHeight: number;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): Box;
  querySelectorAll(selector: string): Iterable<El>;
}
interface InPage {
  document: { documentElement: El; querySelectorAll(selector: string): Iterable<El> };
  innerWidth: number;
  getComputedStyle(el: El): { paddingRight: string; color: string; backgroundColor: string };
}

/**
 * What is wrong with the page's layout at the current width, one sentence each: the page or a table's region
 * wider than its box (columns off-screen), a Tab stop on a region that does not scroll, anything that runs past
 * its card, a select that leaves its arrow no room.
 */
export function layoutProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const { document, innerWidth, getComputedStyle } = globalThis as unknown as InPage;
    const name = (el: El) =>
      `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.className ? `.${el.className.split(" ").join(".")}` : ""}${el.getAttribute("aria-label") ? `[${el.getAttribute("aria-label")}]` : ""}`;
    const problems: string[] = [];
    const root = document.documentElement;
    if (root.scrollWidth > innerWidth + 1) problems.push(`the page is ${root.scrollWidth} px wide in ${innerWidth} px`);
    for (const el of document.querySelectorAll(".scroll")) {
      if (el.scrollWidth > el.clientWidth + 1) {
        problems.push(`${name(el)} hides ${el.scrollWidth - el.clientWidth} px of ${el.scrollWidth} sideways`);
      }
    }
    for (const el of document.querySelectorAll('[tabindex="0"]')) {
      const control = /^(A|BUTTON|INPUT|SELECT|TEXTAREA|SUMMARY)$/.test(el.tagName);
      const scrolls = el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1;
      if (!control && !scrolls) problems.push(`${name(el)} is a Tab stop but does not scroll`);
    }
    for (const card of document.querySelectorAll(".card")) {
      const box = card.getBoundingClientRect();
      for (const el of card.querySelectorAll("*")) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right > box.right + 1) {
          problems.push(`${name(el)} runs ${Math.round(r.right - box.right)} px past its card ${name(card)}`);
        }
      }
    }
    for (const el of document.querySelectorAll("select")) {
      const room = Number.parseFloat(getComputedStyle(el).paddingRight);
      if (room < 24) problems.push(`${name(el)} leaves its arrow ${room} px beside the text`);
    }
    return problems;
  });
}

/** Words of the relay's insides that an operator should not have to know, as the pages once said them. */
const JARGON = [/written around/i, /\bisolate/i, /sendBatch/, /\bconsumer/i, /Error: \w*Error/, /error: Error:/];

/** The jargon the page's text holds. */
export async function jargonIn(page: Page): Promise<string[]> {
  const text = (await page.locator("body").textContent()) ?? "";
  return JARGON.filter((word) => word.test(text)).map(
    (word) => `${word}: …${/.{0,40}$/.exec(text.split(word)[0]!)?.[0]}…`,
  );
}

/** The contrast ratio (WCAG) of an element's text against the first background behind it that is not transparent. */
export async function contrastOf(page: Page, selector: string): Promise<number> {
  return page
    .locator(selector)
    .first()
    .evaluate((target) => {
      const { getComputedStyle } = globalThis as unknown as InPage;
      const rgb = (css: string) => (css.match(/[\d.]+/g) ?? []).map(Number);
      const luminance = ([r = 0, g = 0, b = 0]: number[]) => {
        const [R, G, B] = [r, g, b].map((v) => {
          const s = v / 255;
          return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        }) as [number, number, number];
        return 0.2126 * R + 0.7152 * G + 0.0722 * B;
      };
      let el = target as unknown as El | null;
      const color = rgb(getComputedStyle(el!).color);
      let background = [255, 255, 255];
      for (; el !== null; el = el.parentElement) {
        const bg = rgb(getComputedStyle(el).backgroundColor);
        if (bg.length >= 3 && (bg.length === 3 || bg[3]! > 0)) {
          background = bg;
          break;
        }
      }
      const [a, b] = [luminance(color), luminance(background)].sort((x, y) => y - x) as [number, number];
      return (a + 0.05) / (b + 0.05);
    });
}

/**
 * Where the text of the elements `selector` matches wraps mid-word: each line break that has a letter or digit
 * on both sides (a URL or an address should wrap at its punctuation: / . @ - ? & = _ #).
 */
export function midWordBreaks(page: Page, selector: string): Promise<string[]> {
  return page.locator(selector).evaluateAll((elements) => {
    const { document } = globalThis as unknown as {
      document: {
        createTreeWalker(root: unknown, what: number): { nextNode(): { textContent: string } | null };
        createRange(): {
          setStart(node: unknown, offset: number): void;
          setEnd(node: unknown, offset: number): void;
          getClientRects(): Iterable<Box>;
        };
      };
    };
    const breaks: string[] = [];
    for (const element of elements) {
      const walker = document.createTreeWalker(element, 4 /* NodeFilter.SHOW_TEXT */);
      const chars: { char: string; top: number }[] = [];
      for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
        for (let i = 0; i < node.textContent.length; i++) {
          const range = document.createRange();
          range.setStart(node, i);
          range.setEnd(node, i + 1);
          const [rect] = [...range.getClientRects()];
          if (rect !== undefined) chars.push({ char: node.textContent[i]!, top: rect.top });
        }
      }
      for (let i = 1; i < chars.length; i++) {
        const [before, after] = [chars[i - 1]!, chars[i]!];
        if (after.top > before.top + 2 && /[\p{L}\p{N}]/u.test(before.char) && /[\p{L}\p{N}]/u.test(after.char)) {
          const text = chars.map((c) => c.char).join("");
          breaks.push(`${text.slice(Math.max(0, i - 12), i)}|${text.slice(i, i + 12)} in ${text}`);
        }
      }
    }
    return breaks;
  });
}
