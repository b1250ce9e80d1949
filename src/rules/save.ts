import { RelayError } from "../errors.ts";
import type { Issue } from "../issues.ts";
import { PREVIOUS_RULES_KEY, RULES_KEY } from "../kv-keys.ts";
import { type Rules, validateRules } from "./schema.ts";
import { resetRulesCache } from "./store.ts";

/**
 * Saving the rules document: the one way PUT /admin/rules and the console store it. The document that was in
 * place moves to PREVIOUS_RULES_KEY, so the last save can be undone (restorePreviousRules).
 */

/** A document as stored: its text, a short hash of that text (its version), and when it was saved. */
export interface StoredRules {
  text: string;
  /** The first 12 hex digits of the SHA-256 of `text`: the same text, the same version. */
  hash: string;
  /** When it was saved through the admin API or the console; absent for a document written around them. */
  savedAt?: string;
}

interface RulesMetadata {
  savedAt?: string;
}

/** The valid document with its warnings, or 422 `rules_invalid` naming every issue. */
export function checkedRules(document: unknown, env: object): { rules: Rules; warnings: Issue[] } {
  const validation = validateRules(document, env);
  if (!validation.ok) {
    throw new RelayError("rules_invalid", "The rules document is invalid and was not stored.", {
      issues: validation.issues,
    });
  }
  return validation;
}

/** The current document (or the previous one), or null when KV holds none. */
export async function readStoredRules(kv: KVNamespace, which: "current" | "previous" = "current") {
  const { value, metadata } = await kv.getWithMetadata<RulesMetadata>(
    which === "current" ? RULES_KEY : PREVIOUS_RULES_KEY,
    "text",
  );
  if (value === null) return null;
  return {
    text: value,
    hash: await rulesHash(value),
    ...(typeof metadata?.savedAt === "string" && { savedAt: metadata.savedAt }),
  } satisfies StoredRules;
}

export async function rulesHash(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest).slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Validates `document` (422 `rules_invalid`, nothing stored) and stores it, keeping the document it replaces
 * as the previous version. Drops this isolate's rules cache so that it routes by the new rules at once.
 */
export async function saveRules(
  env: { RULES: KVNamespace },
  document: unknown,
  now = Date.now(),
): Promise<{ warnings: Issue[]; stored: StoredRules }> {
  const { warnings } = checkedRules(document, env);
  const current = await env.RULES.getWithMetadata<RulesMetadata>(RULES_KEY, "text");
  if (current.value !== null) {
    await env.RULES.put(PREVIOUS_RULES_KEY, current.value, current.metadata ? { metadata: current.metadata } : {});
  }
  const text = JSON.stringify(document, null, 2);
  const savedAt = new Date(now).toISOString();
  await env.RULES.put(RULES_KEY, text, { metadata: { savedAt } satisfies RulesMetadata });
  resetRulesCache();
  return { warnings, stored: { text, hash: await rulesHash(text), savedAt } };
}

/**
 * Puts the previous version back (validated as any save is); the document it replaces becomes the previous
 * version, so a restore can itself be undone. 404 `rules_not_found` when there is no previous version.
 */
export async function restorePreviousRules(env: { RULES: KVNamespace }, now = Date.now()) {
  const previous = await readStoredRules(env.RULES, "previous");
  if (previous === null) {
    throw new RelayError("rules_not_found", `There is no previous rules document in KV key "${PREVIOUS_RULES_KEY}".`);
  }
  let document: unknown;
  try {
    document = JSON.parse(previous.text);
  } catch {
    throw new RelayError("rules_invalid", "The previous rules document is not JSON and was not restored.", {
      issues: [{ path: "(root)", message: "is not JSON" }],
    });
  }
  return saveRules(env, document, now);
}
