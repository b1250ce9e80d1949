import type { Role } from "../auth/actor.ts";
import { ensureLedger } from "./schema.ts";

/**
 * Console sessions (docs/console.md, "Sessions"), one row each: the SHA-256 of the cookie's random id (never
 * the id), who signed in with which role, a fingerprint of the token they used, and when it was made, last
 * used and ends. Signing out deletes the row, so the cookie is refused at once.
 */

export interface SessionRow {
  idHash: string;
  actor: string;
  role: Role;
  tokenHash: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

interface Row {
  id_hash: string;
  actor: string;
  role: Role;
  token_hash: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
}

const fromRow = (row: Row): SessionRow => ({
  idHash: row.id_hash,
  actor: row.actor,
  role: row.role,
  tokenHash: row.token_hash,
  createdAt: row.created_at,
  lastSeenAt: row.last_seen_at,
  expiresAt: row.expires_at,
});

export async function insertSession(db: D1Database, session: SessionRow): Promise<void> {
  await ensureLedger(db);
  await db
    .prepare(
      "INSERT INTO console_sessions (id_hash, actor, role, token_hash, created_at, last_seen_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .bind(
      session.idHash,
      session.actor,
      session.role,
      session.tokenHash,
      session.createdAt,
      session.lastSeenAt,
      session.expiresAt,
    )
    .run();
}

export async function findSession(db: D1Database, idHash: string): Promise<SessionRow | null> {
  await ensureLedger(db);
  const row = await db.prepare("SELECT * FROM console_sessions WHERE id_hash = ?1").bind(idHash).first<Row>();
  return row === null ? null : fromRow(row);
}

/** Records a use of the session (the idle timeout counts from it). */
export async function touchSession(db: D1Database, idHash: string, at: number): Promise<void> {
  await db.prepare("UPDATE console_sessions SET last_seen_at = ?2 WHERE id_hash = ?1").bind(idHash, at).run();
}

export async function deleteSession(db: D1Database, idHash: string): Promise<void> {
  await ensureLedger(db);
  await db.prepare("DELETE FROM console_sessions WHERE id_hash = ?1").bind(idHash).run();
}

/** Ends every session; returns how many there were. */
export async function deleteAllSessions(db: D1Database): Promise<number> {
  await ensureLedger(db);
  return (await db.prepare("DELETE FROM console_sessions").run()).meta.changes;
}

/** The live sessions (no id, only who and when), newest first. */
export async function listSessions(db: D1Database, now: number): Promise<Omit<SessionRow, "idHash" | "tokenHash">[]> {
  await ensureLedger(db);
  const { results } = await db
    .prepare("SELECT * FROM console_sessions WHERE expires_at > ?1 ORDER BY created_at DESC LIMIT 500")
    .bind(now)
    .all<Row>();
  return results.map((row) => {
    const { idHash: _, tokenHash: __, ...rest } = fromRow(row);
    return rest;
  });
}

/** Removes sessions that ended (expired, or idle past `idleMs`). */
export async function pruneSessions(db: D1Database, now: number, idleMs: number): Promise<number> {
  await ensureLedger(db);
  return (
    await db
      .prepare("DELETE FROM console_sessions WHERE expires_at <= ?1 OR last_seen_at <= ?2")
      .bind(now, now - idleMs)
      .run()
  ).meta.changes;
}

/** A secret of this relay's own for the console's CSRF tokens, made once and kept in the ledger. */
export async function consoleKey(db: D1Database): Promise<string> {
  await ensureLedger(db);
  const fresh = [...crypto.getRandomValues(new Uint8Array(32))].map((b) => b.toString(16).padStart(2, "0")).join("");
  await db.prepare("INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('console_key', ?1)").bind(fresh).run();
  const row = await db.prepare("SELECT value FROM ledger_meta WHERE key = 'console_key'").first<{ value: string }>();
  return row!.value;
}
