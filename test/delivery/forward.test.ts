import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../../src/env.ts";
import { resetGateCache } from "../../src/gate/client.ts";
import { QUEUES } from "../../src/queues/names.ts";
import {
  admin,
  consume,
  type Delivery,
  deliveryMessage,
  EXAMPLE_RULES,
  eventually,
  putRules,
  readDeliveriesMessage,
  sentBodies,
} from "../helpers.ts";

/**
 * One attempt, two holders (docs/delivery.md, "Attempts"): a delivery on the DELIVERIES queue, attempted by the
 * consumer, and the same delivery held by its destination's gate, attempted by the gate's pump, settle the same
 * way in every case: the same request, the same requeue or dead letter, the same record for the ledger and the
 * same log lines. When settling fails (a queue refuses), both keep the delivery and still record the attempt.
 */

/** What became of a delivery, as far as anyone outside the holder can see. */
interface Settled {
  requests: number;
  /** done: acked, or the gate's row gone; kept: the message handed back, or the row still held. */
  holder: "done" | "kept";
  requeued: { attempts: number | undefined; delaySeconds: number | undefined }[];
  deadLetters: string[];
  /** The outcomes of the attempts handed to the ledger. */
  ledger: string[];
  /** The warn and error events logged, by name. */
  events: string[];
}

interface Case {
  name: string;
  status: number;
  /** A queue that refuses what the holder puts on it. */
  refuses?: "DEAD_LETTERS" | "DELIVERIES";
  expected: Omit<Settled, "requests">;
}

const CASES: Case[] = [
  {
    name: "a 200 is delivered",
    status: 200,
    expected: { holder: "done", requeued: [], deadLetters: [], ledger: ["delivered"], events: [] },
  },
  {
    name: "a 503 goes back on the queue as the next attempt, after RETRY_SCHEDULE's first delay",
    status: 503,
    expected: {
      holder: "done",
      requeued: [{ attempts: 1, delaySeconds: 1 }],
      deadLetters: [],
      ledger: ["retry"],
      events: ["delivery_attempt"],
    },
  },
  {
    name: "a 410 becomes a dead letter",
    status: 410,
    expected: {
      holder: "done",
      requeued: [],
      deadLetters: ["permanent_failure"],
      ledger: ["dead_letter"],
      events: ["delivery_attempt"],
    },
  },
  {
    name: "a 410 whose dead letter the queue refuses is kept, and its attempt is still on record",
    status: 410,
    refuses: "DEAD_LETTERS",
    expected: {
      holder: "kept",
      requeued: [],
      deadLetters: [],
      ledger: ["dead_letter"],
      events: ["delivery_not_settled", "delivery_attempt"],
    },
  },
  {
    name: "a 503 whose next attempt the queue refuses is kept, and its attempt is still on record",
    status: 503,
    refuses: "DELIVERIES",
    expected: {
      holder: "kept",
      requeued: [],
      deadLetters: [],
      ledger: ["retry"],
      events: ["delivery_not_settled", "delivery_attempt"],
    },
  },
];

let n = 0;
let status: number;
let requests: number;
let events: string[];

beforeEach(() => {
  resetGateCache();
  requests = 0;
  events = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async () => {
    requests++;
    return new Response(null, { status });
  });
  for (const level of ["warn", "error"] as const) {
    vi.spyOn(console, level).mockImplementation((line: unknown) => {
      events.push((JSON.parse(String(line)) as { event: string }).event);
    });
  }
});
afterEach(() => vi.restoreAllMocks());

/** A destination of its own for each run: a gate keeps its state for the whole file. */
async function freshDestination(): Promise<string> {
  const name = `forward-${n++}-${Date.now().toString(36)}`;
  await putRules({
    ...EXAMPLE_RULES,
    destinations: { ...EXAMPLE_RULES.destinations, [name]: { url: `https://${name}.test/` } },
  });
  return name;
}

const refusing = () => Promise.reject(new Error("Queue send failed"));

