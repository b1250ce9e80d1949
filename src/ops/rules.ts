import { describe, RelayError } from "../errors.ts";
import type { Issue } from "../issues.ts";
import { PREVIOUS_RULES_KEY, RULES_KEY } from "../kv-keys.ts";
import { activityStatement } from "../ledger/activity.ts";
import {
  getVersion,
  importVersions,
  LATEST_VERSION_SQL,
  latestVersion,
  type NewVersion,
  versionStatement,
} from "../ledger/rules-history.ts";
import { log } from "../log.ts";
import type { HostPolicy } from "../rules/hosts.ts";
import { checkedRules, rulesHash } from "../rules/save.ts";
import { validateRulesText } from "../rules/schema.ts";
import { resetRulesCache } from "../rules/store.ts";
import { type OpContext, writeRow } from "./record.ts";

/**
 * Saving and restoring the rules (`rules.save`, `rules.restore`; docs/rules.md, "History"): the document is
 * validated (422 by path), kept in the rules history with its activity row in one ledger transaction (both or
 * neither: no row, no change), then stored in KV. The document in KV before the history began (and the one
 * the old one-step undo kept in `rules:previous`) joins the history first, as does one written around the
 * relay (the rules CLI's KV push, `wrangler kv key put`), so that every document in force can be restored.
 */

export interface SaveAnswer {
  warnings: Issue[];
  version: number;
  /** The version in force before, or null when the history was empty. */
  before: number | null;
}

/**
 * Brings the history up to what KV holds: on the first save, the previous (old undo key) and current
 * documents; later, a current document that the relay did not store. Returns the latest version after that.
 */
async function caughtUp(op: OpContext): Promise<{ version: number; hash: string } | null> {
  const db = op.env.LEDGER;
  const latest = await latestVersion(db);
  const current = await op.env.RULES.get(RULES_KEY, "text");
  const found = async (text: string, at: number): Promise<NewVersion> => ({
    savedAt: at,
    actor: "(in KV before the history)",
    role: "none",
    via: "kv",
    hash: await rulesHash(text),
    text,
  });
  const documents: NewVersion[] = [];
  if (latest === null) {
    const previous = await op.env.RULES.get(PREVIOUS_RULES_KEY, "text");
    if (previous !== null) documents.push(await found(previous, op.now - 1));
  }
  if (current !== null && (latest === null || (await rulesHash(current)) !== latest.hash)) {
    documents.push({
      ...(await found(current, op.now)),
      actor: latest === null ? "(in KV before the history)" : "(written around the relay)",
    });
  }
  await importVersions(db, documents);
  if (latest === null) await op.env.RULES.delete(PREVIOUS_RULES_KEY);
  const after = documents.length > 0 ? await latestVersion(db) : latest;
  return after === null ? null : { version: after.version, hash: after.hash };
}

async function store(
  op: OpContext,
  hosts: HostPolicy,
  document: unknown,
  action: "rules.save" | "rules.restore",
  restoredFrom?: number,
): Promise<SaveAnswer> {
  const { warnings } = checkedRules(document, op.env, hosts);
  const text = JSON.stringify(document, null, 2);
  let before: { version: number } | null;
  try {
    before = await caughtUp(op);
  } catch (error) {
    log("error", "rules_history_unavailable", { error: describe(error) });
    throw new RelayError(
      "activity_unavailable",
      "The rules history could not be read, so nothing was stored. Try again.",
    );
  }
  const db = op.env.LEDGER;
  const version: NewVersion = {
    savedAt: op.now,
    actor: op.actor.id,
    role: op.actor.role,
    via: op.actor.via,
    restoredFrom,
    hash: await rulesHash(text),
    text,
  };
  const row = activityStatement(
    db,
    {
      at: op.now,
      actor: op.actor.id,
      role: op.actor.role,
      via: op.actor.via,
      action,
      detail: { before: before?.version ?? null, ...(restoredFrom !== undefined && { restored: restoredFrom }) },
      ip: op.ip,
      outcome: "ok",
    },
    LATEST_VERSION_SQL,
  );
  let saved: number;
  try {
    const [inserted] = await db.batch([versionStatement(db, version), row]);
    saved = inserted!.meta.last_row_id;
  } catch (error) {
    log("error", "activity_unavailable", { action, actor: op.actor.id, error: describe(error) });
    throw new RelayError(
      "activity_unavailable",
      "The activity log and the rules history could not be written, so the rules were not stored. Try again.",
    );
  }
  try {
    await op.env.RULES.put(RULES_KEY, text, {
      metadata: { savedAt: new Date(op.now).toISOString(), version: saved },
    });
  } catch (error) {
    log("error", "rules_unavailable", { error: describe(error) });
    await writeRow(db, {
      at: Date.now(),
      actor: op.actor.id,
      role: op.actor.role,
      via: op.actor.via,
      action,
      target: String(saved),
      detail: { error: "rules_unavailable" },
      ip: op.ip,
      outcome: "failed",
    }).catch(() => undefined);
    throw new RelayError(
      "rules_unavailable",
      `Version ${saved} is in the history, but KV did not take it: it is not in force. Try again.`,
    );
  }
  resetRulesCache();
  return { warnings, version: saved, before: before?.version ?? null };
}

/** Validates and stores a rules document (PUT /admin/rules, the console's save). */
export function saveRules(op: OpContext, hosts: HostPolicy, document: unknown): Promise<SaveAnswer> {
  return store(op, hosts, document, "rules.save");
}

/** Stores an earlier version again, as a new version, validated like a save (422 when it no longer is valid). */
export async function restoreRules(op: OpContext, hosts: HostPolicy, version: number): Promise<SaveAnswer> {
  const found = await getVersion(op.env.LEDGER, version);
  if (found === null) {
    throw new RelayError("rules_version_not_found", `The rules history has no version ${version}.`);
  }
  const checked = validateRulesText(found.text, op.env, hosts);
  if (!checked.ok) {
    throw new RelayError("rules_invalid", `Version ${version} does not validate any more and was not restored.`, {
      issues: checked.issues,
    });
  }
  return store(op, hosts, checked.document, "rules.restore", version);
}
