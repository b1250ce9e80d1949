import { DurableObject } from "cloudflare:workers";
import {
  type ForwardContext,
  forward,
  type Holder,
  heldRecord,
  SETTLE_RETRY_SECONDS,
  supersededBy,
} from "../delivery/forward.ts";
import { httpSender, type Sender } from "../delivery/senders.ts";
import { CLAIMED_MEMORY_BYTES, MAX_CONNECTIONS, Slots } from "../delivery/slots.ts";
import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { handToLedger } from "../ledger/handoff.ts";
import { log } from "../log.ts";
import type { Alert } from "../queues/alert.ts";
import { decodeMessage } from "../queues/codec.ts";
import { readDelivery } from "../queues/delivery.ts";
import type { HeldReason, LedgerRecord, SupersededRecord } from "../queues/ledger.ts";
import { requeueDelivery, sendAlert, sendDeadLetter } from "../queues/send.ts";
import { currentDestinations, currentRules, destinationOf } from "../rules/destinations.ts";
import type { Destination } from "../rules/schema.ts";
import { consumerSettings } from "../settings.ts";
import type { AdmitResult, GateApi, GateView } from "./client.ts";
import { type HeldItem, type HeldRow, HeldRows, nearCap } from "./held.ts";
import {
  admit,
  CONSUMER_WAIT_MS,
  deadDueAt,
  expireLeases,
  flushDead,
  freshState,
  type GateEvent,
  type GateOutcome,
  type GateState,
  LEASE_MARGIN_MS,
  type Limits,
  limitsOf,
  noteDead,
  type PausedBy,
  pauseByHand,
  probeNow,
  resume,
  settle,
  statusOf,
} from "./policy.ts";
import { inAcceptedOrder, ownerOf, Shaper } from "./shaping.ts";

/** A pump (one alarm) sends what is held for at most this long, then hands over to the next alarm. */
const PUMP_MS = 20_000;
/** While paused by hand with deliveries held, the gate looks at the rules this often (a removed destination). */
const PAUSED_CHECK_MS = 10 * 60_000;
/** The alarm that restarts a pump should the instance that ran it go away. */
const BACKSTOP_MS = 30_000;
/** After a pump that could send nothing, the next try. */
const IDLE_RETRY_MS = 5000;
/** An alert that could not be enqueued is tried again after this long. */
const OUTBOX_RETRY_MS = 30_000;
/** Attempt records of a pump go to the ledger at least this often, and in batches of at most 100. */
const LEDGER_FLUSH_MS = 2000;

/**
 * A destination's gate (docs/flow-control.md): the one place that decides, for the whole relay, whether a
 * delivery to it may go now. It enforces `rateLimit` and `concurrency`, runs the circuit breaker and pauses by
 * hand, keeps what it holds back in its own storage in arrival order (src/gate/held.ts), and sends that itself
 * when there is room again (its pump, through forward() as the consumer does). It raises the destination's
 * alerts (its outbox). Named by the destination's id.
 */
