import type { Role } from "../auth/actor.ts";
import { ensureLedger } from "./schema.ts";

/**
 * The rules history (docs/rules.md, "History"): every rules document the relay stored, numbered 1, 2, 3…, with
 * who stored it, how and when. A restore stores an earlier text again as a new version.
 */

export interface RulesVersion {
  version: number;
  savedAt: string;
  actor: string;
  role: Role | "none";
  /** `console` or `api`; `kv` for a document found in KV that the relay had not stored (written around it). */
  via: "console" | "api" | "kv";
  /** A restore: the version it brought back. */
  restoredFrom?: number;
  /** The first 12 hex digits of the SHA-256 of the text, as the console shows a document's version. */
  hash: string;
}

interface Row {
  version: number;
  saved_at: number;
  actor: string;
  role: RulesVersion["role"];
  via: RulesVersion["via"];
  restored_from: number | null;
  hash: string;
  text?: string;
}

const fromRow = (row: Row): RulesVersion => ({
  version: row.version,
  savedAt: new Date(row.saved_at).toISOString(),
  actor: row.actor,
  role: row.role,
  via: row.via,
  ...(row.restored_from !== null && { restoredFrom: row.restored_from }),
  hash: row.hash,
});

export interface NewVersion {
  savedAt: number;
  actor: string;
  role: RulesVersion["role"];
  via: RulesVersion["via"];
  restoredFrom?: number | undefined;
  hash: string;
  text: string;
}

/** The statement that adds a version (batched with its activity row: both or neither). */
export function versionStatement(db: D1Database, v: NewVersion): D1PreparedStatement {
  return db
    .prepare(
      "INSERT INTO rules_versions (saved_at, actor, role, via, restored_from, hash, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(v.savedAt, v.actor, v.role, v.via, v.restoredFrom ?? null, v.hash, v.text);
}

/** The version number the next stored document gets, in SQL (for an activity row in the same batch). */
export const LATEST_VERSION_SQL = "(SELECT max(version) FROM rules_versions)";

export async function latestVersion(db: D1Database): Promise<(RulesVersion & { text: string }) | null> {
  await ensureLedger(db);
  const row = await db.prepare("SELECT * FROM rules_versions ORDER BY version DESC LIMIT 1").first<Row>();
  return row === null ? null : { ...fromRow(row), text: row.text! };
}

export async function getVersion(db: D1Database, version: number): Promise<(RulesVersion & { text: string }) | null> {
  await ensureLedger(db);
  const row = await db.prepare("SELECT * FROM rules_versions WHERE version = ?1").bind(version).first<Row>();
  return row === null ? null : { ...fromRow(row), text: row.text! };
}

/** Versions newest first, without their texts. */
export async function listVersions(
  db: D1Database,
  { limit, before }: { limit: number; before?: number | undefined },
): Promise<{ items: RulesVersion[]; next?: number }> {
  await ensureLedger(db);
  const { results } = await db
    .prepare(
      "SELECT version, saved_at, actor, role, via, restored_from, hash FROM rules_versions WHERE version < ?1 ORDER BY version DESC LIMIT ?2",
    )
    .bind(before ?? Number.MAX_SAFE_INTEGER, limit + 1)
    .all<Row>();
  const items = results.slice(0, limit).map(fromRow);
  return results.length > limit ? { items, next: items[items.length - 1]!.version } : { items };
}

/** Records documents that were in place before the history began (oldest first), as versions by `kv`. */
export async function importVersions(db: D1Database, documents: NewVersion[]): Promise<void> {
  if (documents.length === 0) return;
  await ensureLedger(db);
  await db.batch(documents.map((d) => versionStatement(db, d)));
}

/**
 * The latest version of each of `hashes` in the history (a transformed attempt records the hash of the rules that
 * shaped it); a hash the history does not know is left out.
 */
export async function versionsOf(db: D1Database, hashes: readonly string[]): Promise<Map<string, number>> {
  const wanted = [...new Set(hashes)];
  if (wanted.length === 0) return new Map();
  const { results } = await db
    .prepare(
      "SELECT hash, MAX(version) AS version FROM rules_versions WHERE hash IN (SELECT value FROM json_each(?1)) GROUP BY hash",
    )
    .bind(JSON.stringify(wanted))
    .all<{ hash: string; version: number }>();
  return new Map(results.map((r) => [r.hash, r.version]));
}
