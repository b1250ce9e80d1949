/**
 * Every KV key the relay reads or writes, spelled once. RULES holds the rules document.
 */

/** RULES: the routing rules document (docs/rules.md). */
export const RULES_KEY = "rules";

/**
 * RULES: the document that `rules` held before the last save, kept by relays before the rules history (the
 * old one-step undo). The first save with the history imports it as a version and deletes it (src/ops/rules.ts).
 */
export const PREVIOUS_RULES_KEY = "rules:previous";

/** RULES: the sender_silent episode alerted last (src/alerts/silence.ts): one alert per silence. */
export const SENDER_SILENT_KEY = "alerts:sender-silent";
