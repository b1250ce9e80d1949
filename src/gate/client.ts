import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { log } from "../log.ts";
import type { HeldReason } from "../queues/ledger.ts";
import type { HeldItem } from "./held.ts";
import type { GateOutcome, GateStatus, PausedBy } from "./policy.ts";

/**
 * The consumers' side of the gates. A destination without limits is asked nothing per delivery: each isolate
 * keeps its gate's view for GATE_CACHE_MS and tells the gate only of failures (and of the successes that
 * follow them), so a pause reaches every isolate within that time. A destination with limits asks its gate
 * about every delivery (src/gate/gate.ts).
 */
export const GATE_CACHE_MS = 2000;

/** What a gate tells about its destination: GET /admin/destinations, the console, the consumers' cache. */
export interface GateView {
  status: GateStatus;
  pausedBy?: "circuit" | "hand";
  pausedAt?: number;
  probeAt?: number;
  cooldownSeconds?: number;
  failures: number;
  failingSince?: number;
  held: number;
  inFlight: number;
  lastStatus?: number;
  lastError?: string;
  lastFailureAt?: number;
  lastSuccessAt?: number;
}

export type AdmitResult =
  | { go: { lease: string; at: number; probe: boolean } }
  | { held: HeldReason; waitsFor?: string }
  /** A coalesced notification a newer one about the same thing replaces: it is not sent. */
  | { superseded: string }
  /** Not held: the gate holds its cap already (MAX_HELD_PER_DESTINATION); the delivery becomes a dead letter. */
  | { full: { held: number; cap: number } };

/**
 * A destination's gate as its callers see it (src/gate/gate.ts implements it), so that the consumers and the
 * admin API depend on this interface and not on the Durable Object's module.
 */
export interface GateApi extends Rpc.DurableObjectBranded {
  /**
   * May these deliveries go now? Those that may not are kept by the gate, in order (the order the relay accepted
   * them in). `cap`: the most it may hold (MAX_HELD_PER_DESTINATION); what would pass it is answered `full`.
   */
  admit(
    name: string,
    items: HeldItem[],
    leaseMs: number,
    cap: number,
  ): Promise<{ results: AdmitResult[]; view: GateView }>;
  /**
   * How an admitted delivery (or, without a lease, any delivery to an unlimited destination) ended; `owner`
   * (src/gate/shaping.ts ownerOf) for a delivery with business keys to an ordered destination.
   */
  settle(name: string, lease: string | undefined, outcome: GateOutcome, owner?: string): Promise<GateView>;
  status(name: string): Promise<GateView>;
  pause(name: string, by?: PausedBy): Promise<GateView>;
  /** A destination the circuit breaker paused sends its probe now; `probed` false when it was not so paused. */
  probe(name: string): Promise<GateView & { probed: boolean }>;
  resume(name: string): Promise<GateView>;
  /** Dead letters of this destination (from the dead-letter consumer), for deliveries_dead. */
  dead(
    name: string,
    dead: { count: number; at: number; reason: string; lastStatus?: number; lastError?: string },
  ): Promise<void>;
}

const views = new Map<string, { view: GateView; until: number }>();

export const gateOf = (env: Env, destination: string) => env.GATES.getByName(destination);

/** Forget the cached views (between tests). */
export function resetGateCache(): void {
  views.clear();
}

export function remember(destination: string, view: GateView, now = Date.now()): void {
  views.set(destination, { view, until: now + GATE_CACHE_MS });
}

/** The gate's view of `destination`, at most GATE_CACHE_MS old; undefined when the gate cannot be reached. */
export async function cachedView(env: Env, destination: string, now = Date.now()): Promise<GateView | undefined> {
  const cached = views.get(destination);
  if (cached !== undefined && now < cached.until) return cached.view;
  try {
    const view = await gateOf(env, destination).status(destination);
    remember(destination, view);
    return view;
  } catch (error) {
    log("warn", "gate_unavailable", { destination, error: describe(error) });
    return cached?.view;
  }
}

/** Whether a delivery to an unlimited destination must still be admitted: paused, probing or holding. */
export const mustAdmit = (view: GateView | undefined): boolean =>
  view !== undefined && (view.status !== "active" || view.held > 0);

/** Tells the gate how an attempt ended; logged, never thrown: a gate that cannot be told never fails a delivery. */
export async function report(
  env: Env,
  destination: string,
  lease: string | undefined,
  outcome: GateOutcome,
  owner?: string,
): Promise<void> {
  try {
    remember(destination, await gateOf(env, destination).settle(destination, lease, outcome, owner));
  } catch (error) {
    log("warn", "gate_report_failed", { destination, outcome: outcome.kind, error: describe(error) });
  }
}