const attemptOutcomes = (spy: { mock: { calls: unknown[][] } }) =>
  sentBodies<{ records: { kind: string; outcome?: string }[] }>(spy).flatMap((m) =>
    m.records.flatMap((r) => (r.kind === "attempt" ? [r.outcome!] : [])),
  );

const warnings = () => [...new Set(events)].sort();

async function throughTheConsumer(c: Case): Promise<Settled> {
  const name = await freshDestination();
  const ledger = vi.spyOn(env.LEDGER_RECORDS, "sendBatch").mockResolvedValue(undefined as never);
  const deadLetters = vi.spyOn(env.DEAD_LETTERS, "send");
  if (c.refuses === "DEAD_LETTERS") deadLetters.mockImplementation(refusing);
  const failing = c.refuses === "DELIVERIES" ? { DELIVERIES: { send: refusing, sendBatch: refusing } } : {};
  status = c.status;
  const result = await consume(QUEUES.deliveries, [deliveryMessage(name)], { env: failing });
  return {
    requests,
    holder: result.explicitAcks.includes("m0") ? "done" : "kept",
    requeued: result.requeued.map((r) => ({ attempts: r.body.attempts, delaySeconds: r.delaySeconds })),
    deadLetters: sentBodies<{ reason: string }>(deadLetters)
      .filter(() => c.refuses !== "DEAD_LETTERS")
      .map((d) => d.reason),
    ledger: attemptOutcomes(ledger),
    events: warnings(),
  };
}

async function throughAGate(c: Case): Promise<Settled> {
  const name = await freshDestination();
  // Paused, the destination's gate holds the delivery; resumed, its pump attempts it.
  await admin(`/destinations/${name}/pause`, { method: "POST" });
  status = 200;
  await consume(QUEUES.deliveries, [deliveryMessage(name)]);
  const held = async () => {
    const list = await (await admin("/destinations")).json<{ destinations: { name: string; held: number }[] }>();
    return list.destinations.find((d) => d.name === name)!.held;
  };
  await eventually(async () => expect(await held()).toBe(1));
  const spies = await runInDurableObject(env.GATES.getByName(name), (instance) => {
    const own = (instance as unknown as { env: Env }).env;
    const spy = {
      ledger: vi.spyOn(own.LEDGER_RECORDS, "sendBatch").mockResolvedValue(undefined as never),
      deadLetters: vi.spyOn(own.DEAD_LETTERS, "send"),
      deliveries: vi.spyOn(own.DELIVERIES, "send"),
    };
    if (c.refuses === "DEAD_LETTERS") spy.deadLetters.mockImplementation(refusing);
    if (c.refuses === "DELIVERIES") spy.deliveries.mockImplementation(refusing);
    else spy.deliveries.mockResolvedValue(undefined as never);
    return spy;
  });
  events = [];
  status = c.status;
  await admin(`/destinations/${name}/resume`, { method: "POST" });
  await eventually(() => expect(attemptOutcomes(spies.ledger)).toHaveLength(1));
  return {
    requests,
    holder: (await held()) === 0 ? "done" : "kept",
    requeued:
      c.refuses === "DELIVERIES"
        ? []
        : sentBodies(spies.deliveries).map((body) => {
            const delivery = readDeliveriesMessage(body).delivery as Delivery;
            return { attempts: delivery.attempts, delaySeconds: spies.deliveries.mock.calls[0]![1]?.delaySeconds };
          }),
    deadLetters:
      c.refuses === "DEAD_LETTERS" ? [] : sentBodies<{ reason: string }>(spies.deadLetters).map((d) => d.reason),
    ledger: attemptOutcomes(spies.ledger),
    events: warnings().filter((e) => !["destination_paused", "alert_raised"].includes(e)),
  };
}

describe.each(CASES)("$name", (c) => {
  const expected: Settled = { requests: 1, ...c.expected, events: [...c.expected.events].sort() };

  it("through the consumer", async () => {
    expect(await throughTheConsumer(c)).toEqual(expected);
  });

  it("through a gate's pump", async () => {
    expect(await throughAGate(c)).toEqual(expected);
  });
});
