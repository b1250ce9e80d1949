import { describe, expect, it } from "vitest";
import {
  ALERT_TYPE_COOLDOWN_MS,
  admit,
  deadDueAt,
  failingThreshold,
  flushDead,
  freshState,
  type GateState,
  type Limits,
  MAX_COOLDOWN_SECONDS,
  noteDead,
  pauseByHand,
  QUIET_MS,
  RECOVERY_SUCCESSES,
  resume,
  settle,
  statusOf,
} from "../../src/gate/policy.ts";

/** The gate's decisions as pure functions: admission, the circuit and the alerts they raise. */

let leases = 0;
const lease = () => `l${leases++}`;
const LEASE_MS = 40_000;
const T = 1_000_000;
const circuit = (failures: number, cooldownSeconds: number): Limits => ({ circuit: { failures, cooldownSeconds } });
const fail = (at: number, status = 503) => ({ kind: "failed" as const, at, status });

describe("admission", () => {
  it("spaces requests by the rate, admits those within the next second and holds the rest", () => {
    const state = freshState();
    const limits: Limits = { intervalMs: 250, circuit: false };
    const answers = Array.from({ length: 7 }, () => admit(state, limits, T, 0, LEASE_MS, lease));
    const at = answers.map((a) => ("go" in a ? a.go.at - T : a.held));
    expect(at).toEqual([0, 250, 500, 750, 1000, "rate_limit", "rate_limit"]);
    // A second later the next slot is free again.
    expect(admit(state, limits, T + 1000, 0, LEASE_MS, lease)).toMatchObject({ go: { at: T + 1250 } });
  });

  it("holds while the concurrency is used, frees a place when a request is settled or its lease expires", () => {
    const state = freshState();
    const limits: Limits = { concurrency: 2, circuit: false };
    const first = admit(state, limits, T, 0, LEASE_MS, lease);
    admit(state, limits, T, 0, LEASE_MS, lease);
    expect(admit(state, limits, T, 0, LEASE_MS, lease)).toEqual({ held: "concurrency" });
    settle(state, limits, "go" in first ? first.go.lease : undefined, { kind: "delivered", at: T + 10 });
    expect(admit(state, limits, T + 10, 0, LEASE_MS, lease)).toHaveProperty("go");
    expect(admit(state, limits, T + 10, 0, LEASE_MS, lease)).toEqual({ held: "concurrency" });
    // Nobody settled the others: their leases expire and the places come back.
    expect(admit(state, limits, T + LEASE_MS + 10, 0, LEASE_MS, lease)).toHaveProperty("go");
  });

  it("keeps arrival order: a newcomer waits behind what is held", () => {
    expect(admit(freshState(), { circuit: false }, T, 3, LEASE_MS, lease)).toEqual({ held: "in_line" });
  });

  it("holds everything while paused, and sends one probe at a time once the cool-down is over", () => {
    const state = freshState();
    const limits = circuit(2, 60);
    settle(state, limits, undefined, fail(T));
    settle(state, limits, undefined, fail(T + 1));
    expect(statusOf(state, T + 2)).toBe("paused");
    expect(admit(state, limits, T + 2, 0, LEASE_MS, lease)).toEqual({ held: "circuit_open" });
    expect(statusOf(state, T + 1 + 60_000)).toBe("probing");
    // The oldest held delivery is the probe: a newcomer waits while anything is held.
    expect(admit(state, limits, T + 60_001, 1, LEASE_MS, lease)).toEqual({ held: "circuit_open" });
    const probe = admit(state, limits, T + 60_001, 0, LEASE_MS, lease);
    expect(probe).toMatchObject({ go: { probe: true } });
    expect(admit(state, limits, T + 60_001, 0, LEASE_MS, lease)).toEqual({ held: "circuit_open" });
  });

  it("holds for a pause by hand with its own reason, and never probes", () => {
    const state = freshState();
    pauseByHand(state, T);
    expect(admit(state, circuit(20, 1), T + 3_600_000, 0, LEASE_MS, lease)).toEqual({ held: "paused" });
  });
});

