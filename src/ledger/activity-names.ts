/**
 * What the activity log names (src/ledger/activity.ts, docs/console.md "The activity log"): every action and every
 * outcome, spelled once, free of Workers types so that the OpenAPI document's schemas (src/admin/schemas.ts) and
 * the docs script on Node use the same lists.
 */

export const ACTIONS = [
  "rules.save",
  "rules.restore",
  "destination.pause",
  "destination.resume",
  "destination.probe",
  "dead_letter.replay",
  "dead_letters.replay_all",
  "dead_letter.delete",
  "deliveries.bulk_replay",
  "dead_letters.bulk_delete",
  "delivery.resend",
  "sessions.end_all",
  "ledger.redrive",
  "sign_in",
  "sign_in_failed",
  "sign_out",
] as const;
export type Action = (typeof ACTIONS)[number];

/**
 * How it ended: `ok` (made), `failed` (the row was written but the change then failed; `detail.row` names that
 * row), `forbidden` (a viewer asked), or for `sign_in_failed` why: `wrong_token`, `limited`.
 */
export const OUTCOMES = ["ok", "failed", "forbidden", "wrong_token", "limited"] as const;
export type Outcome = (typeof OUTCOMES)[number];
