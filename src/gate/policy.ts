import type { HeldReason } from "../queues/ledger.ts";
import { DEFAULT_CIRCUIT, type Destination } from "../rules/schema.ts";

/**
 * What a destination's gate decides (docs/flow-control.md), as pure functions of its state, its limits and the
 * time: whether a delivery may go now, when the circuit opens and closes, and which alerts that raises. The
 * Durable Object (src/gate/gate.ts) keeps the state and acts on the answers.
 */

/**
 * How long a delivery may wait for its rate slot instead of being held: briefly for a consumer (whose batch
 * would otherwise linger; what it holds the gate sends at the exact rate), a second for the gate's own pump.
 */
export const CONSUMER_WAIT_MS = 100;
export const MAX_WAIT_MS = 1000;
/** The cool-down of a circuit that keeps failing its probes doubles up to this. */
export const MAX_COOLDOWN_SECONDS = 3600;
/** A delivery admitted by its gate holds its place this long past its timeout, should it never be settled. */
export const LEASE_MARGIN_MS = 31_000;
/** "Recovered" needs this many successes in a row, or a success QUIET_MS after the last failure. */
export const RECOVERY_SUCCESSES = 5;
export const QUIET_MS = 5 * 60_000;
/** One alert of a type per destination within this long; one due meanwhile is sent when it ends, if still true. */
export const ALERT_TYPE_COOLDOWN_MS = 15 * 60_000;
/**
 * The breaker also opens when FAILURE_RATIO (three quarters) of the last 2 × circuit.failures attempts failed, all within
 * RATIO_WINDOW_MS: a receiver failing now and then (30 % say) never gets there by chance, one that fails five
 * times between two successes does.
 */
export const RATIO_WINDOW_MS = 10 * 60_000;
export const FAILURE_RATIO = 0.75;

export interface Limits {
  /** Milliseconds between two requests (from `rateLimit`), or none. */
  intervalMs?: number;
  concurrency?: number;
  circuit: false | { failures: number; cooldownSeconds: number };
}

export function limitsOf(destination: Destination | undefined): Limits {
  const rate = destination?.rateLimit;
  return {
    ...(rate?.perSecond !== undefined && { intervalMs: 1000 / rate.perSecond }),
    ...(rate?.perMinute !== undefined && { intervalMs: 60_000 / rate.perMinute }),
    ...(destination?.concurrency !== undefined && { concurrency: destination.concurrency }),
    circuit: destination === undefined ? DEFAULT_CIRCUIT : destination.circuit,
  };
}

/**
 * Whether every delivery to a destination must be admitted by its gate: it has limits, or shapes its deliveries
 * (`order`, `coalesce`, or routes that coalesce for it, which its deliveries say themselves).
 */
export function isLimited(destination: Destination): boolean {
  return (
    destination.rateLimit !== undefined ||
    destination.concurrency !== undefined ||
    destination.order !== undefined ||
    destination.coalesce !== undefined
  );
}

export interface Pause {
  by: "circuit" | "hand";
  at: number;
  /** By hand: who, and the activity log's row. */
  actor?: string;
  activity?: number;
  /** By the circuit: when the probe may go out. */
  probeAt?: number;
  cooldownSeconds?: number;
}

export interface GateState {
  /** Failed attempts in a row, and when the first of them was made. */
  failures: number;
  failingSince?: number;
  lastFailureAt?: number;
  lastStatus?: number;
  lastError?: string;
  lastSuccessAt?: number;
  pause?: Pause;
  /**
   * What this episode (failing, paused) has alerted already: one alert per episode. An episode ends only when
   * the destination has recovered (RECOVERY_SUCCESSES in a row, or a quiet spell), not at its first success.
   */
  alerted: { failing?: true; paused?: true };
  /** Successes in a row. */
  successes?: number;
  /** When this episode's trouble began (its first failure), kept across the successes in between. */
  troubleSince?: number;
  /** The recent attempts, for the failure ratio: [when, 1 failed | 0 succeeded], at most 2 × circuit.failures. */
  recent?: [number, 0 | 1][];
  /** When each alert type was last sent, and those held back by their cool-down (ALERT_TYPE_COOLDOWN_MS). */
  sentAt?: Partial<Record<GateEvent["type"], number>>;
  deferred?: GateEvent[];
  /** The earliest time the next request may go out under `rateLimit`. */
  nextSlotAt: number;
  /** Requests in flight (lease → when it expires, should its holder never settle it). */
  leases: Record<string, number>;
  /** The lease of the probe in flight. */
  probe?: string;
  /** Failed attempts of this episode, successes in between included. */
  episodeFailures?: number;
  /** Dead letters since the last deliveries_dead alert. */
  dead: {
    count: number;
    firstAt?: number;
    lastAt?: number;
    reason?: string;
    lastStatus?: number;
    lastError?: string;
    alertedAt?: number;
  };
}

