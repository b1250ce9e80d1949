/**
 * Every KV key the relay reads or writes, spelled once. RULES holds the rules document; STATE holds dedupe
 * marks and dead-letter records.
 */

/** RULES: the routing rules document (docs/rules.md). */
export const RULES_KEY = "rules";

/** STATE: an accepted call's Id, kept DEDUP_TTL_SECONDS (src/ingress/dedupe.ts). */
export const seenKey = (id: string): string => `seen:${id}`;

/** STATE: dead-letter records, one per delivery id, kept DEAD_LETTER_TTL_SECONDS. */
export const DEAD_LETTER_PREFIX = "dead:";
export const deadLetterKey = (deliveryId: string): string => `${DEAD_LETTER_PREFIX}${deliveryId}`;