describe("the circuit", () => {
  function trip(state: GateState, limits: Limits, times: number, from = T) {
    return Array.from({ length: times }, (_, i) => settle(state, limits, undefined, fail(from + i))).flat();
  }

  it("raises destination_failing once at a quarter of the failures, then destination_paused when it opens", () => {
    const state = freshState();
    const limits = circuit(20, 300);
    expect(failingThreshold(limits)).toBe(5);
    const events = trip(state, limits, 25);
    expect(events.map((e) => [e.type, e.count])).toEqual([
      ["destination_failing", 5],
      ["destination_paused", 20],
    ]);
    expect(events[1]).toMatchObject({ firstAt: T, lastStatus: 503, reason: "circuit", probeAt: T + 19 + 300_000 });
    expect(state.pause).toMatchObject({ by: "circuit", cooldownSeconds: 300 });
  });

  it("raises failing at 3 at least, and only paused when both fall on the same attempt", () => {
    expect(failingThreshold(circuit(4, 1))).toBe(3);
    expect(failingThreshold({ circuit: false })).toBe(5);
    const state = freshState();
    expect(trip(state, circuit(3, 1), 3).map((e) => e.type)).toEqual(["destination_paused"]);
  });

  it("never pauses with circuit false, but alerts once", () => {
    const state = freshState();
    const events = trip(state, { circuit: false }, 50);
    expect(events.map((e) => e.type)).toEqual(["destination_failing"]);
    expect(events[0]?.reason).toBe("no_circuit");
    expect(state.pause).toBeUndefined();
  });

  it("doubles the cool-down when the probe fails, up to an hour, without another alert", () => {
    const state = freshState();
    const limits = circuit(1, 1000);
    trip(state, limits, 1);
    const cooldowns: number[] = [];
    let now = T;
    for (let i = 0; i < 4; i++) {
      now = state.pause!.probeAt!;
      const probe = admit(state, limits, now, 0, LEASE_MS, lease);
      expect(probe).toMatchObject({ go: { probe: true } });
      expect(settle(state, limits, "go" in probe ? probe.go.lease : undefined, fail(now))).toEqual([]);
      cooldowns.push(state.pause!.cooldownSeconds!);
    }
    expect(cooldowns).toEqual([2000, MAX_COOLDOWN_SECONDS, MAX_COOLDOWN_SECONDS, MAX_COOLDOWN_SECONDS]);
    expect(state.pause!.probeAt).toBe(now + MAX_COOLDOWN_SECONDS * 1000);
    // The pause keeps the time it began.
    expect(state.pause!.at).toBe(T);
  });

  it("closes on the probe's success with destination_recovered, and starts counting afresh", () => {
    const state = freshState();
    const limits = circuit(2, 10);
    trip(state, limits, 2);
    const probe = admit(state, limits, T + 20_000, 0, LEASE_MS, lease);
    const events = settle(state, limits, "go" in probe ? probe.go.lease : undefined, {
      kind: "delivered",
      at: T + 20_001,
    });
    expect(events).toEqual([
      { type: "destination_recovered", count: 2, firstAt: T, lastAt: T + 20_001, lastStatus: 503 },
    ]);
    expect(statusOf(state, T + 20_002)).toBe("active");
    expect(state).toMatchObject({ failures: 0, alerted: {} });
    // A new episode alerts again, once the cool-down of that alert type for this destination is over.
    expect(trip(state, limits, 2, T + 30_000)).toEqual([]);
    expect(deadDueAt(state, 3_600_000)).toBe(T + 1 + ALERT_TYPE_COOLDOWN_MS);
    expect(flushDead(state, 3_600_000, T + 1 + ALERT_TYPE_COOLDOWN_MS).map((e) => e.type)).toEqual([
      "destination_paused",
    ]);
  });

  it("raises recovered after failing without a pause, and nothing for a success that follows no alert", () => {
    const state = freshState();
    const limits = circuit(20, 10);
    trip(state, limits, 2);
    expect(settle(state, limits, undefined, { kind: "delivered", at: T + 5 })).toEqual([]);
    trip(state, limits, 6, T + 10);
    for (let i = 1; i < RECOVERY_SUCCESSES; i++) {
      expect(settle(state, limits, undefined, { kind: "delivered", at: T + 20 + i })).toEqual([]);
    }
    expect(settle(state, limits, undefined, { kind: "delivered", at: T + 30 }).map((e) => e.type)).toEqual([
      "destination_recovered",
    ]);
  });

  it("counts neither a neutral end (the relay gave up before sending) nor changes the circuit for it", () => {
    const state = freshState();
    trip(state, circuit(5, 10), 2);
    settle(state, circuit(5, 10), undefined, { kind: "neutral", at: T + 10 });
    expect(state.failures).toBe(2);
  });
});

