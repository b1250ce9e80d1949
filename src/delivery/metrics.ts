import type { AttemptRecord } from "../queues/ledger.ts";

/**
 * Metrics (docs/operations.md, "Metrics and traces"): one Workers Analytics Engine data point per attempt, when the
 * METRICS binding is there. What each field holds, in order (the SQL in the docs reads them by these positions):
 *
 * - index 1: the destination (Analytics Engine samples by it);
 * - blob1: the destination; blob2: the outcome (`delivered`, `retry`, `dead_letter`); blob3: the receiver's HTTP
 *   status as text, or `none` when there was no answer (timeout, network error, not sent); blob4: a dead letter's
 *   reason, else empty;
 * - double1: the request's duration in ms (0 when none went out); double2: the status (0 when none); double3: the
 *   attempt's number.
 *
 * Writing never fails a delivery: Analytics Engine takes the point in the background and an error is dropped.
 */

/** What the Worker's METRICS binding offers (tests hand in their own). */
export interface MetricsWriter {
  writeDataPoint(point: { indexes: string[]; blobs: string[]; doubles: number[] }): void;
}

export function recordAttempt(metrics: MetricsWriter | undefined, attempt: AttemptRecord): void {
  if (metrics === undefined) return;
  try {
    metrics.writeDataPoint({
      indexes: [attempt.destination],
      blobs: [
        attempt.destination,
        attempt.outcome,
        attempt.status === undefined ? "none" : String(attempt.status),
        attempt.dead?.reason ?? "",
      ],
      doubles: [attempt.durationMs ?? 0, attempt.status ?? 0, attempt.attempt],
    });
  } catch {
    // Metrics are a view, not a record: the ledger has the attempt.
  }
}
