/**
 * Every KV key the relay reads or writes, spelled once. RULES holds the rules document.
 */

/** RULES: the routing rules document (docs/rules.md). */
export const RULES_KEY = "rules";

/** RULES: the sender_silent episode alerted last (src/alerts/silence.ts): one alert per silence. */
export const SENDER_SILENT_KEY = "alerts:sender-silent";
