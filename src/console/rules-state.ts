import type { Context } from "hono";
import { RelayError } from "../errors.ts";
import type { Issue } from "../issues.ts";
import { readStoredRules, type StoredRules } from "../rules/save.ts";
import { type Rules, validateRulesText } from "../rules/schema.ts";
import { loadRules } from "../rules/store.ts";
import type { ConsoleEnv } from "./env.ts";

/** The stored document as the console describes it: its version, and its warnings or why it is unusable. */
export interface RulesState {
  stored: StoredRules | null;
  rules?: Rules;
  warnings: Issue[];
  /** Why the stored document routes nothing: not JSON, or invalid. */
  issues: Issue[];
}

/** Reads and validates the stored document (with the Worker's environment, so missing secrets are warned of). */
export async function rulesState(c: Context<ConsoleEnv>): Promise<RulesState> {
  const stored = await readStoredRules(c.env.RULES);
  if (stored === null) return { stored, warnings: [], issues: [] };
  const validation = validateRulesText(stored.text, c.env);
  return validation.ok
    ? { stored, rules: validation.rules, warnings: validation.warnings, issues: [] }
    : { stored, warnings: validation.warnings, issues: validation.issues };
}

/**
 * The current rules as the door routes by them (cached per isolate, as the door's), or the sentence saying
 * why there are none usable.
 */
export async function currentRules(c: Context<ConsoleEnv>): Promise<{ rules: Rules } | { problem: string }> {
  try {
    return { rules: (await loadRules(c.env.RULES, c.var.settings.RULES_CACHE_SECONDS)).rules };
  } catch (error) {
    if (error instanceof RelayError) return { problem: error.message };
    throw error;
  }
}