export const freshState = (): GateState => ({
  failures: 0,
  alerted: {},
  nextSlotAt: 0,
  leases: {},
  dead: { count: 0 },
});

export type GateStatus = "active" | "paused" | "probing";

export function statusOf(state: GateState, now: number): GateStatus {
  if (state.pause === undefined) return "active";
  if (state.pause.by === "circuit" && now >= (state.pause.probeAt ?? 0)) return "probing";
  return "paused";
}

export type Admission = { go: { lease: string; at: number; probe: boolean } } | { held: HeldReason };

/**
 * May one delivery go? `ahead`: deliveries held before it (a newcomer waits behind them). Admitting reserves
 * its rate slot and a lease in `state`.
 */
export function admit(
  state: GateState,
  limits: Limits,
  now: number,
  ahead: number,
  leaseMs: number,
  newLease: () => string,
  maxWaitMs = MAX_WAIT_MS,
): Admission {
  expireLeases(state, now);
  const status = statusOf(state, now);
  if (status === "paused") return { held: state.pause?.by === "hand" ? "paused" : "circuit_open" };
  if (status === "probing") {
    // One probe at a time, and it is the oldest delivery held.
    if (state.probe !== undefined || ahead > 0) return { held: "circuit_open" };
  } else if (ahead > 0) return { held: "in_line" };
  if (limits.concurrency !== undefined && Object.keys(state.leases).length >= limits.concurrency) {
    return { held: "concurrency" };
  }
  let at = now;
  if (limits.intervalMs !== undefined) {
    at = Math.max(now, state.nextSlotAt);
    if (at - now > maxWaitMs) return { held: "rate_limit" };
    state.nextSlotAt = at + limits.intervalMs;
  }
  const lease = newLease();
  state.leases[lease] = at + leaseMs;
  const probe = status === "probing";
  if (probe) state.probe = lease;
  return { go: { lease, at, probe } };
}

/** Leases whose holder never settled them (it crashed) free their place once they expire. */
export function expireLeases(state: GateState, now: number): void {
  for (const [lease, until] of Object.entries(state.leases)) {
    if (until <= now) {
      delete state.leases[lease];
      if (state.probe === lease) state.probe = undefined;
    }
  }
}

/** How an attempt ended, for the circuit: `neutral` when no request went out (the relay gave up on it). */
export type GateOutcome = (
  | { kind: "delivered"; at: number }
  | { kind: "failed"; at: number; status?: number | undefined; error?: string | undefined }
  | { kind: "neutral"; at: number }
) & {
  /** Whether the delivery is settled for good (delivered or a dead letter); false while it is retried. */
  final?: boolean;
  /** When its next attempt is due (a retry). */
  retryAt?: number;
};

/** An alert the gate raises; src/gate/gate.ts makes it an Alert with the destination and its held count. */
export interface GateEvent {
  type:
    | "destination_failing"
    | "destination_paused"
    | "destination_recovered"
    | "deliveries_dead"
    | "destination_held_near_cap";
  count: number;
  firstAt: number;
  lastAt: number;
  lastStatus?: number | undefined;
  lastError?: string | undefined;
  reason?: string;
  probeAt?: number;
  /** destination_paused by the failure ratio: the attempts of the window, `count` of them failed. */
  attempts?: number;
  /** destination_paused by hand: who, and the activity log's row of it. */
  actor?: string;
  activity?: number;
}

/** After this many failed attempts in a row destination_failing is raised: a quarter of the circuit's, at least 3. */
export function failingThreshold(limits: Limits): number {
  const failures = limits.circuit === false ? DEFAULT_CIRCUIT.failures : limits.circuit.failures;
  return Math.max(3, Math.floor(failures / 4));
}