describe("pause and resume by hand", () => {
  it("pauses with one alert, stays paused through a success in flight, and raises recovered on the first success after resume", () => {
    const state = freshState();
    const limits = circuit(20, 10);
    expect(pauseByHand(state, T).map((e) => [e.type, e.reason])).toEqual([["destination_paused", "hand"]]);
    expect(pauseByHand(state, T + 1)).toEqual([]);
    expect(settle(state, limits, undefined, { kind: "delivered", at: T + 2 })).toEqual([]);
    expect(statusOf(state, T + 3)).toBe("paused");
    resume(state);
    expect(statusOf(state, T + 4)).toBe("active");
    expect(settle(state, limits, undefined, { kind: "delivered", at: T + 5 }).map((e) => e.type)).toEqual([
      "destination_recovered",
    ]);
  });

  it("turns a pause by the circuit into one by hand: no probe, no second alert", () => {
    const state = freshState();
    const limits = circuit(1, 1);
    settle(state, limits, undefined, fail(T));
    expect(pauseByHand(state, T + 1)).toEqual([]);
    expect(statusOf(state, T + 10_000)).toBe("paused");
  });
});

describe("deliveries_dead", () => {
  it("alerts the first dead letter at once, then at most once per cool-down with everything counted since", () => {
    const state = freshState();
    const cooldown = 60_000;
    const dead = (at: number, lastStatus = 410) => ({ count: 1, at, reason: "permanent_failure", lastStatus });
    expect(noteDead(state, dead(T), cooldown, T)).toMatchObject([{ type: "deliveries_dead", count: 1, firstAt: T }]);
    expect(noteDead(state, dead(T + 1000), cooldown, T + 1000)).toEqual([]);
    expect(noteDead(state, { ...dead(T + 2000, 400), count: 3 }, cooldown, T + 2000)).toEqual([]);
    expect(flushDead(state, cooldown, T + 59_000)).toEqual([]);
    expect(flushDead(state, cooldown, T + 60_000)).toEqual([
      {
        type: "deliveries_dead",
        count: 4,
        firstAt: T + 1000,
        lastAt: T + 2000,
        reason: "permanent_failure",
        lastStatus: 400,
      },
    ]);
    expect(flushDead(state, cooldown, T + 200_000)).toEqual([]);
  });
});

