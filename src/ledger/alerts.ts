import type { Alert, AlertChannel } from "../queues/alert.ts";
import { ensureLedger } from "./schema.ts";

/**
 * The alerts log (docs/alerts.md, "The alerts page"): one row per alert and channel that was sent, or that its
 * channel refused, with who it went to (an email address, or the name of the webhook's setting, never its URL) and
 * its text. Written by the alerts consumer (src/alerts/consumer.ts), read by the console's Alerts page.
 */

export interface AlertSent {
  id: number;
  at: string;
  /** The alert's own id (`<destination>:<type>:<firstAt>`): the same for each of its channels. */
  alert: string;
  type: Alert["type"];
  destination?: string;
  channel: AlertChannel;
  recipient: string;
  outcome: "sent" | "failed";
  error?: string;
  subject: string;
  text: string;
}

interface Row {
  id: number;
  at: number;
  alert: string;
  type: Alert["type"];
  destination: string | null;
  channel: AlertChannel;
  recipient: string;
  outcome: "sent" | "failed";
  error: string | null;
  subject: string;
  text: string;
}

export async function insertAlertsSent(db: D1Database, rows: readonly Omit<AlertSent, "id" | "at">[], at: number) {
  if (rows.length === 0) return;
  await ensureLedger(db);
  await db
    .prepare(
      `INSERT INTO ledger_alerts (at, alert, type, destination, channel, recipient, outcome, error, subject, text)
       SELECT ?1, value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8
       FROM json_each(?2)`,
    )
    .bind(
      at,
      JSON.stringify(
        rows.map((r) => [
          r.alert,
          r.type,
          r.destination ?? null,
          r.channel,
          r.recipient,
          r.outcome,
          r.error ?? null,
          r.subject,
          r.text,
        ]),
      ),
    )
    .run();
}

/** The latest alerts, newest first, of one destination when given; at most `limit`. */
export async function listAlertsSent(
  db: D1Database,
  options: { destination?: string; limit: number },
): Promise<AlertSent[]> {
  await ensureLedger(db);
  const statement =
    options.destination === undefined
      ? db.prepare("SELECT * FROM ledger_alerts ORDER BY id DESC LIMIT ?1").bind(options.limit)
      : db
          .prepare("SELECT * FROM ledger_alerts WHERE destination = ?2 ORDER BY id DESC LIMIT ?1")
          .bind(options.limit, options.destination);
  const { results } = await statement.all<Row>();
  return results.map((r) => ({
    id: r.id,
    at: new Date(r.at).toISOString(),
    alert: r.alert,
    type: r.type,
    ...(r.destination !== null && { destination: r.destination }),
    channel: r.channel,
    recipient: r.recipient,
    outcome: r.outcome,
    ...(r.error !== null && { error: r.error }),
    subject: r.subject,
    text: r.text,
  }));
}

/** Alerts logged before `before` are removed (the Cron Trigger, with the activity log's retention). */
export async function pruneAlertsSent(db: D1Database, before: number): Promise<number> {
  await ensureLedger(db);
  const result = await db.prepare("DELETE FROM ledger_alerts WHERE at < ?1").bind(before).run();
  return result.meta.changes;
}
