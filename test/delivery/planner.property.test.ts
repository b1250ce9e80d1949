import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bodyOf } from "../../src/delivery/body.ts";
import { claimsNeeded, type Fanout, placeholderClaim, planMessages } from "../../src/delivery/planner.ts";
import {
  bodyAround,
  type Call,
  type Envelope,
  markedCall,
  type Notification,
  notificationText,
  parseCall,
} from "../../src/extend/envelope.ts";
import { CLAIM_MARKS } from "../../src/queues/claim.ts";
import { type Delivery, WRAPPER_BYTES } from "../../src/queues/delivery.ts";
import { BATCH_BUDGET, BATCH_MESSAGES, batchMessages, MESSAGE_BUDGET } from "../../src/queues/limits.ts";
import { compileRules } from "../../src/rules/matcher.ts";
import { validateRules } from "../../src/rules/schema.ts";

/**
 * The planner splits one call's deliveries into queue messages and sendBatch calls. Whatever the sizes
 * (multi-byte text included), no message and no batch may exceed Queues' limits, and every destination
 * must get every one of its notifications, once, in the sender's order.
 */

const encoder = new TextEncoder();
/** How Queues measures a JSON message: its UTF-8 bytes. */
const jsonBytes = (value: unknown) => encoder.encode(JSON.stringify(value)).byteLength;
/** The envelope as the sender might write it: compact, or indented with CRLF line ends. */
const callOfEnvelope = (envelope: Envelope, indent: boolean): Call =>
  parseCall(
    encoder.encode(indent ? JSON.stringify(envelope, null, 2).replaceAll("\n", "\r\n") : JSON.stringify(envelope)),
  );
/** Per-message metadata Queues adds; a batch must fit with it. */
const METADATA = 100;

// Text made of one repeated character of 1, 2, 3 or 4 UTF-8 bytes (and JSON escapes), up to ~70 KB.
const text = fc
  .record({
    char: fc.constantFrom("a", "é", "€", "😀", '"', "\n", "\u0001"),
    count: fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 200 }) },
      { weight: 2, arbitrary: fc.integer({ min: 0, max: 20_000 }) },
      { weight: 1, arbitrary: fc.integer({ min: 20_000, max: 70_000 }) },
    ),
  })
  .map(({ char, count }) => char.repeat(count));

const notification: fc.Arbitrary<Notification> = fc.record({
  Action: fc.constantFrom("OrderCreated", "BalanceChanged", "Åtgärd"),
  Details: fc.record({ Text: text, N: fc.integer() }),
});

const MODES = fc.constantFrom("envelope", "single");

const scenario = fc
  .record({
    notifications: fc.array(notification, { minLength: 0, maxLength: 30 }),
    extra: fc.oneof(
      fc.constant(""),
      text.map((t) => t.slice(0, 5000)),
    ),
    modes: fc.tuple(MODES, MODES, MODES),
    indent: fc.boolean(),
    picks: fc.array(fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), { minLength: 1, maxLength: 3 }),
  })
  .map(({ notifications, extra, modes, picks, indent }) => {
    const envelope: Envelope = {
      Id: "a".repeat(32),
      Attempt: 1,
      Properties: { NotificationId: "x", Extra: extra },
      Notifications: notifications,
    };
    const fanouts: Fanout[] = picks
      .map((pick, d) => ({
        destination: `dest-${d}`,
        indices: notifications.map((_, i) => i).filter((i) => pick[i]),
        routes: ["r"],
      }))
      .filter((f) => f.indices.length > 0);
    const validation = validateRules({
      version: 1,
      destinations: Object.fromEntries(modes.map((mode, d) => [`dest-${d}`, { url: `https://d${d}.test/`, mode }])),
      routes: [],
    });
    if (!validation.ok) throw new Error("bad rules");
    return { call: callOfEnvelope(envelope, indent), fanouts, compiled: compileRules(validation.rules) };
  });

/** Many small notifications: splits by count (100 per batch) rather than by bytes. */
const manySmall = fc
  .record({ count: fc.integer({ min: 50, max: 1000 }), destinations: fc.integer({ min: 1, max: 3 }), mode: MODES })
  .map(({ count, destinations, mode }) => {
    const notifications = Array.from({ length: count }, (_, i) => ({ Action: "A", Details: { i } }));
    const envelope: Envelope = { Id: "b".repeat(32), Notifications: notifications };
    const fanouts: Fanout[] = Array.from({ length: destinations }, (_, d) => ({
      destination: `dest-${d}`,
      indices: notifications.map((_, i) => i),
      routes: ["r"],
    }));
    const validation = validateRules({
      version: 1,
      destinations: Object.fromEntries(fanouts.map((f) => [f.destination, { url: "https://x.test/", mode }])),
      routes: [],
    });
    if (!validation.ok) throw new Error("bad rules");
    return { call: callOfEnvelope(envelope, false), fanouts, compiled: compileRules(validation.rules) };
  });

const seen = { claimed: 0, split: 0, multiBatch: 0 };

