import { env, exports } from "cloudflare:workers";
import { createHmac } from "node:crypto";
import signatures from "../fixtures/extend/signatures.json";
import { resetRecentIds } from "../src/ingress/dedupe.ts";
import { resetRulesCache } from "../src/rules/store.ts";

/** Every sample call, as its exact text (CRLF and all), by file name. */
const raw = import.meta.glob<string>("../fixtures/extend/*.json", { query: "?raw", import: "default", eager: true });
export const FIXTURES: Record<string, string> = Object.fromEntries(
  Object.entries(raw)
    .filter(([path]) => !path.endsWith("signatures.json"))
    .map(([path, text]) => [path.slice(path.lastIndexOf("/") + 1), text]),
);
export const FIXTURE_SIGNATURES: Record<string, string> = signatures.files;
export const FIXTURE_SECRET = signatures.secret;
export const SEED_VECTOR = signatures.seedVector;
export const ADMIN_TOKEN = "test-admin-token";

/** `ms-signature` computed with node:crypto, independently of the relay's WebCrypto code. */
export function independentSignature(body: string | Uint8Array, secret = FIXTURE_SECRET): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex").toUpperCase()}`;
}

export function postWebhook(body: string | Uint8Array, headers: Record<string, string> = {}): Promise<Response> {
  return exports.default.fetch("https://relay.test/webhook", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
}

export function signedPost(body: string | Uint8Array, secret = FIXTURE_SECRET): Promise<Response> {
  return postWebhook(body, { "ms-signature": independentSignature(body, secret) });
}

export function admin(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has("authorization")) headers.set("authorization", `Bearer ${ADMIN_TOKEN}`);
  return exports.default.fetch(`https://relay.test/admin${path}`, { ...init, headers });
}

/** Stores a rules document straight in KV (bypassing validation) and drops the isolate's caches. */
export async function putRules(rules: unknown): Promise<void> {
  await env.RULES.put("rules", JSON.stringify(rules));
  resetRulesCache();
  resetRecentIds();
}

export async function clearRules(): Promise<void> {
  await env.RULES.delete("rules");
  resetRulesCache();
}

/** A unique 32-hex Id so tests never collide on dedupe. */
export function freshId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

export function envelope(notifications: unknown[], id = freshId()): string {
  return JSON.stringify({
    Id: id,
    Attempt: 1,
    Properties: { NotificationId: crypto.randomUUID() },
    Notifications: notifications,
  });
}

/** The rules used across tests: the SPEC §3 example pointed at test receivers. */
export const EXAMPLE_RULES = {
  version: 1,
  destinations: {
    wms: { url: "https://wms.test/extend", signing: { scheme: "ms-signature", secret: "WMS_SECRET" } },
    shop: {
      url: "https://shop.test/hooks",
      signing: { scheme: "standard-webhooks", secret: "SHOP_SECRET" },
      headers: { "X-Api-Key": { secret: "SHOP_API_KEY" }, "X-Source": "extend" },
      timeoutMs: 10000,
      maxAttempts: 12,
      mode: "envelope",
    },
  },
  routes: [
    {
      name: "stock-yx-to-shop",
      actions: ["AvailableBalanceChanged", "BalanceChanged"],
      warehouses: ["YX"],
      to: ["shop"],
    },
    { name: "rp-purchases", actions: ["Purchase*"], where: { "Details.OrderNumber": { prefix: "RP-" } }, to: ["wms"] },
    {
      name: "orders",
      actions: ["OrderCreated", "OrderCancelled"],
      where: { "Details.OrderType": "NormalOrder" },
      to: ["wms", "shop"],
    },
    { name: "picking", actions: ["PickingStarted"], warehouses: ["ADR-1"], to: ["wms"] },
    { name: "archive", actions: ["*"], to: ["wms"], enabled: false },
  ],
};
