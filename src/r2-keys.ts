/**
 * Every prefix the relay writes under in R2 (binding PAYLOADS), spelled once. `npm run deploy` sets R2's lifecycle
 * rules on CLAIMS_PREFIX and TEXTS_PREFIX only (a backstop for what the ledger deletes itself).
 */

/** Notifications and bodies too large for a queue message (docs/delivery.md, "Large notifications"). */
export const CLAIMS_PREFIX = "claims/";

/** The calls' texts, one object per ledger batch (docs/ledger.md, "How it is stored"). */
export const TEXTS_PREFIX = "ledger/texts/";

/** Ledger records waiting for D1 (docs/ledger.md, "When D1 is down"): never deleted but once written. */
export const WAITING_PREFIX = "ledger/waiting/";