/** Applies one attempt's end: frees its lease, counts failures, opens or closes the circuit. */
export function settle(state: GateState, limits: Limits, lease: string | undefined, outcome: GateOutcome): GateEvent[] {
  const wasProbe = lease !== undefined && state.probe === lease;
  if (lease !== undefined) delete state.leases[lease];
  if (wasProbe) state.probe = undefined;
  const now = outcome.at;
  if (outcome.kind === "neutral") return [];
  const windowSize = 2 * (limits.circuit === false ? DEFAULT_CIRCUIT.failures : limits.circuit.failures);
  state.recent = [...(state.recent ?? []), [now, outcome.kind === "failed" ? 1 : 0] as [number, 0 | 1]]
    .filter(([at]) => at > now - RATIO_WINDOW_MS)
    .slice(-windowSize);
  if (outcome.kind === "delivered") {
    state.lastSuccessAt = now;
    state.successes = (state.successes ?? 0) + 1;
    const events: GateEvent[] = [];
    // A success closes the circuit; a pause by hand stays until it is resumed by hand.
    const closes = state.pause?.by === "circuit";
    if (closes) {
      state.pause = undefined;
      state.recent = [];
    }
    state.failures = 0;
    state.failingSince = undefined;
    const open = state.alerted.failing === true || state.alerted.paused === true || closes;
    // A probe that succeeds ends a quiet spell too: the circuit held everything back for its cool-down.
    const quiet = closes || state.lastFailureAt === undefined || now - state.lastFailureAt >= QUIET_MS;
    // Paused by hand, a success in flight recovers nothing yet: that is for the ones after resume.
    if (open && state.pause?.by !== "hand" && (quiet || state.successes >= RECOVERY_SUCCESSES)) {
      // What was held back about this episode has nothing left to say; the recovery does, if it was heard of.
      const heard =
        (state.sentAt?.destination_failing ?? -1) >= (state.troubleSince ?? 0) ||
        (state.sentAt?.destination_paused ?? -1) >= (state.troubleSince ?? 0) ||
        state.alerted.paused === true;
      state.deferred = (state.deferred ?? []).filter(
        (e) => e.type !== "destination_failing" && e.type !== "destination_paused",
      );
      if (heard) {
        events.push(
          ...emit(
            state,
            {
              type: "destination_recovered",
              count: state.episodeFailures ?? 0,
              firstAt: state.troubleSince ?? state.pause?.at ?? now,
              lastAt: now,
              ...(state.lastStatus !== undefined && { lastStatus: state.lastStatus }),
              ...(state.lastError !== undefined && { lastError: state.lastError }),
            },
            now,
          ),
        );
      }
      state.alerted = {};
      state.troubleSince = undefined;
      state.episodeFailures = 0;
    }
    if (state.pause?.by === "hand") state.alerted = { ...state.alerted, paused: true };
    return events;
  }
  const status = statusOf(state, now);
  state.successes = 0;
  state.failures++;
  state.episodeFailures = (state.episodeFailures ?? 0) + 1;
  state.failingSince ??= now;
  state.troubleSince ??= now;
  state.lastFailureAt = now;
  state.lastStatus = outcome.status;
  state.lastError = outcome.error;
  // A new episode: a recovery still held back from the last one is no longer true.
  state.deferred = (state.deferred ?? []).filter((e) => e.type !== "destination_recovered");
  const failing = () => ({
    count: state.failures,
    firstAt: state.failingSince ?? now,
    lastAt: now,
    ...(outcome.status !== undefined && { lastStatus: outcome.status }),
    ...(outcome.error !== undefined && { lastError: outcome.error }),
  });
  const events: GateEvent[] = [];
  const inRow = limits.circuit !== false && state.pause === undefined && state.failures >= limits.circuit.failures;
  const failed = state.recent.filter(([, f]) => f === 1).length;
  const byRatio =
    limits.circuit !== false &&
    state.pause === undefined &&
    !inRow &&
    state.recent.length >= 2 * limits.circuit.failures &&
    failed / state.recent.length >= FAILURE_RATIO;
  const pausesNow = inRow || byRatio;
  // Pausing says all that failing would: one alert, not two at once.
  if (state.pause === undefined && !pausesNow && !state.alerted.failing && state.failures >= failingThreshold(limits)) {
    state.alerted.failing = true;
    events.push(
      ...emit(
        state,
        { type: "destination_failing", ...failing(), ...(limits.circuit === false && { reason: "no_circuit" }) },
        now,
      ),
    );
  }
  if (limits.circuit === false) return events;
  if (status === "probing" && (wasProbe || state.probe === undefined)) {
    // The probe failed: pause again, for twice as long (at most an hour).
    const cooldownSeconds = Math.min(
      MAX_COOLDOWN_SECONDS,
      2 * (state.pause?.cooldownSeconds ?? limits.circuit.cooldownSeconds),
    );
    state.pause = { by: "circuit", at: state.pause?.at ?? now, probeAt: now + cooldownSeconds * 1000, cooldownSeconds };
  } else if (pausesNow) {
    const cooldownSeconds = limits.circuit.cooldownSeconds;
    state.pause = { by: "circuit", at: now, probeAt: now + cooldownSeconds * 1000, cooldownSeconds };
    if (!state.alerted.paused) {
      state.alerted.paused = true;
      events.push(
        ...emit(
          state,
          {
            type: "destination_paused",
            ...failing(),
            ...(byRatio && { count: failed, attempts: state.recent.length, firstAt: state.troubleSince ?? now }),
            reason: byRatio ? "failure_ratio" : "circuit",
            probeAt: state.pause.probeAt!,
          },
          now,
        ),
      );
    }
  }
  return events;
}

