import { RelayError } from "../errors.ts";
import type { Issue } from "../issues.ts";
import { RULES_KEY } from "../kv-keys.ts";
import type { HostPolicy } from "./hosts.ts";
import { type Rules, validateRules } from "./schema.ts";

/**
 * The stored rules document as the console and the admin API describe it, and the one validation a save
 * passes (src/ops/rules.ts stores it, with its history).
 */

/** A document as stored: its text, a short hash of that text (its version), and when it was saved. */
export interface StoredRules {
  text: string;
  /** The first 12 hex digits of the SHA-256 of `text`: the same text, the same version. */
  hash: string;
  /** When it was saved through the admin API or the console; absent for a document written around them. */
  savedAt?: string;
  /** Its version in the rules history, when the relay stored it. */
  version?: number;
}

interface RulesMetadata {
  savedAt?: string;
  version?: number;
}

/** The valid document with its warnings, or 422 `rules_invalid` naming every issue. */
export function checkedRules(
  document: unknown,
  env: object,
  hosts: HostPolicy | undefined,
): { rules: Rules; warnings: Issue[] } {
  const validation = validateRules(document, env, hosts);
  if (!validation.ok) {
    throw new RelayError("rules_invalid", "The rules document is invalid and was not stored.", {
      issues: validation.issues,
    });
  }
  return validation;
}

/** The document in force, or null when KV holds none. */
export async function readStoredRules(kv: KVNamespace): Promise<StoredRules | null> {
  const { value, metadata } = await kv.getWithMetadata<RulesMetadata>(RULES_KEY, "text");
  if (value === null) return null;
  return {
    text: value,
    hash: await rulesHash(value),
    ...(typeof metadata?.savedAt === "string" && { savedAt: metadata.savedAt }),
    ...(typeof metadata?.version === "number" && { version: metadata.version }),
  };
}

export async function rulesHash(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest).slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
