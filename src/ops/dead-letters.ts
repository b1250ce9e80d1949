import { RelayError } from "../errors.ts";
import { deleteDeadLetter as deleteDeadLetterRows, getDeadLetter, nextDeadLetters } from "../ledger/dead-letters.ts";
import { type ResendResult, resend } from "../ledger/resend.ts";
import type { DeadLetter } from "../queues/dead-letter.ts";
import type { Delivery } from "../queues/delivery.ts";
import { type OpContext, recorded } from "./record.ts";

/** Dead letters one bulk replay takes on (one ledger read, sendBatch calls, one ledger write). */
export const REPLAY_BATCH = 100;

/** POST /admin/dead-letters/replay answers this; call again while `more` is true. */
export interface BulkReplayAnswer extends ResendResult {
  more: boolean;
}

const notFound = (id: string) =>
  new RelayError("dead_letter_not_found", `There is no dead letter with delivery id ${id}.`);
const unreadableReason = (problem: string) => `the stored record is not one this relay can read (${problem})`;

/** The readable record of a dead letter: 404, or 409 `dead_letter_unreadable` saying why. */
export async function foundDeadLetter(env: OpContext["env"], id: string): Promise<DeadLetter> {
  const stored = await getDeadLetter(env.LEDGER, env.PAYLOADS, id);
  if (stored === null) throw notFound(id);
  if ("unreadable" in stored) {
    throw new RelayError(
      "dead_letter_unreadable",
      `The dead letter ${id} is stored, but ${unreadableReason(stored.unreadable)}; delete it with DELETE /admin/dead-letters/${id}.`,
    );
  }
  return stored.record;
}

async function replay(env: OpContext["env"], messages: Delivery[]) {
  try {
    return await resend(env, messages);
  } catch {
    throw new RelayError("queue_unavailable", "The deliveries could not be enqueued; the records are kept. Try again.");
  }
}

/** Replays one dead letter (`dead_letter.replay`). */
export async function replayDeadLetter(op: OpContext, id: string): Promise<ResendResult> {
  const record = await foundDeadLetter(op.env, id);
  const message = record.message;
  if (message === undefined) {
    throw new RelayError("not_replayable", "This record holds no readable delivery message; inspect it and delete it.");
  }
  return recorded(
    op,
    { action: "dead_letter.replay", target: id, detail: { destination: record.destination } },
    async () => {
      const { left: _, ...result } = await replay(op.env, [message]);
      return result;
    },
  );
}

/**
 * One round of a bulk replay (`dead_letters.replay_all`): up to REPLAY_BATCH dead letters, oldest first (of one
 * destination, when given); `more` asks for another round. Records that cannot be replayed are never picked
 * again, so calling again always makes progress. The row counts what the round takes on.
 */
export async function replayDeadLetters(op: OpContext, destination: string | undefined): Promise<BulkReplayAnswer> {
  const next = await nextDeadLetters(op.env.LEDGER, op.env.PAYLOADS, destination, REPLAY_BATCH);
  const change = {
    action: "dead_letters.replay_all" as const,
    target: destination,
    detail: { count: next.messages.length, unreadable: next.unreadable.length, more: next.more },
  };
  return recorded(op, change, async () => {
    const result =
      next.messages.length === 0 ? { replayed: [], skipped: [], left: 0 } : await replay(op.env, next.messages);
    const skipped = [
      ...result.skipped,
      ...next.unreadable.map((deliveryId) => ({
        deliveryId,
        reason: unreadableReason("its stored message is not one it can read"),
      })),
    ];
    return { replayed: result.replayed, skipped, more: next.more || result.left > 0 || result.skipped.length > 0 };
  });
}

/** Drops one dead letter, readable or not (`dead_letter.delete`): the way out of an unreadable one. */
export async function deleteDeadLetter(op: OpContext, id: string): Promise<void> {
  const stored = await getDeadLetter(op.env.LEDGER, op.env.PAYLOADS, id);
  if (stored === null) throw notFound(id);
  const destination = "record" in stored ? stored.record.destination : undefined;
  await recorded(op, { action: "dead_letter.delete", target: id, detail: { destination } }, async () => {
    // Gone meanwhile (replayed, or deleted by someone else).
    if (!(await deleteDeadLetterRows(op.env.LEDGER, id))) throw notFound(id);
  });
}