/** Sends `event` now, or holds it back until its type's cool-down for this destination ends (replacing an older one). */
function emit(state: GateState, event: GateEvent, now: number): GateEvent[] {
  const last = state.sentAt?.[event.type];
  if (last !== undefined && now < last + ALERT_TYPE_COOLDOWN_MS) {
    state.deferred = [...(state.deferred ?? []).filter((e) => e.type !== event.type), event];
    return [];
  }
  state.sentAt = { ...state.sentAt, [event.type]: now };
  return [event];
}

/** Who paused a destination by hand, and the activity log's row of it (src/ops/destinations.ts). */
export interface PausedBy {
  actor: string;
  activity: number;
}

/** Paused by hand: nothing goes out until it is resumed by hand (no probe). */
export function pauseByHand(state: GateState, now: number, by?: PausedBy): GateEvent[] {
  if (state.pause?.by === "hand") return [];
  const wasPaused = state.pause !== undefined;
  state.pause = { by: "hand", at: now, ...(by !== undefined && { actor: by.actor, activity: by.activity }) };
  state.probe = undefined;
  if (wasPaused) return [];
  state.alerted.paused = true;
  return [
    {
      type: "destination_paused",
      count: state.failures,
      firstAt: now,
      lastAt: now,
      reason: "hand",
      ...(by !== undefined && { actor: by.actor, activity: by.activity }),
      ...(state.lastStatus !== undefined && { lastStatus: state.lastStatus }),
      ...(state.lastError !== undefined && { lastError: state.lastError }),
    },
  ];
}

/**
 * Probe now (by hand): a destination the circuit breaker paused sends its probe at once rather than at the end of
 * its cool-down; true when it was so paused. A pause by hand is ended only by resume.
 */
export function probeNow(state: GateState, now: number): boolean {
  if (state.pause?.by !== "circuit") return false;
  state.pause.probeAt = now;
  return true;
}

/**
 * Resumed by hand: the circuit closes and its count starts again; the first success after it raises
 * destination_recovered when the episode had alerted.
 */
export function resume(state: GateState): void {
  state.pause = undefined;
  state.probe = undefined;
  state.failures = 0;
  state.failingSince = undefined;
  state.recent = [];
}

/**
 * Counts dead letters; raises deliveries_dead at once when none was raised within the cool-down, else when it
 * ends (flushDead), with everything counted since.
 */
export function noteDead(
  state: GateState,
  dead: { count: number; at: number; reason: string; lastStatus?: number | undefined; lastError?: string | undefined },
  cooldownMs: number,
  now: number,
): GateEvent[] {
  const d = state.dead;
  d.count += dead.count;
  d.firstAt ??= dead.at;
  d.lastAt = Math.max(d.lastAt ?? 0, dead.at);
  d.reason = dead.reason;
  d.lastStatus = dead.lastStatus;
  d.lastError = dead.lastError;
  return flushDeadLetters(state, cooldownMs, now);
}

/**
 * The alerts due now (the gate's alarm calls this): the dead letters counted since the last deliveries_dead
 * alert once its cool-down is over, and the alerts their type's cool-down held back (ALERT_TYPE_COOLDOWN_MS).
 */
export function flushDead(state: GateState, cooldownMs: number, now: number): GateEvent[] {
  const due = (state.deferred ?? []).filter((e) => now >= (state.sentAt?.[e.type] ?? 0) + ALERT_TYPE_COOLDOWN_MS);
  state.deferred = (state.deferred ?? []).filter((e) => !due.includes(e));
  for (const event of due) state.sentAt = { ...state.sentAt, [event.type]: now };
  return [
    ...due.map((e) => ({ ...e, lastAt: Math.max(e.lastAt, state.lastFailureAt ?? 0) })),
    ...flushDeadLetters(state, cooldownMs, now),
  ];
}

function flushDeadLetters(state: GateState, cooldownMs: number, now: number): GateEvent[] {
  const d = state.dead;
  if (d.count === 0 || (d.alertedAt !== undefined && now < d.alertedAt + cooldownMs)) return [];
  const event: GateEvent = {
    type: "deliveries_dead",
    count: d.count,
    firstAt: d.firstAt ?? now,
    lastAt: d.lastAt ?? now,
    ...(d.reason !== undefined && { reason: d.reason }),
    ...(d.lastStatus !== undefined && { lastStatus: d.lastStatus }),
    ...(d.lastError !== undefined && { lastError: d.lastError }),
  };
  state.dead = { count: 0, alertedAt: now };
  return [event];
}

/** When the next alert is due (flushDead): grouped dead letters, or one its type's cool-down held back. */
export function deadDueAt(state: GateState, cooldownMs: number): number | undefined {
  const times = (state.deferred ?? []).map((e) => (state.sentAt?.[e.type] ?? 0) + ALERT_TYPE_COOLDOWN_MS);
  if (state.dead.count > 0) times.push((state.dead.alertedAt ?? 0) + cooldownMs);
  return times.length === 0 ? undefined : Math.min(...times);
}
