import type { Env } from "../env.ts";
import { describe, RelayError } from "../errors.ts";
import { deleteDeadLetterKeys } from "../ledger/dead-letters.ts";
import { countDeliveries, nextMatching } from "../ledger/deliveries.ts";
import { advanceJob, createJob, failJob, getJob, type Job, type JobFilter, type JobKind } from "../ledger/jobs.ts";
import { resend } from "../ledger/resend.ts";
import { log } from "../log.ts";
import { decodeMessage } from "../queues/codec.ts";
import type { Delivery } from "../queues/delivery.ts";
import { jobMessageSchema } from "../queues/job.ts";
import { sendJob } from "../queues/send.ts";
import { type OpContext, recorded } from "./record.ts";

/**
 * Bulk actions on a filtered set of deliveries (docs/console.md, "Bulk actions"): replay every delivery matching a
 * destination, status and time range, or delete every such dead letter. Starting one writes its activity row and
 * its job, and puts it on the JOBS queue; each message does one chunk of JOB_CHUNK (newest first, within the
 * Worker's limits per invocation), records how far it got, and enqueues the next. A chunk that fails is retried by
 * Queues from where the job's row says it was.
 */

export const JOB_CHUNK = 100;

/** How many deliveries a filter matches now: the preview a bulk action shows before it is confirmed. */
export function previewJob(env: Pick<Env, "LEDGER">, filter: JobFilter): Promise<number> {
  return countDeliveries(env.LEDGER, filter);
}

/** Starts a bulk action (`deliveries.bulk_replay` or `dead_letters.bulk_delete`); 202 with the job. */
export async function startJob(op: OpContext, kind: JobKind, filter: JobFilter): Promise<Job> {
  if (kind === "delete" && filter.status !== "dead") {
    throw new RelayError(
      "invalid_query",
      'Only dead letters can be deleted in bulk: give status "dead" (a delivery on its way is never dropped).',
    );
  }
  const total = await previewJob(op.env, filter);
  const change = {
    action: kind === "replay" ? ("deliveries.bulk_replay" as const) : ("dead_letters.bulk_delete" as const),
    target: filter.destination,
    detail: { ...filter, count: total },
  };
  return recorded(op, change, async (activity) => {
    const id = await createJob(op.env.LEDGER, { kind, filter, total, actor: op.actor.id, activity, at: op.now });
    try {
      await sendJob(op.env.JOBS, { kind: "job", id });
    } catch (error) {
      await failJob(op.env.LEDGER, id, "it could not be put on the jobs queue", Date.now());
      log("error", "job_not_enqueued", { job: id, error: describe(error) });
      throw new RelayError(
        "queue_unavailable",
        "The bulk action could not be started; nothing was changed. Try again.",
      );
    }
    const job = await getJob(op.env.LEDGER, id);
    const { cursor: _, ...shown } = job!;
    return shown;
  });
}

/** One chunk of job `id`: replayed or deleted, its progress written, the next chunk enqueued while more are left. */
export async function runJob(env: Env, id: number): Promise<void> {
  const job = await getJob(env.LEDGER, id);
  if (job === null || job.state !== "running") return;
  const chunk = await nextMatching(env.LEDGER, env.PAYLOADS, job.filter, JOB_CHUNK, job.cursor);
  let done = 0;
  let skipped = 0;
  if (job.kind === "delete") {
    done = await deleteDeadLetterKeys(env.LEDGER, chunk.keys);
    skipped = chunk.keys.length - done;
  } else {
    const messages = chunk.messages.filter((m): m is Delivery => m !== undefined && m !== "unreadable");
    skipped = chunk.messages.length - messages.length;
    // Within a chunk, resend takes as many sendBatch calls as it needs (at most RESEND_BATCHES): all of a chunk.
    const result = messages.length === 0 ? { replayed: [], skipped: [] } : await resend(env, messages);
    done = result.replayed.length;
    skipped += result.skipped.length;
    if (result.skipped.length > 0 && done === 0) throw new Error("the delivery queue took none of the chunk");
  }
  await advanceJob(env.LEDGER, id, { done, skipped, cursor: chunk.cursor }, Date.now());
  if (chunk.cursor !== undefined) await sendJob(env.JOBS, { kind: "job", id });
  log("info", "job_progress", { job: id, kind: job.kind, done, skipped, more: chunk.cursor !== undefined });
}

/** The JOBS consumer: each message one chunk; a chunk that fails comes back (Queues' retry), its row untouched. */
export async function consumeJobs(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    const read = jobMessageSchema.safeParse(decodeMessage(message.body));
    if (!read.success) {
      log("error", "job_message_unreadable", { message: message.id });
      message.ack();
      continue;
    }
    try {
      await runJob(env, read.data.id);
      message.ack();
    } catch (error) {
      log("warn", "job_chunk_failed", { job: read.data.id, attempts: message.attempts, error: describe(error) });
      if (message.attempts >= 20) {
        await failJob(env.LEDGER, read.data.id, describe(error), Date.now()).catch(() => {});
        message.ack();
      } else message.retry({ delaySeconds: 30 });
    }
  }
}
