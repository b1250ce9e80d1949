import { env, exports } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../../src/env.ts";
import { signBody } from "../../src/extend/signature.ts";
import { SIGNATURE_CASES } from "../cases/signature.ts";
import {
  EXAMPLE_RULES,
  envelope,
  expectError,
  failingLedger,
  fetchWith,
  freshId,
  msSignature,
  postWebhook,
  putRules,
  SEED_VECTOR,
  signedPost,
} from "../helpers.ts";

beforeEach(async () => {
  await putRules(EXAMPLE_RULES);
  vi.spyOn(globalThis, "fetch").mockResolvedValue(new Response("ok"));
});
afterEach(() => vi.restoreAllMocks());

const ORDER = [{ Action: "OrderCreated", Details: { OrderNumber: "1", OrderType: "NormalOrder" } }];
const callWith = fetchWith;

function signedRequest(body: string): Request {
  return new Request("https://relay.test/webhook", {
    method: "POST",
    body,
    headers: { "ms-signature": msSignature(body) },
  });
}

describe("the signature", () => {
  it("matches the seed page's test vector", async () => {
    expect(await signBody(new TextEncoder().encode(SEED_VECTOR.body), SEED_VECTOR.secret)).toBe(SEED_VECTOR.signature);
  });

  it.each(SIGNATURE_CASES)("$name → $code", async ({ body: make, header, code }) => {
    const valid = envelope(ORDER);
    const headers = new Headers();
    const value = header(valid);
    for (const one of value === null ? [] : [value].flat()) headers.append("ms-signature", one);
    const response = await postWebhook(make?.(valid) ?? valid, headers);
    if (code === null) expect(response.status).toBe(202);
    else await expectError(response, 401, code);
  });

  it("fails closed when no secret is configured: 503 secret_not_configured", async () => {
    const body = envelope(ORDER);
    const response = await callWith(
      { EXTEND_WEBHOOK_SECRET: undefined, EXTEND_WEBHOOK_SECRET_PREVIOUS: undefined },
      signedRequest(body),
    );
    const error = await expectError(response, 503, "secret_not_configured");
    expect(JSON.stringify(error)).not.toContain("fixture-secret");
  });
});

describe("the body limit", () => {
  const LIMIT = 2048;
  function bodyOfSize(size: number): string {
    const base = envelope([{ Action: "OrderCreated", Details: { OrderType: "NormalOrder", Pad: "" } }]);
    return base.replace('"Pad":""', `"Pad":"${"x".repeat(size - base.length)}"`);
  }

  it("accepts a body of exactly MAX_BODY_BYTES", async () => {
    const body = bodyOfSize(LIMIT);
    expect(body.length).toBe(LIMIT);
    expect((await callWith({ MAX_BODY_BYTES: String(LIMIT) }, signedRequest(body))).status).toBe(202);
  });

  it("refuses a body one byte over with 413 body_too_large", async () => {
    const body = bodyOfSize(LIMIT + 1);
    await expectError(await callWith({ MAX_BODY_BYTES: String(LIMIT) }, signedRequest(body)), 413, "body_too_large");
  });

  it("refuses a chunked body with no Content-Length once it passes the limit", async () => {
    const chunk = new TextEncoder().encode("x".repeat(1000));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 5) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const request = new Request("https://relay.test/webhook", {
      method: "POST",
      body: stream,
      headers: { "ms-signature": `sha256=${"0".repeat(64)}` },
    });
    expect(request.headers.get("content-length")).toBeNull();
    await expectError(await callWith({ MAX_BODY_BYTES: String(LIMIT) }, request), 413, "body_too_large");
    expect(sent).toBeLessThan(5);
  });

  it("refuses at the default 10 MiB limit too", async () => {
    const body = "x".repeat(10 * 1_048_576 + 1);
    await expectError(await postWebhook(body, { "ms-signature": msSignature(body) }), 413, "body_too_large");
  });
});

