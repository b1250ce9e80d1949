import type { HeldReason } from "../queues/ledger.ts";

/**
 * What the ledger's answers look like (src/ledger/calls.ts, deliveries.ts, dead-letters.ts, stats.ts): the trace API's and the console's types, kept
 * free of Workers types so that tests and scripts on Node can import them.
 */

export type DeliveryStatus = "pending" | "retrying" | "held" | "delivered" | "superseded" | "dead";
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = [
  "pending",
  "retrying",
  "held",
  "delivered",
  "superseded",
  "dead",
];
/** A call's status: the worst of its deliveries, or no_deliveries. */
export type CallStatus = DeliveryStatus | "no_deliveries";
export const CALL_STATUSES: readonly CallStatus[] = [...DELIVERY_STATUSES, "no_deliveries"];
/** Call statuses from best to worst: what "the worst of its deliveries" means. */
export const CALL_STATUS_RANK: readonly CallStatus[] = [
  "no_deliveries",
  "delivered",
  "superseded",
  "pending",
  "held",
  "retrying",
  "dead",
];

/** A call's status from its deliveries' statuses. */
export function worstStatus(statuses: readonly DeliveryStatus[]): CallStatus {
  return statuses.reduce<CallStatus>(
    (worst, status) => (CALL_STATUS_RANK.indexOf(status) > CALL_STATUS_RANK.indexOf(worst) ? status : worst),
    "no_deliveries",
  );
}

export interface AttemptView {
  attempt: number;
  at: string;
  status?: number;
  error?: string;
  durationMs?: number;
  outcome: "delivered" | "retry" | "dead_letter";
  /** Present on the attempts of a replay (or a resend). */
  replay?: true;
  /** For a body a transform shaped: the rules version (or, if not in the history, their hash) that shaped it. */
  rules?: number | string;
}

export interface DeliveryView {
  deliveryId: string;
  callId: string;
  destination: string;
  status: DeliveryStatus;
  routes: string[];
  /** The positions in the call of the notifications it carries. */
  notifications: number[];
  receivedAt: string;
  updatedAt: string;
  attemptCount: number;
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: string;
  dead?: { reason: string; detail: string; at: string; source: string };
  /** Why its destination's gate holds it back, and since when (docs/flow-control.md); `waitsFor` when ordered. */
  held?: { reason: HeldReason; since: string; waitsFor?: string };
  /** Not sent: a newer notification about the same thing went in this delivery (coalescing). */
  supersededBy?: string;
  attempts?: AttemptView[];
}

export interface CallTrace {
  id: string;
  receivedAt: string;
  /**
   * The `Attempt` of every call with this Id the door answered 2xx, in arrival order: the first acceptance and at
   * most 10 more.
   */
  senderAttempts: unknown[];
  /** Duplicates in all (those listed and those only counted), when there were any. */
  duplicates?: number;
  notifications: {
    index: number;
    action: string;
    warehouse: string | null;
    key: string | null;
    routes: string[];
    destinations: string[];
  }[];
  deliveries: DeliveryView[];
}

/** A page of a list: newest first; `cursor` asks for the next page and is absent on the last. */
export interface Page<T> {
  items: T[];
  cursor?: string;
}

export interface CallSummary {
  id: string;
  receivedAt: string;
  actions: string[];
  keys: string[];
  deliveries: number;
  status: CallStatus;
}

export interface DeadLetterSummary {
  deliveryId: string;
  destination: string;
  reason: string;
  deadAt: string;
  attempts: number;
  lastStatus?: number;
}

export interface DeadLetterPage extends Page<DeadLetterSummary> {
  /** Kept for clients of the first version, which could only order its first 10,000 records: always false. */
  truncated: false;
}

export interface DestinationStats {
  delivered: number;
  /** Coalesced notifications not sent because a newer one about the same thing was (docs/rules.md). */
  superseded: number;
  retrying: number;
  held: number;
  dead: number;
  pending: number;
  p50Ms: number | null;
  p95Ms: number | null;
  lastDeliveredAt: string | null;
  lastFailedAt: string | null;
}

/** A destination's figures when the ledger has none for it in the window. */
export const noDestinationStats = (): DestinationStats => ({
  delivered: 0,
  superseded: 0,
  retrying: 0,
  held: 0,
  dead: 0,
  pending: 0,
  p50Ms: null,
  p95Ms: null,
  lastDeliveredAt: null,
  lastFailedAt: null,
});

export interface Stats {
  since: string;
  destinations: Record<string, DestinationStats>;
  actions: Record<string, number>;
  /** Ledger records that could not be written yet and wait in R2 for D1 (docs/ledger.md, "When D1 is down"). */
  ledger: { waiting: number; waitingSince?: string };
}
