import { DurableObject } from "cloudflare:workers";
import {
  attemptRecord,
  deadLetterOf,
  decide,
  destinationOf,
  logVerdict,
  MAX_CONNECTIONS,
  nextAttempt,
  Slots,
  type Verdict,
} from "../delivery/attempt.ts";
import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { type HandedRecord, handToLedger } from "../ledger/handoff.ts";
import { log } from "../log.ts";
import {
  type Alert,
  type DeliveryMessage,
  decodeMessage,
  encodeMessage,
  type HeldReason,
  readDeliveryMessage,
} from "../queues.ts";
import type { Destination } from "../rules/schema.ts";
import { loadRules } from "../rules/store.ts";
import { consumerSettings, type Settings } from "../settings.ts";
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
  type GateStatus,
  LEASE_MARGIN_MS,
  type Limits,
  limitsOf,
  noteDead,
  pauseByHand,
  resume,
  settle,
  statusOf,
} from "./policy.ts";

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

/** One delivery the consumer asks the gate about, with its message (kept by the gate when it is held). */
export interface AdmitItem {
  deliveryId: string;
  run: number;
  attempts: number;
  text: string;
}

export type AdmitResult = { go: { lease: string; at: number; probe: boolean } } | { held: HeldReason };

/** A pump (one alarm) sends what is held for at most this long, then hands over to the next alarm. */
const PUMP_MS = 20_000;
/** While paused by hand with deliveries held, the gate looks at the rules this often (a removed destination). */
const PAUSED_CHECK_MS = 10 * 60_000;
/** The alarm that restarts a pump should the instance that ran it go away. */
const BACKSTOP_MS = 30_000;
/** After a pump that could send nothing, the next try. */
const IDLE_RETRY_MS = 5000;
/** After a held delivery's retry or dead letter could not be enqueued, the pump rests this long. */
const SETTLE_RETRY_MS = 30_000;
/** An alert that could not be enqueued is tried again after this long. */
const OUTBOX_RETRY_MS = 30_000;
/** Attempt records of a pump go to the ledger at least this often, and in batches of at most 100. */
const LEDGER_FLUSH_MS = 2000;

/**
 * A destination's gate (docs/flow-control.md): the one place that decides, for the whole relay, whether a
 * delivery to it may go now. It enforces `rateLimit` and `concurrency`, runs the circuit breaker and pauses by
 * hand, keeps what it holds back in its own storage in arrival order, and sends that itself when there is room
 * again (its alarm). It raises the destination's alerts. Named by the destination's id.
 */
