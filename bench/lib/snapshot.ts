/**
 * The relay as the bench runs it: a copy of its sources taken once, when the bench starts (src, fixtures,
 * wrangler.toml, package.json, tsconfig.json; node_modules shared). `wrangler dev` watches its sources and
 * reloads the Worker on every change, so edits made while the bench runs would otherwise restart the relays in
 * the middle of a measurement and change what is measured. Deleted when the process exits.
 */
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "../../scripts/lib/wrangler-dev.ts";

let copy: string | undefined;

/** The copy's wrangler.toml, made on first use. */
export function relayConfig(): string {
  if (copy === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "extend-relay-bench-tree-"));
    for (const name of ["src", "fixtures", "wrangler.toml", "package.json", "tsconfig.json"]) {
      cpSync(join(ROOT, name), join(dir, name), { recursive: true });
    }
    symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
    copy = dir;
  }
  return join(copy, "wrangler.toml");
}
