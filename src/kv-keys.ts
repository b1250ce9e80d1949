/**
 * Every KV key the relay reads or writes, spelled once. RULES holds the rules document.
 */

/** RULES: the routing rules document (docs/rules.md). */
export const RULES_KEY = "rules";
