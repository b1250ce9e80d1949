import type { AlertMessage } from "./alert.ts";
import type { CallRecord } from "./call.ts";
import { encodeMessage } from "./codec.ts";
import type { DeadLetter } from "./dead-letter.ts";
import { type Delivery, nextAttempt } from "./delivery.ts";
import type { JobMessage } from "./job.ts";
import type { LedgerRecord } from "./ledger.ts";
import { batchMessages, MESSAGE_BUDGET, type Planned, utf8Length } from "./limits.ts";

/**
 * One typed send per queue: the only places that put messages on the relay's queues, always as JSON text.
 * Readers are beside the schemas (src/queues/delivery.ts and the others).
 */

const text = { contentType: "text" } as const;

/**
 * DELIVERIES: messages built by `deliveriesMessage` (or call records of their own), in sendBatch calls within
 * Queues' limits. The last batch goes only once the others are in: a call's record with its summary is planned
 * last, so that a call the ledger knows as accepted was enqueued whole.
 */
export async function sendDeliveries(queue: Queue<string>, messages: readonly Planned<unknown>[]): Promise<void> {
  const batches = batchMessages(messages);
  const send = (batch: readonly Planned<unknown>[]) => queue.sendBatch(batch.map((m) => ({ body: m.text, ...text })));
  await Promise.all(batches.slice(0, -1).map(send));
  if (batches.length > 0) await send(batches.at(-1)!);
}

/** DELIVERIES: a delivery's next attempt, after `delaySeconds`, counting the `attempts` made. */
export function requeueDelivery(
  queue: Queue<string>,
  delivery: Delivery,
  attempts: number,
  delaySeconds: number,
): Promise<void> {
  return queue.send(nextAttempt(delivery, attempts), { ...text, delaySeconds }).then(() => {});
}

/** DELIVERIES: a duplicate's record of its own (only the sender's attempt), for the ledger. */
export function sendCallRecord(queue: Queue<string>, record: CallRecord): Promise<void> {
  return queue.send(encodeMessage(record), text).then(() => {});
}

/** DEAD_LETTERS: a delivery that stops here. */
export function sendDeadLetter(queue: Queue<string>, record: DeadLetter): Promise<void> {
  return queue.send(encodeMessage(record), text).then(() => {});
}

/** LEDGER_RECORDS: records in ledger messages (src/queues/ledger.ts), each within a queue message's budget. */
export async function sendLedgerRecords(queue: Queue<string>, records: readonly LedgerRecord[]): Promise<void> {
  for (const batch of batchMessages(ledgerMessages(records))) {
    await queue.sendBatch(batch.map((m) => ({ body: m.text, ...text })));
  }
}

function ledgerMessages(records: readonly LedgerRecord[]): { text: string; bytes: number }[] {
  const messages: { text: string; bytes: number }[] = [];
  const open = '{"kind":"ledger","records":[';
  let parts: string[] = [];
  let bytes = open.length + 2;
  const flush = () => {
    if (parts.length > 0) messages.push({ text: `${open}${parts.join(",")}]}`, bytes });
    parts = [];
    bytes = open.length + 2;
  };
  for (const record of records) {
    const json = JSON.stringify(record);
    const size = utf8Length(json) + 1;
    if (parts.length > 0 && bytes + size > MESSAGE_BUDGET) flush();
    parts.push(json);
    bytes += size;
  }
  flush();
  return messages;
}

/** ALERTS: an alert with the channels still to reach, after `delaySeconds` when given. */
export function sendAlert(queue: Queue<string>, message: AlertMessage, delaySeconds?: number): Promise<void> {
  return queue
    .send(encodeMessage(message), { ...text, ...(delaySeconds !== undefined && { delaySeconds }) })
    .then(() => {});
}

/** JOBS: go on with a bulk action (src/ops/jobs.ts). */
export function sendJob(queue: Queue<string>, message: JobMessage): Promise<void> {
  return queue.send(encodeMessage(message), text).then(() => {});
}
