/**
 * The relay under test, as a sender and an operator see it: `wrangler dev` on loopback (through the
 * project's harness), calls signed the way Extend Commerce signs them, the admin API, and polling.
 */
import { createHmac, randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, startWranglerDev, type WranglerDev } from "../../../scripts/lib/wrangler-dev.ts";
import { answerProblem } from "../../../src/admin/api.ts";
import type { DeadLetterSummary, Page } from "../../../src/ledger/views.ts";

export const FIXTURE_DIR = join(ROOT, "fixtures", "extend");
export const FIXTURE_SECRET = "fixture-secret";
export const ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef0123456";
export const VIEWER_TOKEN = "e2e-viewer-token-0123456789abcdef012345";

/** Secrets every e2e relay gets; destination secrets are the ones the test rules name. */
export const SECRETS = {
  EXTEND_WEBHOOK_SECRET: FIXTURE_SECRET,
  ADMIN_TOKEN,
  VIEWER_TOKEN,
  WMS_SECRET: "wms-e2e-secret",
  SHOP_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  SHOP_API_KEY: "shop-e2e-api-key",
};

/** SECRET_HOSTS for the e2e relays: the test secrets bound to the loopback receivers. */
export const LOOPBACK_SECRET_HOSTS = JSON.stringify(
  Object.fromEntries(["WMS_SECRET", "SHOP_SECRET", "SHOP_API_KEY"].map((name) => [name, ["127.0.0.1", "localhost"]])),
);

/** Every sample call as its exact bytes, by file name, with the signature fixtures/extend/signatures.json holds. */
export function loadFixtures(): { name: string; body: Buffer; signature: string }[] {
  const signatures = JSON.parse(readFileSync(join(FIXTURE_DIR, "signatures.json"), "utf8")) as {
    files: Record<string, string>;
  };
  return readdirSync(FIXTURE_DIR)
    .filter((name) => name.endsWith(".json") && name !== "signatures.json")
    .sort()
    .map((name) => ({ name, body: readFileSync(join(FIXTURE_DIR, name)), signature: signatures.files[name]! }));
}

/** `ms-signature` as Extend Commerce writes it: HMAC-SHA256 of the raw bytes, upper-case hex, node:crypto. */
export function msSignature(body: string | Uint8Array, secret = FIXTURE_SECRET): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex").toUpperCase()}`;
}

export function freshId(): string {
  return randomUUID().replaceAll("-", "");
}

export function envelope(notifications: unknown[], id = freshId()): string {
  return JSON.stringify({
    Id: id,
    Attempt: 1,
    Properties: { NotificationId: randomUUID() },
    Notifications: notifications,
  });
}

export interface Relay {
  dev: WranglerDev;
  url: string;
  /** POST /webhook with a correct signature (unless `headers` brings its own). */
  send(body: string | Uint8Array, headers?: Record<string, string>): Promise<Response>;
  /**
   * A call of the admin API (as operator, unless `init` brings its own Authorization). Its answer must be one the
   * API's OpenAPI document describes for the route and status, with a body its schema accepts: otherwise this
   * throws, whatever the test expected (checkAnswer).
   */
  admin(path: string, init?: RequestInit): Promise<Response>;
  /** Every dead-letter summary, all pages. */
  deadLetters(destination?: string): Promise<DeadLetterSummary[]>;
  stop(): Promise<void>;
}

/**
 * Throws unless `response` (to `method` on `path`, `/admin/…`) is an answer the admin API's document describes:
 * a route of src/admin/api.ts, a status it declares, and a JSON body that its schema for that status accepts.
 */
async function checkAnswer(method: string, path: string, response: Response): Promise<void> {
  const pathname = new URL(path, "http://relay.test").pathname;
  const text = await response.text();
  const type = response.headers.get("content-type") ?? "";
  let body: unknown;
  try {
    if (!type.startsWith("application/json")) throw new Error(`content-type ${type || "none"}`);
    body = JSON.parse(text);
  } catch (error) {
    throw new Error(
      `${method.toUpperCase()} ${pathname} answered ${response.status} with a body that is not JSON (${(error as Error).message}): ${text.slice(0, 300)}`,
    );
  }
  const problem = answerProblem(method, pathname, response.status, body);
  if (problem !== undefined) throw new Error(`${problem}\nBody: ${text.slice(0, 1000)}`);
}

export async function startRelay(
  options: { vars?: Record<string, string>; secrets?: Record<string, string>; persistTo?: string } = {},
): Promise<Relay> {
  const dev = await startWranglerDev({
    // The test receivers listen on loopback: every destination secret may go there (docs/rules.md).
    vars: { SECRET_HOSTS: LOOPBACK_SECRET_HOSTS, ...options.vars },
    secrets: options.secrets ?? SECRETS,
    ...(options.persistTo !== undefined && { persistTo: options.persistTo }),
  });
  const url = dev.url;
  const admin = async (path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has("authorization")) headers.set("authorization", `Bearer ${ADMIN_TOKEN}`);
    const response = await fetch(`${url}/admin${path}`, { ...init, headers, signal: AbortSignal.timeout(30_000) });
    await checkAnswer(init.method ?? "GET", `/admin${path}`, response.clone());
    return response;
  };
  return {
    dev,
    url,
    send: (body, headers) =>
      fetch(`${url}/webhook`, {
        method: "POST",
        headers: { "content-type": "application/json", "ms-signature": msSignature(body), ...headers },
        body,
        signal: AbortSignal.timeout(30_000),
      }),
    admin,
    async deadLetters(destination) {
      const all: DeadLetterSummary[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 100; page++) {
        const query = new URLSearchParams({ limit: "100" });
        if (destination !== undefined) query.set("destination", destination);
        if (cursor !== undefined) query.set("cursor", cursor);
        const response = await admin(`/dead-letters?${query}`);
        if (response.status !== 200)
          throw new Error(`GET /admin/dead-letters answered ${response.status}: ${await response.text()}`);
        const json = (await response.json()) as Page<DeadLetterSummary>;
        all.push(...json.items);
        cursor = json.cursor;
        if (cursor === undefined) break;
      }
      return all;
    },
    stop: () => dev.stop(),
  };
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs` saying what it waited for. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  { timeoutMs = 60_000, intervalMs = 200 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