describe("the envelope", () => {
  async function invalid(
    body: string | Uint8Array,
    code: "invalid_envelope" | "invalid_json" | "invalid_encoding" | "nesting_too_deep" = "invalid_envelope",
  ) {
    return expectError(await signedPost(body), 400, code);
  }

  it("must be JSON", async () => {
    const error = await invalid("{'test':'test2'}", "invalid_json");
    expect(error.message).toMatch(/not JSON/);
  });

  it("must be UTF-8", async () => {
    const bytes = new Uint8Array([
      ...new TextEncoder().encode('{"Id":"'),
      0xff,
      0xfe,
      ...new TextEncoder().encode('"}'),
    ]);
    await invalid(bytes, "invalid_encoding");
  });

  it("must be an object, not an array", async () => {
    const error = await invalid(JSON.stringify([{ Id: "x", Notifications: [] }]));
    expect(JSON.stringify(error)).toContain("array");
  });

  it("must have an Id, and lists the problem with its path", async () => {
    const body = (await invalid(JSON.stringify({ Attempt: 1, Notifications: [] }))) as unknown as {
      issues: { path: string }[];
    };
    expect(body.issues.map((i) => i.path)).toEqual(["Id"]);
  });

  it("needs Notifications to be an array", async () => {
    const body = (await invalid(
      JSON.stringify({ Id: "abc", Notifications: { Action: "OrderCreated" } }),
    )) as unknown as {
      issues: { path: string }[];
    };
    expect(body.issues.map((i) => i.path)).toEqual(["Notifications"]);
  });

  it("needs every notification to have a string Action and an object Details", async () => {
    const body = (await invalid(
      JSON.stringify({
        Id: "abc",
        Notifications: [{ Details: {} }, { Action: "OrderCreated", Details: [] }, { Action: 5, Details: {} }],
      }),
    )) as unknown as { issues: { path: string }[]; message: string };
    expect(body.issues.map((i) => i.path)).toEqual([
      "Notifications[0].Action",
      "Notifications[1].Details",
      "Notifications[2].Action",
    ]);
    expect(body.message).toContain("Notifications[0].Action");
  });

  it("refuses nesting deeper than 64 levels, counting brackets outside strings only", async () => {
    // The envelope, Notifications, the notification and Details take four levels.
    const nested = (levels: number, text = "") =>
      envelope([{ Action: "OrderCreated", Details: { OrderType: "NormalOrder", Text: text, Deep: "__" } }]).replace(
        '"__"',
        `${"[".repeat(levels)}${"]".repeat(levels)}`,
      );
    expect((await signedPost(nested(60, '[[[[[[[[[[[[[[[[[[[[\\"'))).status).toBe(202);
    const error = await invalid(nested(61), "nesting_too_deep");
    expect(error.message).toContain("64");
  });

  it("refuses more than 1000 notifications in one call", async () => {
    const notifications = Array.from({ length: 1001 }, () => ({ Action: "CustomerCreated", Details: {} }));
    await invalid(envelope(notifications));
  });

  it("refuses a call whose members besides its notifications pass a queue message with 413 envelope_too_large", async () => {
    const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
    const body = JSON.stringify({
      Id: freshId(),
      Attempt: 1,
      Properties: { Pad: "x".repeat(130_000) },
      Notifications: [{ Action: "OrderCreated", Details: { OrderType: "NormalOrder" } }],
    });
    await expectError(await signedPost(body), 413, "envelope_too_large");
    expect(sendBatch).not.toHaveBeenCalled();
  });

  it("answers 503 payloads_unavailable when R2 does not take a large notification, enqueuing nothing", async () => {
    const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
    vi.spyOn(env.PAYLOADS, "put").mockRejectedValue(new Error("R2 is down"));
    const body = envelope([
      { Action: "OrderCreated", Details: { OrderType: "NormalOrder", Blob: "x".repeat(130_000) } },
    ]);
    await expectError(await signedPost(body), 503, "payloads_unavailable");
    expect(sendBatch).not.toHaveBeenCalled();
  });
});

