import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { fanOut } from "../../src/delivery/planner.ts";
import type { Notification } from "../../src/extend/envelope.ts";
import { explain } from "../../src/rules/explain.ts";
import { compileRules } from "../../src/rules/matcher.ts";
import { validateRules } from "../../src/rules/schema.ts";
import { type RefRoute, type RefRules, refFanout, refMatch } from "./reference.ts";

/**
 * The compiled matcher (an index by Action, prefix and warehouse) against the plain reference, on random
 * rules and notifications drawn from small alphabets so that matches, near misses and overlaps are common.
 */

const ACTIONS = [
  "OrderCreated",
  "OrderCancelled",
  "Order",
  "PurchaseCreated",
  "Purchase",
  "BalanceChanged",
  "constructor",
  "__proto__",
  "toString",
  "O",
];
const PATTERNS = [...ACTIONS, "*", "Order*", "Purchase*", "O*", "Ord*", "__*", "OrderCreated*", "con*"];
const WAREHOUSES = ["YX", "ADR-1", "yx", "", "BA"];
const PATHS = [
  "Details.OrderType",
  "Details.OrderNumber",
  "Details.Order.Warehouse",
  "Details.Warehouse",
  "Action",
  "Details.Rows.0",
  "Details.OrderNumber.length",
  "Extra",
];
const SCALARS = ["NormalOrder", "RP-1", "RP-", "", "YX", 0, 1, true, false, null] as const;

const scalar = fc.constantFrom(...SCALARS);
const condition = fc.oneof(
  scalar,
  fc.array(scalar, { minLength: 1, maxLength: 3 }),
  fc.record({ prefix: fc.constantFrom("RP-", "", "Normal", "Y") }),
  fc.record({ exists: fc.boolean() }),
  fc.record({ not: fc.oneof(scalar, fc.array(scalar, { minLength: 1, maxLength: 3 })) }),
);

const DESTINATION_IDS = ["a", "b", "c", "d"];
const rulesArbitrary = fc
  .record({
    disabled: fc.subarray(DESTINATION_IDS),
    routes: fc.array(
      fc
        .record({
          actions: fc.array(fc.constantFrom(...PATTERNS), { minLength: 1, maxLength: 3 }),
          warehouses: fc.option(
            fc.array(fc.constantFrom(...WAREHOUSES.filter((w) => w !== "")), { minLength: 1, maxLength: 3 }),
            { freq: 2 },
          ),
          where: fc.option(fc.dictionary(fc.constantFrom(...PATHS), condition, { maxKeys: 2 }), { freq: 2 }),
          to: fc.array(fc.constantFrom(...DESTINATION_IDS), { minLength: 1, maxLength: 3 }),
          enabled: fc.option(fc.boolean(), { freq: 2 }),
        })
        // Absent, not null: absent keys take the schema's defaults.
        .map(
          (route) => Object.fromEntries(Object.entries(route).filter(([, v]) => v !== null)) as Omit<RefRoute, "name">,
        ),
      { maxLength: 8 },
    ),
  })
  .map(({ disabled, routes }) => ({
    version: 1,
    destinations: Object.fromEntries(
      DESTINATION_IDS.map((id) => [id, { url: `https://${id}.test/`, enabled: !disabled.includes(id) }]),
    ),
    routes: routes.map((route, i) => ({ name: `r${i}`, ...route })),
  }));

const value = fc.oneof(
  scalar,
  fc.constantFrom("OrderCreated", "RP-70002830", "Normal"),
  fc.integer({ min: -2, max: 2 }),
);
const notificationArbitrary: fc.Arbitrary<Notification> = fc.record(
  {
    Action: fc.constantFrom(...ACTIONS, "PurchaseDelivered", "OrderCreatedLater", "Orde"),
    Details: fc.record(
      {
        OrderType: value,
        OrderNumber: value,
        Warehouse: fc.oneof(fc.constantFrom(...WAREHOUSES), fc.integer({ max: 3 }), fc.constant(null)),
        Order: fc.oneof(
          fc.record({ Warehouse: fc.oneof(fc.constantFrom(...WAREHOUSES), fc.constant(7)) }, { requiredKeys: [] }),
          fc.constant(null),
          fc.constant([]),
        ),
        Rows: fc.oneof(fc.array(value, { maxLength: 2 }), value),
        constructor: value,
      },
      { requiredKeys: [] },
    ),
    Extra: value,
  },
  { requiredKeys: ["Action", "Details"] },
) as fc.Arbitrary<Notification>;

function compiledFor(document: unknown) {
  const validation = validateRules(document);
  if (!validation.ok) throw new Error(`generated rules are invalid: ${JSON.stringify(validation.issues)}`);
  return compileRules(validation.rules);
}

describe("the compiled matcher agrees with a plain reference", () => {
  it("picks the same routes, in document order, for any rules and notification", () => {
    let checked = 0;
    let matched = 0;
    let several = 0;
    fc.assert(
      fc.property(
        rulesArbitrary,
        fc.array(notificationArbitrary, { minLength: 1, maxLength: 5 }),
        (document, notifications) => {
          const compiled = compiledFor(document);
          for (const notification of notifications) {
            const expected = refMatch(document as RefRules, notification);
            expect(compiled.match(notification).map((route) => route.name)).toEqual(expected);
            checked++;
            if (expected.length > 0) matched++;
            if (expected.length > 1) several++;
          }
        },
      ),
      { numRuns: 2000 },
    );
    // The generators must exercise matches, not only misses.
    expect(matched / checked).toBeGreaterThan(0.1);
    expect(several / checked).toBeGreaterThan(0.02);
  });

  it("sends each notification to the same destinations, once each, in order", () => {
    fc.assert(
      fc.property(rulesArbitrary, fc.array(notificationArbitrary, { maxLength: 8 }), (document, notifications) => {
        const compiled = compiledFor(document);
        const actual = new Map(fanOut(compiled, notifications).map((f) => [f.destination, f.indices]));
        const expected = refFanout(document as RefRules, notifications);
        expect(new Set(actual.keys())).toEqual(new Set(expected.keys()));
        for (const [destination, indices] of expected) expect(actual.get(destination)).toEqual(indices);
      }),
      { numRuns: 1000 },
    );
  });

  it("never matches a disabled route or delivers to a disabled destination", () => {
    fc.assert(
      fc.property(rulesArbitrary, notificationArbitrary, (document, notification) => {
        const compiled = compiledFor(document);
        for (const route of compiled.match(notification)) {
          expect(document.routes.find((r) => r.name === route.name)!.enabled).not.toBe(false);
          for (const id of route.to) expect(document.destinations[id]!.enabled).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("and the dry run's explanation agrees with it: the routes it calls matched are the ones the matcher picks", () => {
    fc.assert(
      fc.property(rulesArbitrary, notificationArbitrary, (document, notification) => {
        const compiled = compiledFor(document);
        const verdicts = explain(compiled.rules, notification);
        expect(verdicts.filter((v) => v.matched).map((v) => v.route)).toEqual(
          compiled.match(notification).map((route) => route.name),
        );
        // Every route gets a verdict, and every "no" says why.
        expect(verdicts.map((v) => v.route)).toEqual(document.routes.map((r) => r.name));
        for (const verdict of verdicts.filter((v) => !v.matched)) expect(verdict.reason).toBeDefined();
      }),
      { numRuns: 2000 },
    );
  });
});