export class DestinationGate extends DurableObject<Env> {
  private state: GateState = freshState();
  private name = "";
  private heldCount = 0;
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

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      ctx.storage.sql.exec(`CREATE TABLE IF NOT EXISTS held (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id TEXT NOT NULL,
        run INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        text TEXT NOT NULL,
        reason TEXT NOT NULL,
        at INTEGER NOT NULL,
        UNIQUE (delivery_id, run, attempts)
      )`);
      const saved = ctx.storage.kv.get<{ name: string; state: GateState; outbox?: Alert[] }>("gate");
      if (saved !== undefined) {
        this.name = saved.name;
        this.state = saved.state;
        this.outbox = saved.outbox ?? [];
      }
      this.heldCount = ctx.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM held").one().n;
    });
  }

  /** May these deliveries (in arrival order) go now? Those that may not are kept here, in order. */
  async admit(name: string, items: AdmitItem[], leaseMs: number): Promise<{ results: AdmitResult[]; view: GateView }> {
    const limits = await this.refresh(name);
    const now = Date.now();
    const results: AdmitResult[] = [];
    for (const item of items) {
      const answer = admit(this.state, limits, now, this.heldCount, leaseMs, newLease, CONSUMER_WAIT_MS);
      if ("held" in answer) this.hold(item, answer.held, now);
      results.push(answer);
    }
    this.wake?.();
    this.save();
    this.schedule();
    return { results, view: this.view(now) };
  }

  /** How an admitted delivery (or, without a lease, any delivery to an unlimited destination) ended. */
  async settle(name: string, lease: string | undefined, outcome: GateOutcome): Promise<GateView> {
    const limits = await this.refresh(name);
    this.apply(settle(this.state, limits, lease, outcome));
    return this.view(Date.now());
  }

  async status(name: string): Promise<GateView> {
    await this.refresh(name);
    return this.view(Date.now());
  }

  async pause(name: string): Promise<GateView> {
    await this.refresh(name);
    this.apply(pauseByHand(this.state, Date.now()));
    log("warn", "destination_paused", { destination: name, by: "hand" });
    return this.view(Date.now());
  }

  async resume(name: string): Promise<GateView> {
    await this.refresh(name);
    resume(this.state);
    this.idle = false;
    this.apply([]);
    log("info", "destination_resumed", { destination: name, by: "hand", held: this.heldCount });
    return this.view(Date.now());
  }

  /** Dead letters of this destination (from the dead-letter consumer), for deliveries_dead. */
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
      const events = flushDead(this.state, this.cooldownMs(), now);
      await this.flushOutbox();
      this.apply(events);
      if (this.heldCount > 0) this.idle = !(await this.pump(now + PUMP_MS));
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
      const settings = consumerSettings(this.env);
      const destinations = (await loadRules(this.env.RULES, settings.RULES_CACHE_SECONDS)).rules.destinations;
      return destinationOf(destinations, this.name);
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
      held: this.heldCount,
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
    this.ctx.storage.kv.put("gate", { name: this.name, state: this.state, outbox: this.outbox });
  }

  private hold(item: AdmitItem, reason: HeldReason, now: number): void {
    const cursor = this.ctx.storage.sql.exec(
      "INSERT OR IGNORE INTO held (delivery_id, run, attempts, text, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
      item.deliveryId,
      item.run,
      item.attempts,
      item.text,
      reason,
      now,
    );
    this.heldCount += cursor.rowsWritten > 0 ? 1 : 0;
  }

  /** The one alarm: the pump when something held can go, the probe, grouped dead letters, the outbox. */
  private schedule(): void {
    const now = Date.now();
    const times: number[] = [];
    const status = statusOf(this.state, now);
    if (this.heldCount > 0) {
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
    if (this.state.pause?.probeAt !== undefined && this.heldCount > 0) times.push(this.state.pause.probeAt);
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

  // --- alerts ---

  private raise(event: GateEvent): void {
    const alert: Alert = {
      id: `${this.name}:${event.type}:${event.firstAt}`,
      destination: this.name,
      held: this.heldCount,
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
        await this.env.ALERTS.send(encodeMessage({ kind: "alert", alert, tries: 0 }), { contentType: "text" });
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
    const running = new Set<Promise<void>>();
    const records: HandedRecord[] = [];
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
        const row = this.nextRow();
        if (row === undefined) {
          if (running.size === 0) break;
          // Sends are still out: stay for what arrives meanwhile rather than wait for the next alarm.
          await Promise.race([...running, this.changed(100)]);
          continue;
        }
        let destinations: Record<string, Destination>;
        try {
          destinations = (await loadRules(this.env.RULES, settings.RULES_CACHE_SECONDS)).rules.destinations;
        } catch {
          break;
        }
        const destination = destinationOf(destinations, this.name);
        const limits = (this.limits = limitsOf(destination));
        const now = Date.now();
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
        this.save();
        progressed = true;
        this.sending.add(row.seq);
        const sent = this.sendHeld(row, admitted.go, destinations, settings, slots, records).finally(() => {
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
    }
    return progressed;
  }

  private nextRow(): { seq: number; text: string } | undefined {
    const rows = this.ctx.storage.sql
      .exec<{ seq: number; text: string }>("SELECT seq, text FROM held ORDER BY seq LIMIT ?", this.sending.size + 1)
      .toArray();
    return rows.find((row) => !this.sending.has(row.seq));
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

  /** Sends one held delivery as its next attempt, then settles it like the consumer settles a message. */
  private async sendHeld(
    row: { seq: number; text: string },
    go: { lease: string; at: number },
    destinations: Record<string, Destination>,
    settings: Settings,
    slots: Slots,
    records: HandedRecord[],
  ): Promise<void> {
    const wait = go.at - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const delivery = readDeliveryMessage(decodeMessage(row.text));
    const attempt = (delivery?.attempts ?? 0) + 1;
    const at = Date.now();
    const verdict = await decide(delivery, attempt, this.env, settings, destinations, slots);
    this.apply(settle(this.state, this.limits, go.lease, gateOutcome(verdict, Date.now())));
    logVerdict(delivery, attempt, verdict);
    if (delivery !== undefined) records.push(attemptRecord(delivery, attempt, at, verdict));
    try {
      await this.finish(row, delivery, attempt, verdict, records);
    } catch (error) {
      // Kept, with the attempt counted, first in line: the pump rests a while rather than send it again at once
      // (its retry delay skipped, a dead one sent again and again) while the queues do not take it.
      log("error", "held_delivery_not_settled", { deliveryId: delivery?.deliveryId, error: describe(error) });
      this.restUntil = Date.now() + SETTLE_RETRY_MS;
      if (delivery !== undefined) this.rehold(row.seq, delivery, attempt, "in_line");
    }
  }

  private async finish(
    row: { seq: number; text: string },
    delivery: DeliveryMessage | undefined,
    attempt: number,
    verdict: Verdict,
    records: HandedRecord[],
  ): Promise<void> {
    if (verdict.kind === "retry" && delivery !== undefined) {
      const status = statusOf(this.state, Date.now());
      if (status !== "active") {
        // Paused by this failure (or a failed probe): it waits here, first in line, with its attempt counted.
        const reason: HeldReason = this.state.pause?.by === "hand" ? "paused" : "circuit_open";
        this.rehold(row.seq, delivery, attempt, reason);
        records.push({ ...heldFields(delivery), attempts: attempt, at: Date.now(), reason });
        return;
      }
      await this.env.DELIVERIES.send(nextAttempt(delivery, attempt), {
        contentType: "text",
        delaySeconds: verdict.delaySeconds,
      });
    } else if (verdict.kind === "dead") {
      const record = deadLetterOf(delivery, attempt, verdict, {
        id: `held.${row.seq}`,
        timestamp: new Date(),
        raw: row.text,
      });
      await this.env.DEAD_LETTERS.send(encodeMessage(record), { contentType: "text" });
    }
    this.ctx.storage.sql.exec("DELETE FROM held WHERE seq = ?", row.seq);
    this.heldCount--;
  }

  private rehold(seq: number, delivery: DeliveryMessage, attempts: number, reason: HeldReason): void {
    try {
      this.ctx.storage.sql.exec(
        "UPDATE held SET text = ?, attempts = ?, reason = ? WHERE seq = ?",
        nextAttempt(delivery, attempts),
        attempts,
        reason,
        seq,
      );
    } catch {
      // The same attempt is held twice (a redelivered message): keep the other copy.
      this.ctx.storage.sql.exec("DELETE FROM held WHERE seq = ?", seq);
      this.heldCount--;
    }
  }
}

/** How an attempt counts for the circuit: only a request that went out and failed is a failure. */
export function gateOutcome(verdict: Verdict, at: number): GateOutcome {
  if (verdict.kind === "delivered") return { kind: "delivered", at };
  if (!verdict.sent) return { kind: "neutral", at };
  return { kind: "failed", at, status: verdict.fields.status, error: verdict.fields.error ?? verdict.fields.reason };
}

/** The fields of a held record that come from its delivery message. */
export function heldFields(delivery: DeliveryMessage) {
  return {
    kind: "held" as const,
    deliveryId: delivery.deliveryId,
    destination: delivery.destination,
    callId: delivery.callId,
    routes: delivery.routes,
    indices: delivery.indices,
    receivedAt: delivery.receivedAt,
    run: delivery.run ?? 0,
  };
}

const newLease = (): string => crypto.randomUUID();