function checkPlan({
  call,
  fanouts,
  compiled,
}: {
  call: Call;
  fanouts: Fanout[];
  compiled: ReturnType<typeof compileRules>;
}) {
  const { envelope } = call;
  // As the door plans: notifications too large for a message are claimed (placeholders here: nothing is kept).
  const claimed = claimsNeeded(call, fanouts, compiled);
  const claims = claimed.map((index) => placeholderClaim(call, index));
  const messages = planMessages(markedCall(call, claimed), fanouts, compiled, 1_700_000_000_000, claims);
  if (claimed.length > 0) seen.claimed++;
  // A claim only for a notification that could not ride in a message: more than half of one on its own.
  for (const index of claimed) {
    expect(jsonBytes(notificationText(call, index))).toBeGreaterThan(MESSAGE_BUDGET / 2);
  }
  const texts = claimed.map((index) => notificationText(call, index));
  /** What the receiver would get at attempt 1, each claim read back. */
  const received = (message: Delivery) =>
    JSON.parse(bodyOf(message, 1).replace(CLAIM_MARKS, (_mark, k: string) => texts[Number(k)]!)) as Envelope;

  // Every message within the message budget, as Queues measures it, and the planner's own count right.
  const { Notifications: _, ...fields } = envelope;
  for (const message of messages) {
    const bytes = encoder.encode(message.text).byteLength;
    expect(bytes + WRAPPER_BYTES.delivery).toBeLessThanOrEqual(MESSAGE_BUDGET);
    expect(message.bytes).toBe(bytes);
    expect(JSON.parse(message.text)).toEqual(message.body);
    const { Notifications: __, ...got } = received(message.body);
    expect(got).toEqual({ ...fields, Attempt: 1 });
  }
  // Batches within Queues' count and size limits, holding every message once, in order.
  const batches = batchMessages(messages);
  for (const batch of batches) {
    expect(batch.length).toBeGreaterThan(0);
    expect(batch.length).toBeLessThanOrEqual(BATCH_MESSAGES);
    expect(batch.reduce((sum, m) => sum + m.bytes + METADATA, 0)).toBeLessThanOrEqual(BATCH_BUDGET);
  }
  expect(batches.flat()).toEqual(messages);
  if (batches.length > 1) seen.multiBatch++;
  if (messages.some((m) => m.body.part !== undefined)) seen.split++;

  // Each destination gets exactly its notifications, in order, under unique delivery ids.
  expect(new Set(messages.map((m) => m.body.deliveryId)).size).toBe(messages.length);
  expect(new Set(messages.map((m) => m.body.destination))).toEqual(new Set(fanouts.map((f) => f.destination)));
  for (const fanout of fanouts) {
    const own = messages.filter((m) => m.body.destination === fanout.destination);
    expect(own.flatMap((m) => received(m.body).Notifications)).toEqual(
      fanout.indices.map((i) => envelope.Notifications[i]),
    );
    expect(own.flatMap((m) => m.body.indices)).toEqual(fanout.indices);
    const mode = compiled.rules.destinations[fanout.destination]!.mode;
    if (mode === "single") {
      expect(own.map((m) => m.body.deliveryId)).toEqual(
        fanout.indices.map((i) => `${envelope.Id}.${fanout.destination}.n${i}`),
      );
    } else if (own.length === 1) {
      expect(own[0]!.body.deliveryId).toBe(`${envelope.Id}.${fanout.destination}`);
      expect(own[0]!.body.part).toBeUndefined();
    } else {
      own.forEach((m, k) => {
        expect(m.body.deliveryId).toBe(`${envelope.Id}.${fanout.destination}.p${k + 1}`);
        expect(m.body.part).toEqual([k + 1, own.length]);
        expect(m.body.indices.length).toBeGreaterThan(0);
      });
    }
  }
}

describe("the delivery planner, for any call and fan-out", () => {
  it("keeps every message and batch within Queues' limits and never drops or reorders a notification", () => {
    fc.assert(fc.property(scenario, checkPlan), { numRuns: 300 });
    // The generator must reach the interesting cases: split envelopes, several batches, claims.
    expect(seen.split).toBeGreaterThan(0);
    expect(seen.multiBatch).toBeGreaterThan(0);
    expect(seen.claimed).toBeGreaterThan(0);
  });

  it("splits many small notifications into batches of at most 100 messages", () => {
    fc.assert(fc.property(manySmall, checkPlan), { numRuns: 40 });
  });

  it("splits an envelope only when it must: one message when everything fits", () => {
    fc.assert(
      fc.property(scenario, ({ call, fanouts, compiled }) => {
        let messages;
        try {
          messages = planMessages(call, fanouts, compiled, 0);
        } catch {
          return;
        }
        for (const fanout of fanouts) {
          if (compiled.rules.destinations[fanout.destination]!.mode !== "envelope") continue;
          const whole: Delivery = {
            v: 3,
            deliveryId: `${call.envelope.Id}.${fanout.destination}.p9999`,
            destination: fanout.destination,
            routes: ["r"],
            callId: call.envelope.Id,
            indices: fanout.indices,
            ...bodyAround(call, fanout.indices),
            receivedAt: 0,
            part: [9999, 9999],
          };
          if (jsonBytes(whole) <= MESSAGE_BUDGET)
            expect(messages.filter((m) => m.body.destination === fanout.destination)).toHaveLength(1);
        }
      }),
      { numRuns: 200 },
    );
  });
});