export class DestinationGate extends DurableObject<Env> implements GateApi {
  private state: GateState = freshState();
  private name = "";
  private held!: HeldRows;
  /** Order per business key and coalescing (src/gate/shaping.ts), over the same storage. */
  private shaper!: Shaper;
  /** Alerts not yet on the alerts queue. */
  private outbox: Alert[] = [];
  private pumping = false;
  /** Until then the pump sends nothing: settling a held delivery failed (its queue did not take it). */
  private restUntil = 0;
  /** The last pump sent nothing although something was held. */
  private idle = false;
  /** Rows the pump is sending now. */
  private readonly sending = new Set<number>();
  private wake: (() => void) | undefined;
  private limits: Limits = limitsOf(undefined);
  /** The alarm last set (this instance's memory; setting it again is harmless). */
  private alarmAt: number | undefined;
  private flushing = false;
  /** The held deliveries are near their cap, and that was alerted (src/gate/held.ts). */
  private nearCap = false;
  /** The cap the last consumer asked with (its MAX_HELD_PER_DESTINATION). */
  private cap: number | undefined;
  /** How the pump's requests go out (tests hand in their own). */
  sender: Sender = httpSender;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.held = new HeldRows(ctx.storage.sql);
      this.shaper = new Shaper(ctx.storage.sql, this.held);
      const saved = ctx.storage.kv.get<{ name: string; state: GateState; outbox?: Alert[]; nearCap?: boolean }>("gate");
      if (saved !== undefined) {
        this.name = saved.name;
        this.state = saved.state;
        this.nearCap = saved.nearCap ?? false;
        this.outbox = saved.outbox ?? [];
      }
    });
  }

  async admit(
    name: string,
    items: HeldItem[],
    leaseMs: number,
    cap: number,
  ): Promise<{ results: AdmitResult[]; view: GateView }> {
    const limits = await this.refresh(name);
    const now = Date.now();
    const results: AdmitResult[] = new Array(items.length);
    this.cap = cap;
    // Never a silent drop: what the gate cannot hold becomes a dead letter, named so (src/delivery/consumer.ts).
    const full = (): AdmitResult => ({ full: { held: this.held.count, cap } });
    for (const i of inAcceptedOrder(items)) {
      const item = items[i]!;
      if (item.coalesce !== undefined && item.attempts === 0 && this.held.count >= cap) {
        results[i] = full();
        continue;
      }
      const shaped = this.shaper.arrive(item, now);
      if ("superseded" in shaped) {
        results[i] = { superseded: shaped.superseded };
        continue;
      }
      if ("held" in shaped && shaped.held === "coalescing") {
        results[i] = { held: "coalescing" };
        continue;
      }
      if ("held" in shaped) {
        if (this.held.count >= cap) results[i] = full();
        else {
          this.held.hold(item, "ordered", now, { waits: shaped.waitsFor });
          results[i] = { held: "ordered", waitsFor: shaped.waitsFor };
        }
        continue;
      }
      const answer = admit(this.state, limits, now, this.held.inLine, leaseMs, newLease, CONSUMER_WAIT_MS);
      if ("held" in answer && this.held.count >= cap) {
        results[i] = full();
        continue;
      }
      if ("held" in answer) this.held.hold(item, answer.held, now);
      else this.shaper.claim(item, answer.go.at + leaseMs);
      results[i] = answer;
    }
    this.checkCap(cap, now);
    this.wake?.();
    this.save();
    this.schedule();
    return { results, view: this.view(now) };
  }

  async settle(name: string, lease: string | undefined, outcome: GateOutcome, owner?: string): Promise<GateView> {
    const limits = await this.refresh(name);
    if (owner !== undefined) this.ordered(owner, outcome);
    this.apply(settle(this.state, limits, lease, outcome));
    return this.view(Date.now());
  }

  async status(name: string): Promise<GateView> {
    await this.refresh(name);
    return this.view(Date.now());
  }

  async pause(name: string, by?: PausedBy): Promise<GateView> {
    await this.refresh(name);
    this.apply(pauseByHand(this.state, Date.now(), by));
    log("warn", "destination_paused", { destination: name, by: "hand" });
    return this.view(Date.now());
  }

  async probe(name: string): Promise<GateView & { probed: boolean }> {
    await this.refresh(name);
    const probed = probeNow(this.state, Date.now());
    if (probed) {
      this.idle = false;
      log("info", "destination_probe", { destination: name, by: "hand", held: this.held.count });
    }
    this.apply([]);
    return { ...this.view(Date.now()), probed };
  }

  async resume(name: string): Promise<GateView> {
    await this.refresh(name);
    resume(this.state);
    this.idle = false;
    this.apply([]);
    log("info", "destination_resumed", { destination: name, by: "hand", held: this.held.count });
    return this.view(Date.now());
  }

  async dead(
    name: string,
    dead: { count: number; at: number; reason: string; lastStatus?: number; lastError?: string },
  ): Promise<void> {
    await this.refresh(name);
    const now = Date.now();
    this.apply(noteDead(this.state, dead, this.cooldownMs(), now));
  }

  override async alarm(): Promise<void> {
    this.alarmAt = undefined;
    try {
      const now = Date.now();
      expireLeases(this.state, now);
      this.shaper.expire(now);
      const events = flushDead(this.state, this.cooldownMs(), now);
      await this.flushOutbox();
      this.apply(events);
      if (this.held.count > 0) this.idle = !(await this.pump(now + PUMP_MS));
    } catch (error) {
      log("error", "gate_alarm_failed", { destination: this.name, error: describe(error) });
    } finally {
      this.save();
      this.schedule();
    }
  }

  // --- the state ---

  /** The destination's current limits from the rules (cached by loadRules); the last known when unreadable. */
  private async refresh(name: string): Promise<Limits> {
    this.name = name;
    const destination = await this.destination();
    if (destination !== null) this.limits = limitsOf(destination);
    return this.limits;
  }

  /** The destination in the current rules; undefined when it is gone, null when the rules cannot be read. */
  private async destination(): Promise<Destination | undefined | null> {
    try {
      return destinationOf(await currentDestinations(this.env, consumerSettings(this.env)), this.name);
    } catch {
      return null;
    }
  }

  private cooldownMs(): number {
    return consumerSettings(this.env).ALERT_COOLDOWN_MINUTES * 60_000;
  }

  private view(now: number): GateView {
    const s = this.state;
    const pause = s.pause;
    return {
      status: statusOf(s, now),
      ...(pause !== undefined && { pausedBy: pause.by, pausedAt: pause.at }),
      ...(pause?.probeAt !== undefined && { probeAt: pause.probeAt }),
      ...(pause?.cooldownSeconds !== undefined && { cooldownSeconds: pause.cooldownSeconds }),
      failures: s.failures,
      ...(s.failingSince !== undefined && { failingSince: s.failingSince }),
      held: this.held.count,
      inFlight: Object.keys(s.leases).length,
      ...(s.lastStatus !== undefined && { lastStatus: s.lastStatus }),
      ...(s.lastError !== undefined && { lastError: s.lastError }),
      ...(s.lastFailureAt !== undefined && { lastFailureAt: s.lastFailureAt }),
      ...(s.lastSuccessAt !== undefined && { lastSuccessAt: s.lastSuccessAt }),
    };
  }

  /** After a change: raise its alerts, keep the state, wake the pump, set the alarm. */
  private apply(events: GateEvent[]): void {
    for (const event of events) this.raise(event);
    this.save();
    this.wake?.();
    this.schedule();
  }

  private save(): void {
    this.ctx.storage.kv.put("gate", { name: this.name, state: this.state, outbox: this.outbox, nearCap: this.nearCap });
  }

  /** The one alarm: the pump when something held can go, the probe, grouped dead letters, the outbox. */
  private schedule(): void {
    const now = Date.now();
    const times: number[] = [];
    const status = statusOf(this.state, now);
    // Rows waiting for their key are woken when it is freed; for their window, by the alarm at its end.
    const ready = this.held.count > 0 && this.held.anyReady(now);
    const due = this.held.count > 0 ? this.held.nextDue(now) : undefined;
    if (due !== undefined) times.push(due);
    if (this.held.count > this.held.inLine) {
      const lapse = this.shaper.nextExpiry();
      if (lapse !== undefined) times.push(lapse);
    }
    if (ready) {
      if (status === "paused") {
        if (this.state.pause?.by === "hand") times.push(now + PAUSED_CHECK_MS);
      } else if (this.idle) {
        // The last pump could send nothing (the rules unreadable, say): try again in a while, not in a loop.
        times.push(now + IDLE_RETRY_MS);
      } else if (now < this.restUntil) {
        times.push(this.restUntil);
      } else {
        // Sent at once by a pump in this instance; the alarm is the backstop should the instance go away.
        this.startPump();
        times.push(now + BACKSTOP_MS);
      }
    }
    if (this.state.pause?.probeAt !== undefined && this.held.count > 0) times.push(this.state.pause.probeAt);
    const dead = deadDueAt(this.state, this.cooldownMs());
    if (dead !== undefined) times.push(dead);
    if (this.outbox.length > 0) times.push(now + OUTBOX_RETRY_MS);
    if (times.length === 0) return;
    // The earliest of what is needed now (a later one than before when a sooner need went away).
    const at = Math.max(now, Math.min(...times));
    if (at === this.alarmAt) return;
    this.alarmAt = at;
    void this.ctx.storage.setAlarm(at);
  }

  /** Starts the pump now, unless one runs; when it ends, the next step is scheduled. */
  private startPump(): void {
    if (this.pumping) return;
    this.ctx.waitUntil(
      this.pump(Date.now() + PUMP_MS)
        .then((progressed) => {
          this.idle = !progressed;
        })
        .catch((error: unknown) => {
          this.idle = true;
          log("error", "gate_pump_failed", { destination: this.name, error: describe(error) });
        })
        .finally(() => {
          this.save();
          this.schedule();
        }),
    );
  }

  /** destination_held_near_cap once the held deliveries reach 80 % of the cap; again after they fell under 50 %. */
  private checkCap(cap: number, now: number): void {
    const near = nearCap(this.held.count, cap, this.nearCap);
    if (near && !this.nearCap) {
      this.raise({
        type: "destination_held_near_cap",
        count: this.held.count,
        firstAt: now,
        lastAt: now,
        reason: String(cap),
      });
    }
    this.nearCap = near;
  }

  /** An owner of business keys settled: what waited for its keys may go, at once (not after an idle pause). */
  private ordered(owner: string, outcome: GateOutcome): void {
    const woken = this.shaper.settled(owner, outcome.final !== false, outcome.retryAt, outcome.at);
    if (woken.length > 0) this.idle = false;
  }

  // --- alerts ---

  private raise(event: GateEvent): void {
    const alert: Alert = {
      id: `${this.name}:${event.type}:${event.firstAt}`,
      destination: this.name,
      held: this.held.count,
      ...event,
    };
    log("warn", "alert_raised", { type: alert.type, destination: this.name, count: alert.count });
    this.outbox.push(alert);
    void this.flushOutbox();
  }

  private async flushOutbox(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      await this.sendOutbox();
    } finally {
      this.flushing = false;
    }
  }

  private async sendOutbox(): Promise<void> {
    while (this.outbox.length > 0) {
      const alert = this.outbox[0]!;
      try {
        await sendAlert(this.env.ALERTS, { kind: "alert", alert, tries: 0 });
      } catch (error) {
        log("warn", "alert_enqueue_failed", { type: alert.type, destination: this.name, error: describe(error) });
        this.save();
        this.schedule();
        return;
      }
      this.outbox = this.outbox.filter((a) => a !== alert);
      this.save();
    }
  }

  // --- the pump: what was held, in arrival order ---

  /** Sends what is held, in order, while there is room, until `deadline`; whether it sent anything. */
  private async pump(deadline: number): Promise<boolean> {
    if (this.pumping) return true;
    this.pumping = true;
    let progressed = false;
    const settings = consumerSettings(this.env);
    const slots = new Slots(MAX_CONNECTIONS);
    const memory = new Slots(CLAIMED_MEMORY_BYTES);
    const running = new Set<Promise<void>>();
    const records: LedgerRecord[] = [];
    let flushedAt = Date.now();
    // Handed on beside the pump, never in its way: a slow ledger queue must not cost rate slots.
    const handing = new Set<Promise<unknown>>();
    const flush = () => {
      const out = records.splice(0);
      flushedAt = Date.now();
      const handed = handToLedger(this.env, out).finally(() => handing.delete(handed));
      handing.add(handed);
    };
    try {
      while (Date.now() < deadline && Date.now() >= this.restUntil) {
        const row = this.held.next(this.sending, Date.now());
        if (row === undefined) {
          if (running.size === 0) break;
          // Sends are still out: stay for what arrives meanwhile rather than wait for the next alarm.
          await Promise.race([...running, this.changed(100)]);
          continue;
        }
        let destinations: Record<string, Destination>;
        let rulesHash: string | undefined;
        try {
          ({ destinations, hash: rulesHash } = await currentRules(this.env, settings));
        } catch {
          break;
        }
        const destination = destinationOf(destinations, this.name);
        const limits = (this.limits = limitsOf(destination));
        const now = Date.now();
        const keys = row.keys === null ? undefined : (JSON.parse(row.keys) as string[]);
        const shape = { deliveryId: row.delivery_id, run: row.run, ...(keys !== undefined && { keys }) };
        // Its key taken by an earlier delivery meanwhile (a retry): it waits for that one, on record.
        const waitsFor = keys === undefined ? undefined : this.shaper.blocker(shape, now, row.seq);
        if (waitsFor !== undefined) {
          this.held.wait(row.seq, waitsFor);
          const delivery = readDelivery(decodeMessage(row.text));
          if (delivery !== undefined)
            records.push(heldRecord(delivery, delivery.attempts ?? 0, now, "ordered", waitsFor));
          continue;
        }
        // A destination removed or disabled meanwhile: what it held ends as dead letters (with the reason), not kept.
        const gone = destination === undefined || !destination.enabled;
        const admitted = gone
          ? { go: { lease: newLease(), at: now, probe: false } }
          : admit(this.state, limits, now, 0, destination.timeoutMs + LEASE_MARGIN_MS, newLease);
        if ("held" in admitted) {
          if (admitted.held === "paused" || admitted.held === "circuit_open") break;
          // Wait for room: a settled lease, or the next rate slot.
          await this.changed(Math.min(1000, Math.max(5, this.state.nextSlotAt - now - 1000 + 1)));
          continue;
        }
        if (keys !== undefined && "go" in admitted) {
          this.shaper.claim(shape, admitted.go.at + (destination?.timeoutMs ?? 0) + LEASE_MARGIN_MS);
        }
        // The latest state of a coalesced thing goes: what it replaced is superseded by it, on record.
        if (row.ckey !== null) {
          for (const text of this.shaper.carried(row.ckey)) {
            const record = supersededRecord(text, row.delivery_id, now);
            if (record !== undefined) records.push(record);
          }
        }
        this.save();
        progressed = true;
        this.sending.add(row.seq);
        const ctx: ForwardContext = {
          env: this.env,
          settings,
          destinations,
          slots,
          memory,
          sender: this.sender,
          ...(rulesHash !== undefined && { rulesHash }),
        };
        const sent = this.sendHeld(row, admitted.go, ctx, records).finally(() => {
          this.sending.delete(row.seq);
          running.delete(sent);
        });
        running.add(sent);
        // The probe's answer decides whether anything else goes.
        if (admitted.go.probe) await sent;
        while (running.size >= MAX_CONNECTIONS) await Promise.race(running);
        if (records.length >= 100 || Date.now() - flushedAt > LEDGER_FLUSH_MS) flush();
      }
      await Promise.all(running);
    } finally {
      flush();
      await Promise.all(handing);
      this.pumping = false;
      if (this.cap !== undefined) this.checkCap(this.cap, Date.now());
    }
    return progressed;
  }

  private changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /** Sends one held delivery as its next attempt, settled through the row that holds it. */
  private async sendHeld(
    row: HeldRow,
    go: { lease: string; at: number },
    ctx: ForwardContext,
    records: LedgerRecord[],
  ): Promise<void> {
    const delivery = readDelivery(decodeMessage(row.text));
    const made = await forward(
      { delivery, holderId: `held.${row.seq}`, raw: row.text, since: new Date(row.at), notBefore: go.at },
      ctx,
      this.rowHolder(row, go.lease),
    );
    records.push(...made);
  }

  /** A held row as the holder of its delivery. */
  private rowHolder(row: HeldRow, lease: string): Holder {
    return {
      done: () => this.held.remove(row.seq),
      retry: async (delivery, attempts, delaySeconds) => {
        if (statusOf(this.state, Date.now()) !== "active") {
          // Paused by this failure (or a failed probe): it waits here, first in line, with its attempt counted.
          const reason: HeldReason = this.state.pause?.by === "hand" ? "paused" : "circuit_open";
          this.held.rehold(row.seq, delivery, attempts, reason);
          return reason;
        }
        await requeueDelivery(this.env.DELIVERIES, delivery, attempts, delaySeconds);
        this.held.remove(row.seq);
        return undefined;
      },
      deadLetter: (record) => sendDeadLetter(this.env.DEAD_LETTERS, record),
      keep: (delivery, attempts) => {
        // Kept, with the attempt counted, first in line: the pump rests a while rather than send it again at once
        // (its retry delay skipped, a dead one sent again and again) while the queues do not take it.
        this.restUntil = Date.now() + SETTLE_RETRY_SECONDS * 1000;
        if (delivery !== undefined) this.held.rehold(row.seq, delivery, attempts, "in_line");
      },
      report: async (outcome) => {
        if (row.keys !== null) this.ordered(ownerOf({ deliveryId: row.delivery_id, run: row.run }), outcome);
        this.apply(settle(this.state, this.limits, lease, outcome));
      },
    };
  }
}

const newLease = (): string => crypto.randomUUID();

/** The ledger's record of a held row that a newer notification about the same thing replaced. */
function supersededRecord(text: string, by: string, at: number): SupersededRecord | undefined {
  const delivery = readDelivery(decodeMessage(text));
  return delivery === undefined ? undefined : supersededBy(delivery, by, at);
}