describe("a flapping receiver (finding 4)", () => {
  /** `cycles` times: 5 failed attempts then 1 success, one attempt every `stepMs`, through the gate's decisions. */
  function flap(state: GateState, limits: Limits, cycles: number, stepMs = 1000, from = T) {
    const events: ReturnType<typeof settle> = [];
    let now = from;
    for (let cycle = 0; cycle < cycles; cycle++) {
      for (let i = 0; i < 6; i++) {
        now += stepMs;
        // What is paused is held, not attempted; the gate's alarm sends what its cool-downs deferred.
        events.push(...flushDead(state, 60 * 60_000, now));
        const admitted = admit(state, limits, now, 0, LEASE_MS, lease);
        if ("held" in admitted) continue;
        const outcome = i < 5 ? fail(now) : ({ kind: "delivered", at: now } as const);
        events.push(...settle(state, limits, admitted.go.lease, outcome));
      }
    }
    return { events, now };
  }
  const count = (events: { type: string }[], type: string) => events.filter((e) => e.type === type).length;

  it("raises no alert storm in 600 attempts, and the breaker opens on the failure ratio", () => {
    const state = freshState();
    const limits = circuit(20, 300);
    const { events } = flap(state, limits, 100);
    // On main: 100 destination_failing and 100 destination_recovered, and the circuit never opened.
    expect(count(events, "destination_failing")).toBe(1);
    expect(count(events, "destination_recovered")).toBeLessThanOrEqual(1);
    expect(count(events, "destination_paused")).toBe(1);
    expect(events.length).toBeLessThanOrEqual(3);
    expect(events.find((e) => e.type === "destination_paused")).toMatchObject({ reason: "failure_ratio" });
    expect(state.pause?.by).toBe("circuit");
  });

  it("says recovered only after several successes in a row, or a quiet spell without failures", () => {
    const state = freshState();
    const limits = circuit(20, 300);
    expect(count(flap(state, limits, 3).events, "destination_failing")).toBe(1);
    const success = (at: number) => settle(state, limits, undefined, { kind: "delivered", at });
    const after = T + 100_000;
    settle(state, limits, undefined, fail(after));
    expect([1, 2, 3, 4].flatMap((i) => success(after + i))).toEqual([]);
    expect(success(after + 5).map((e) => e.type)).toEqual(["destination_recovered"]);

    const quiet = freshState();
    for (let i = 0; i < 5; i++) settle(quiet, limits, undefined, fail(T + i));
    expect(settle(quiet, limits, undefined, { kind: "delivered", at: T + 10 })).toEqual([]);
    expect(settle(quiet, limits, undefined, { kind: "delivered", at: T + 4 + QUIET_MS }).map((e) => e.type)).toEqual([
      "destination_recovered",
    ]);
  });

  it("keeps one alert of a type per destination per cool-down, and sends what it held back once that is over", () => {
    const state = freshState();
    const limits: Limits = { circuit: false };
    const episode = (from: number) => {
      const events = [];
      for (let i = 0; i < 5; i++) events.push(...settle(state, limits, undefined, fail(from + i)));
      for (let i = 0; i < RECOVERY_SUCCESSES; i++) {
        events.push(...settle(state, limits, undefined, { kind: "delivered", at: from + 10 + i }));
      }
      return events.map((e) => e.type);
    };
    expect(episode(T)).toEqual(["destination_failing", "destination_recovered"]);
    // Failing again five minutes later: held back, and so is its recovery; nothing is sent in between.
    expect(episode(T + 5 * 60_000)).toEqual([]);
    // It recovered before the cool-down ended: what was held back has nothing left to say.
    expect(deadDueAt(state, 60 * 60_000)).toBeUndefined();
    // Failing again, and still failing when the cool-down ends: that is sent then.
    for (let i = 0; i < 5; i++) settle(state, limits, undefined, fail(T + 10 * 60_000 + i));
    expect(deadDueAt(state, 60 * 60_000)).toBe(T + 4 + ALERT_TYPE_COOLDOWN_MS);
    expect(flushDead(state, 60 * 60_000, T + ALERT_TYPE_COOLDOWN_MS + 20).map((e) => e.type)).toEqual([
      "destination_failing",
    ]);
  });
});

describe("the alert of a pause by the failure ratio", () => {
  it("says how many of the recent attempts failed, not 'in a row'", async () => {
    const { alertText } = await import("../../src/alerts/text.ts");
    const text = alertText(
      {
        id: "x",
        type: "destination_paused",
        destination: "wms",
        count: 17,
        attempts: 20,
        firstAt: T,
        lastAt: T + 1,
        reason: "failure_ratio",
        lastStatus: 503,
      },
      undefined,
    );
    expect(text.text).toContain("wms is paused: 17 of its last 20 attempts failed since");
  });
});
