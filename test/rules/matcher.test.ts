import { describe, expect, it } from "vitest";
import { fanOut } from "../../src/delivery/planner.ts";
import { type Notification, warehouseOf } from "../../src/extend/envelope.ts";
import { compileRules } from "../../src/rules/matcher.ts";
import { rulesSchema } from "../../src/rules/schema.ts";
import { FIXTURES } from "../helpers.ts";

const rules = rulesSchema.parse({
  version: 1,
  destinations: {
    wms: { url: "https://wms.test/" },
    shop: { url: "https://shop.test/" },
    erp: { url: "https://erp.test/", enabled: false },
  },
  routes: [
    { name: "stock-yx", actions: ["AvailableBalanceChanged", "BalanceChanged"], warehouses: ["YX"], to: ["shop"] },
    { name: "rp-purchases", actions: ["Purchase*"], where: { "Details.OrderNumber": { prefix: "RP-" } }, to: ["wms"] },
    {
      name: "normal-orders",
      actions: ["OrderCreated", "OrderCancelled"],
      where: { "Details.OrderType": "NormalOrder" },
      to: ["wms", "shop"],
    },
    { name: "picking-adr", actions: ["PickingStarted"], warehouses: ["ADR-1"], to: ["wms"] },
    {
      name: "typed-orders",
      actions: ["Order*"],
      where: { "Details.OrderType": ["NormalOrder", "WebOrder"], "Details.Blocked": { exists: false } },
      to: ["shop"],
    },
    {
      name: "not-internal",
      actions: ["CustomerCreated"],
      where: { "Details.CustomerNumber": { not: ["0", "internal"] } },
      to: ["wms"],
    },
    { name: "balance-numbers", actions: ["BalanceChanged"], where: { "Details.Balance": 43 }, to: ["wms"] },
    { name: "all-off", actions: ["*"], to: ["wms"], enabled: false },
    { name: "to-disabled", actions: ["*"], to: ["erp"] },
    { name: "everything-b", actions: ["*"], warehouses: ["B-1"], to: ["shop"] },
  ],
});
const compiled = compileRules(rules);

const n = (Action: string, Details: Record<string, unknown>): Notification => ({ Action, Details });

describe("the compiled matcher", () => {
  it.each<[string, Notification, string[]]>([
    ["exact Action and warehouse", n("AvailableBalanceChanged", { Warehouse: "YX" }), ["stock-yx"]],
    ["exact Action, other warehouse", n("AvailableBalanceChanged", { Warehouse: "ZZ" }), []],
    ["warehouses given but the notification has none", n("BalanceChanged", { Balance: 1 }), []],
    [
      "a second route on the same Action with a numeric equals",
      n("BalanceChanged", { Warehouse: "YX", Balance: 43 }),
      ["stock-yx", "balance-numbers"],
    ],
    ["numeric equals is strict about type", n("BalanceChanged", { Warehouse: "ZZ", Balance: "43" }), []],
    [
      "prefix Action and prefix where",
      n("PurchaseCreated", { OrderNumber: "RP-70002830", Warehouse: "ADR-1" }),
      ["rp-purchases"],
    ],
    ["prefix Action, where fails", n("PurchaseDelivered", { OrderNumber: "50002245" }), []],
    ["prefix Action must match from the start", n("XPurchaseCreated", { OrderNumber: "RP-1" }), []],
    ["where on a non-string value never matches a prefix", n("PurchaseCreated", { OrderNumber: 12 }), []],
    [
      "equals and one-of and exists:false",
      n("OrderCreated", { OrderType: "NormalOrder" }),
      ["normal-orders", "typed-orders"],
    ],
    [
      "exists:false fails when present",
      n("OrderCreated", { OrderType: "NormalOrder", Blocked: true }),
      ["normal-orders"],
    ],
    ["one-of via prefix Action", n("OrderPicked", { OrderType: "WebOrder" }), ["typed-orders"]],
    ["equals fails", n("OrderCancelled", { OrderType: "ReturnOrder" }), []],
    ["not: absent value passes", n("CustomerCreated", {}), ["not-internal"]],
    ["not: listed value fails", n("CustomerCreated", { CustomerNumber: "internal" }), []],
    [
      "PickingStarted warehouse comes from Details.Order.Warehouse",
      n("PickingStarted", { Order: { Warehouse: "ADR-1" } }),
      ["picking-adr"],
    ],
    ["PickingStarted in another warehouse", n("PickingStarted", { Order: { Warehouse: "B-1" } }), ["everything-b"]],
    ["* with warehouses", n("PurchaseDelivered", { OrderNumber: "5", Warehouse: "B-1" }), ["everything-b"]],
    ["unknown Action matches only wildcards", n("StockTakeFinished", { Warehouse: "YX" }), []],
  ])("%s", (_, notification, expected) => {
    expect(compiled.match(notification).map((r) => r.name)).toEqual(expected);
  });

  it("skips disabled routes and destinations", () => {
    const names = compiled.match(n("OrderCreated", { OrderType: "NormalOrder" })).map((r) => r.name);
    expect(names).not.toContain("all-off");
    expect(names).not.toContain("to-disabled");
  });

  it("extracts the warehouse from Details.Warehouse or Details.Order.Warehouse", () => {
    const picking = JSON.parse(FIXTURES["PickingStarted.json"]!).Notifications[0];
    expect(warehouseOf(picking)).toBe("ADR-1");
    expect(warehouseOf(JSON.parse(FIXTURES["PurchaseDelivered.json"]!).Notifications[0])).toBe("B-1");
    expect(warehouseOf(JSON.parse(FIXTURES["CustomerCreated.json"]!).Notifications[0])).toBeUndefined();
    expect(warehouseOf(n("X", { Warehouse: 5 }))).toBeUndefined();
  });

  it("sends a notification to a destination once however many routes pick it", () => {
    const fanouts = fanOut(compiled, [n("OrderCreated", { OrderType: "NormalOrder" })]);
    expect(fanouts).toEqual([
      { destination: "wms", indices: [0], routes: ["normal-orders"] },
      { destination: "shop", indices: [0], routes: ["normal-orders", "typed-orders"] },
    ]);
  });

  it("routes the mixed fixture in order per destination", () => {
    const notifications = JSON.parse(FIXTURES["multi-indented-crlf.json"]!).Notifications as Notification[];
    const fanouts = fanOut(compiled, notifications);
    const summary = Object.fromEntries(
      fanouts.map((f) => [f.destination, f.indices.map((i) => notifications[i]!.Action)]),
    );
    expect(summary).toEqual({
      shop: ["AvailableBalanceChanged", "OrderCreated", "BalanceChanged"],
      wms: ["OrderCreated", "PickingStarted", "CustomerCreated", "BalanceChanged"],
    });
  });

  it("only looks at routes that could match: 10,000 routes for other Actions are never tested", () => {
    let evaluated = 0;
    const many = rulesSchema.parse({
      version: 1,
      destinations: { d: { url: "https://d.test/" } },
      routes: Array.from({ length: 10_000 }, (_, i) => ({
        name: `r${i}`,
        actions: [`Action${i}`],
        where: { "Details.X": "y" },
        to: ["d"],
      })),
    });
    const index = compileRules(many);
    // Count condition evaluations by reading through a getter on the notification.
    const notification = {
      Action: "Action42",
      Details: {
        get X() {
          evaluated++;
          return "y";
        },
      },
    } as unknown as Notification;
    expect(index.match(notification).map((r) => r.name)).toEqual(["r42"]);
    expect(evaluated).toBe(1);
  });
});
