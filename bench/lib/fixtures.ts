/**
 * What the benchmarks send: the rules document, signed sender calls and synthetic route sets.
 * Bodies are signed in Node with node:crypto (the sender's scheme), before any timing starts.
 */

import { msSignature, newId } from "../../scripts/send-sample.ts";
import { KNOWN_ACTIONS } from "../../src/extend/actions.ts";

export const SECRETS = {
  EXTEND_WEBHOOK_SECRET: "bench-extend-secret",
  // The relay refuses to run its admin API with a bearer shorter than 32 characters.
  ADMIN_TOKEN: "bench-admin-token-0123456789abcdef0123456",
  WMS_SECRET: "bench-wms-secret",
  SHOP_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
};

/**
 * Vars every bench relay is started with: the bench's destination secrets may be sent to the loopback receivers
 * (SECRET_HOSTS; a relay refuses rules that would send a secret to a host it is not bound to).
 */
export const RELAY_BASE_VARS: Record<string, string> = {
  SECRET_HOSTS: JSON.stringify({ WMS_SECRET: ["127.0.0.1"], SHOP_SECRET: ["127.0.0.1"] }),
};

/** `sha256=<HEX>` as Extend Commerce writes it, with the bench's sender secret. */
export const sign = (body: Uint8Array): string => msSignature(body, SECRETS.EXTEND_WEBHOOK_SECRET);

/**
 * The relay's rules for the HTTP runs: three destinations on the loopback receiver (one per signing
 * scheme), three routes that match the standard call, and seven that do not. `source` is the first path
 * segment of every destination, which the receiver counts arrivals by (one per relay under test).
 */
export function benchRules(receiverUrl: string, source = "relay") {
  return {
    version: 1,
    // The longest timeout: the delivery run holds the receiver's answers while the queue fills (a few seconds).
    destinations: {
      wms: {
        url: `${receiverUrl}/${source}/wms`,
        signing: { scheme: "ms-signature", secret: "WMS_SECRET" },
        timeoutMs: 30_000,
      },
      shop: {
        url: `${receiverUrl}/${source}/shop`,
        signing: { scheme: "standard-webhooks", secret: "SHOP_SECRET" },
        headers: { "X-Source": "extend" },
        timeoutMs: 30_000,
      },
      erp: { url: `${receiverUrl}/${source}/erp`, timeoutMs: 30_000 },
    },
    routes: [
      {
        name: "orders-to-wms",
        actions: ["OrderCreated", "OrderCancelled"],
        where: { "Details.OrderType": "NormalOrder" },
        to: ["wms"],
      },
      { name: "orders-to-shop", actions: ["Order*"], to: ["shop"] },
      {
        name: "stock-yx-to-erp",
        actions: ["AvailableBalanceChanged", "BalanceChanged"],
        warehouses: ["YX"],
        to: ["erp"],
      },
      {
        name: "rp-purchases",
        actions: ["Purchase*"],
        where: { "Details.OrderNumber": { prefix: "RP-" } },
        to: ["wms"],
      },
      { name: "customers", actions: ["CustomerCreated", "CustomerChanged"], to: ["erp"] },
      { name: "invoices", actions: ["CustomerInvoice*"], to: ["erp"] },
      { name: "stock-zz", actions: ["AvailableBalanceChanged"], warehouses: ["ZZ"], to: ["shop"] },
      { name: "picking", actions: ["PickingStarted", "OrderPicked"], warehouses: ["ZZ"], to: ["wms"] },
      { name: "products", actions: ["Product*"], to: ["shop"] },
      { name: "archive", actions: ["*"], to: ["erp"], enabled: false },
    ],
  };
}

function orderCreated(index: number, padding: number): Record<string, unknown> {
  return {
    Action: "OrderCreated",
    Details: {
      OrderNumber: `WEB-${100000 + index}`,
      OrderType: "NormalOrder",
      Warehouse: "YX",
      CustomerNumber: "C-20931",
      Currency: "SEK",
      Total: 1249.5,
      Lines: [
        { Sku: "TSHIRT-BLK-M", Quantity: 2, Price: 199.0 },
        { Sku: "HOODIE-GRY-L", Quantity: 1, Price: 599.0 },
      ],
      Note: "x".repeat(padding),
    },
  };
}

