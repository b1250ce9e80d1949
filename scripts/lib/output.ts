/** Where a command-line script writes, so tests can capture it, and small helpers for what it writes. */
import { relative } from "node:path";

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

export const consoleOutput: Output = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

/** `path` relative to `from` when it lies inside it, else as given. */
export function shownPath(from: string, path: string): string {
  const rel = relative(from, path);
  return rel === "" || rel.startsWith("..") ? path : rel;
}

/** The text without ANSI colour codes (wrangler colours its output even when asked not to). */
/** `text` as one shell word: as it is when that is safe, else single-quoted. */
export function shellWord(text: string): string {
  return /^[\w.,:@%+=/-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

export function withoutColour(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;]*m/g, "");
}
