/**
 * What the relay's ledger holds after a run, read straight from its local D1 file (node:sqlite, read-only):
 * rows per table and bytes, per call.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

export interface LedgerSize {
  calls: number;
  rowsPerCall: Record<string, number>;
  bytesPerCall: number;
}

const TABLES = [
  "ledger_calls",
  "ledger_keys",
  "ledger_actions",
  "ledger_sender_attempts",
  "ledger_deliveries",
  "ledger_attempts",
  "ledger_text_parts",
];

export function ledgerSize(persistTo: string): LedgerSize {
  const folder = join(persistTo, "v3", "d1", "miniflare-D1DatabaseObject");
  const file = readdirSync(folder).find((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite");
  if (file === undefined) throw new Error(`no D1 database in ${folder}`);
  const db = new DatabaseSync(join(folder, file), { readOnly: true });
  try {
    const count = (table: string) =>
      Number((db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n);
    const calls = count("ledger_calls");
    const pages = Number((db.prepare("PRAGMA page_count").get() as { page_count: number }).page_count);
    const pageSize = Number((db.prepare("PRAGMA page_size").get() as { page_size: number }).page_size);
    return {
      calls,
      rowsPerCall: Object.fromEntries(TABLES.map((table) => [table, count(table) / Math.max(1, calls)])),
      bytesPerCall: (pages * pageSize) / Math.max(1, calls),
    };
  } finally {
    db.close();
  }
}