describe("failing dependencies", () => {
  it("answers 503 rules_unavailable when the rules KV throws, and remembers nothing", async () => {
    const { resetRulesCache } = await import("../../src/rules/store.ts");
    resetRulesCache();
    const body = envelope(ORDER);
    const failing = { get: () => Promise.reject(new Error("KV GET failed: 500")) } as unknown as KVNamespace;
    await expectError(await callWith({ RULES: failing }, signedRequest(body)), 503, "rules_unavailable");
    // Not remembered: the sender's retry is taken as new.
    resetRulesCache();
    expect((await signedPost(body)).status).toBe(202);
  });

  it("answers 503 stored_rules_invalid when the document in KV does not validate", async () => {
    await putRules({ version: 2, routes: "nope" });
    await expectError(await signedPost(envelope(ORDER)), 503, "stored_rules_invalid");
  });

  it("refuses to route by a KV document that names the relay's own secrets, written around the API", async () => {
    await putRules({
      version: 1,
      destinations: { evil: { url: "https://evil.test/", headers: { "X-Token": { secret: "ADMIN_TOKEN" } } } },
      routes: [{ name: "all", actions: ["*"], to: ["evil"] }],
    });
    const error = await expectError(await signedPost(envelope(ORDER)), 503, "stored_rules_invalid");
    expect(JSON.stringify(error)).toContain("destinations.evil.headers.X-Token.secret");
  });

  it("accepts the call when the ledger cannot be read (dedupe then relies on receivers)", async () => {
    // Attempt 2: a retry, so the relay asks the ledger (a first attempt never needs to).
    const retry = JSON.stringify({ Id: freshId(), Attempt: 2, Properties: {}, Notifications: ORDER });
    const response = await callWith({ LEDGER: failingLedger() }, signedRequest(retry));
    expect(response.status).toBe(202);
  });

  it("answers 503 queue_unavailable when the queue throws", async () => {
    const failingQueue = { sendBatch: () => Promise.reject(new Error("Queue sendBatch failed")) } as unknown as Queue;
    const body = envelope(ORDER);
    await expectError(
      await callWith({ DELIVERIES: failingQueue as Env["DELIVERIES"] }, signedRequest(body)),
      503,
      "queue_unavailable",
    );
    expect((await signedPost(body)).status).toBe(202);
  });

  it("answers 503 misconfigured naming the bad var", async () => {
    const error = await expectError(
      await callWith({ MAX_BODY_BYTES: "lots" }, signedRequest(envelope(ORDER))),
      503,
      "misconfigured",
    );
    expect(error.message).toContain("MAX_BODY_BYTES");
  });
});

describe("the rest of the door", () => {
  it("answers the registration handshake with the token as text", async () => {
    const response = await exports.default.fetch("https://relay.test/webhook?echo=abc-123_XYZ");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await response.text()).toBe("abc-123_XYZ");
  });

  it("refuses an echo token that is missing, too long or not visible ASCII", async () => {
    await expectError(await exports.default.fetch("https://relay.test/webhook"), 400, "echo_missing");
    await expectError(
      await exports.default.fetch(`https://relay.test/webhook?echo=${"a".repeat(257)}`),
      400,
      "echo_invalid",
    );
    await expectError(await exports.default.fetch("https://relay.test/webhook?echo=a%20b"), 400, "echo_invalid");
    await expectError(
      await exports.default.fetch("https://relay.test/webhook?echo=%3Cscript%3E%E2%82%AC"),
      400,
      "echo_invalid",
    );
  });

  it.each(["PUT", "DELETE", "PATCH"])("answers %s /webhook with 405 and an Allow header", async (method) => {
    const response = await exports.default.fetch("https://relay.test/webhook", {
      method,
      body: method === "DELETE" ? null : "{}",
    });
    await expectError(response, 405, "method_not_allowed");
    expect(response.headers.get("allow")).toBe("GET, HEAD, POST");
  });

  it("reports health as JSON without secrets", async () => {
    const response = await exports.default.fetch("https://relay.test/healthz");
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(JSON.parse(text)).toMatchObject({ status: "ok", webhookSecret: true, adminEnabled: true });
    expect(text).not.toContain("fixture-secret");
  });

  it("answers unknown paths with 404 not_found JSON", async () => {
    await expectError(await exports.default.fetch("https://relay.test/nope"), 404, "not_found");
  });
});