function balanceChanged(index: number, padding: number): Record<string, unknown> {
  return {
    Action: "AvailableBalanceChanged",
    Details: {
      Warehouse: "YX",
      ProductNumber: `SKU-${index}`,
      AvailableBalance: 17,
      PreviousAvailableBalance: 19,
      Note: "y".repeat(padding),
    },
  };
}

export interface SignedCall {
  id: string;
  body: Buffer;
  signature: string;
}

/**
 * A sender call with `notifications` notifications alternating OrderCreated (→ wms and shop) and
 * AvailableBalanceChanged in YX (→ erp), each about `notificationBytes` long. Two notifications of
 * ~480 bytes make the standard ~1 KB call that matches three routes to three destinations.
 */
export function signedCall(notifications = 2, notificationBytes = 480): SignedCall {
  const id = newId();
  const base = JSON.stringify(orderCreated(0, 0)).length;
  const padding = Math.max(0, notificationBytes - base);
  const list = Array.from({ length: notifications }, (_, i) =>
    i % 2 === 0
      ? orderCreated(i, padding)
      : balanceChanged(i, padding + (base - JSON.stringify(balanceChanged(0, 0)).length)),
  );
  // Prices as an ERP writes them ("199.00"): numbers whose digits the relay must keep, so every call takes
  // the kept-digits parse (src/json.ts).
  const body = Buffer.from(
    JSON.stringify({
      Id: id,
      Attempt: 1,
      Properties: { NotificationId: crypto.randomUUID() },
      Notifications: list,
    }).replace(/"Price":(\d+)(?=[,}])/g, '"Price":$1.00'),
  );
  return { id, body, signature: sign(body) };
}

/**
 * A large sender call of exactly `totalBytes`: the standard call's two ~480-byte notifications (→ wms, shop; erp)
 * and a third, an OrderCreated (→ wms and shop) padded to fill the rest, far beyond a queue message's 128 KB, so
 * the relay keeps it in R2 and its messages carry a claim. Three deliveries, two of them carrying the large one.
 */
export function signedLargeCall(totalBytes: number): SignedCall {
  const id = newId();
  const build = (padding: number) =>
    Buffer.from(
      JSON.stringify({
        Id: id,
        Attempt: 1,
        Properties: { NotificationId: crypto.randomUUID() },
        Notifications: [orderCreated(0, 240), balanceChanged(1, 290), orderCreated(2, padding)],
      }),
    );
  const body = build(totalBytes - build(0).length);
  return { id, body, signature: sign(body) };
}

/** A pool of distinct signed calls (fresh Id each: the relay deduplicates on it). */
export function signedPool(count: number): SignedCall[] {
  return Array.from({ length: count }, () => signedCall());
}

/**
 * `count` routes of which only three can match an OrderCreated in warehouse YX: the rest name other
 * Actions, other warehouses or other prefixes, as a large installation's rules would.
 */
export function manyRoutes(count: number) {
  const destinations: Record<string, { url: string }> = {};
  for (let d = 0; d < 20; d++) destinations[`d${d}`] = { url: `https://d${d}.example.com/hook` };
  const routes: Record<string, unknown>[] = [
    { name: "orders-normal", actions: ["OrderCreated"], where: { "Details.OrderType": "NormalOrder" }, to: ["d0"] },
    { name: "orders-prefix", actions: ["Order*"], to: ["d1"] },
    { name: "yx-all", actions: ["OrderCreated", "AvailableBalanceChanged"], warehouses: ["YX"], to: ["d2"] },
  ];
  for (let i = routes.length; i < count; i++) {
    const action = KNOWN_ACTIONS[i % KNOWN_ACTIONS.length]!;
    const kind = i % 3;
    routes.push(
      kind === 0
        ? { name: `r${i}`, actions: [action], warehouses: [`W${i}`], to: [`d${i % 20}`] }
        : kind === 1
          ? {
              name: `r${i}`,
              actions: [action === "OrderCreated" ? "OrderPicked" : action],
              where: { "Details.OrderNumber": { prefix: `P${i}-` } },
              to: [`d${i % 20}`],
            }
          : { name: `r${i}`, actions: [`Custom${i}*`], to: [`d${i % 20}`] },
    );
  }
  return { version: 1, destinations, routes: routes.slice(0, count) };
}
