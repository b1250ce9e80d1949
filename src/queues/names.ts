/** The queues, by their exact names in wrangler.toml (test/queues.test.ts checks both agree). */
export const QUEUES = {
  deliveries: "extend-relay-deliveries",
  deadLetters: "extend-relay-dead-letters",
  /** Where dead letters go when writing them keeps failing: consumed too, never left unread. */
  deadLettersFailed: "extend-relay-dead-letters-failed",
  /** What the ledger is to record (calls and attempts), written in large batches by its own consumer. */
  ledger: "extend-relay-ledger",
  /** Where ledger messages go when even their last write failed: consumed into the ledger's waiting room. */
  ledgerFailed: "extend-relay-ledger-failed",
  /** Alerts on their way to the tech contact and the alert webhooks (src/alerts/). */
  alerts: "extend-relay-alerts",
  /** Bulk actions on a filtered set of deliveries, a chunk per message (src/ops/jobs.ts). */
  jobs: "extend-relay-jobs",
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];
