import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bodyOf } from "../../src/delivery/body.ts";
import { bodyAround, notificationText, parseCall } from "../../src/extend/envelope.ts";
import type { Delivery } from "../../src/queues/delivery.ts";
import { FIXTURES } from "../helpers.ts";

const encoder = new TextEncoder();
const bodyFor = (text: string, indices: number[], attempt: number) => {
  const call = parseCall(encoder.encode(text));
  return bodyOf(bodyAround(call, indices) as unknown as Delivery, attempt);
};

describe("the body a destination receives", () => {
  it.each(Object.keys(FIXTURES).filter((name) => name.startsWith("multi")))(
    "carries the chosen notifications of %s as the sender wrote them",
    (name) => {
      const text = FIXTURES[name]!;
      const call = parseCall(encoder.encode(text));
      const body = bodyFor(text, [1, 3], 2);
      expect(JSON.parse(body)).toEqual({
        ...JSON.parse(text),
        Attempt: 2,
        Notifications: [1, 3].map((i) => JSON.parse(text).Notifications[i]),
      });
      for (const i of [1, 3]) expect(body).toContain(notificationText(call, i));
    },
  );

  it("adds Attempt before Notifications when the sender sent none, and keeps only the last of repeated ones", () => {
    expect(bodyFor('{"Id":"a","Notifications":[{"Action":"A","Details":{}}]}', [0], 4)).toBe(
      '{"Id":"a","Attempt":4,"Notifications":[{"Action":"A","Details":{}}]}',
    );
    // A repeated Notifications must not carry the other destinations' notifications along.
    expect(
      bodyFor(
        '{"Attempt":1,"Id":"a","Notifications":[{"x":1}],"Attempt":2,"Notifications":[{"Action":"A","Details":{}}]}',
        [0],
        7,
      ),
    ).toBe('{"Id":"a","Attempt":7,"Notifications":[{"Action":"A","Details":{}}]}');
  });

  it("for any envelope, however written, is that envelope with the relay's Attempt and only the chosen notifications", () => {
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small" },
        fc.string(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie("value"), { maxLength: 3 }),
        fc.dictionary(fc.string({ maxLength: 5 }), tie("value"), { maxKeys: 3 }),
      ),
    })).value;
    const notification = fc.record({
      Action: fc.string({ minLength: 1 }),
      Details: fc.dictionary(fc.string(), json, { maxKeys: 4 }),
    });
    fc.assert(
      fc.property(
        fc.record({
          Id: fc.stringMatching(/^[0-9a-f]{32}$/),
          Attempt: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
          Extra: json,
          Notifications: fc.array(notification, { maxLength: 6 }),
        }),
        fc.constantFrom(0, 1, 2, "\t"),
        fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }),
        fc.integer({ min: 1, max: 100 }),
        (envelope, indent, pick, attempt) => {
          const written = JSON.stringify(envelope, null, indent).replaceAll("\n", "\r\n");
          const indices = envelope.Notifications.map((_, i) => i).filter((i) => pick[i]);
          const received = JSON.parse(bodyFor(written, indices, attempt));
          expect(received).toEqual({
            ...JSON.parse(JSON.stringify(envelope)),
            Attempt: attempt,
            Notifications: indices.map((i) => JSON.parse(JSON.stringify(envelope.Notifications[i]))),
          });
        },
      ),
      { numRuns: 500 },
    );
  });
});
