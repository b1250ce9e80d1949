/**
 * `npm run docs`: rewrites the generated tables in docs/ (error codes, vars, dead-letter reasons, the admin API's
 * reference from its OpenAPI document) from the code. `--check` changes nothing and exits 1 when a page is out of
 * date.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { awaitedBlocks, GENERATED_PAGES, refreshTables } from "./lib/docs-tables.ts";
import { ROOT } from "./lib/wrangler-dev.ts";

const check = process.argv.includes("--check");
const blocks = await awaitedBlocks();
let stale = 0;
for (const page of GENERATED_PAGES) {
  const file = join(ROOT, page);
  const text = readFileSync(file, "utf8");
  const fresh = refreshTables(text, blocks);
  if (fresh === text) continue;
  if (check) {
    console.error(`${page} is out of date with the code; run: npm run docs`);
    stale++;
  } else {
    writeFileSync(file, fresh);
    console.log(`Rewrote the generated tables of ${page}.`);
  }
}
process.exit(stale > 0 ? 1 : 0);
