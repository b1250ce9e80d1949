/**
 * Hostile and broken requests against the running relay, over real HTTP (node:http, so paths and headers
 * reach it exactly as written). Each gets the status and error code the relay documents, no secret is
 * ever echoed, and a good call right after it is accepted.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SIGNATURE_CASES } from "../cases/signature.ts";
import { type Receiver, startReceiver } from "./lib/receivers.ts";
import {
  ADMIN_TOKEN,
  envelope,
  FIXTURE_SECRET,
  freshId,
  msSignature,
  type Relay,
  SECRETS,
  startRelay,
  waitFor,
} from "./lib/relay.ts";

const MAX_BODY_BYTES = 65_536;
/** The relay's documented nesting limit (README, error codes: nesting_too_deep). */
const MAX_DEPTH = 64;
const PREVIOUS_SECRET = "fixture-secret-previous";
const NOTIFICATION = { Action: "OrderCreated", Details: { OrderNumber: "1", OrderType: "NormalOrder" } };

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown> | undefined;
}

interface Send {
  method?: string;
  path?: string;
  headers?: Record<string, string | string[]>;
  /** Sent in one piece with a Content-Length. */
  body?: string | Buffer;
  /** Sent chunked, without a Content-Length. */
  chunks?: Buffer[];
}

let relay: Relay;
let receiver: Receiver;
/** Ids of the good calls sent after each case; every one must be delivered in the end. */
const goodCalls: { id: string; after: string }[] = [];

/** One raw HTTP request; answers even when the relay refuses the body before the client finished sending it. */
function send(options: Send, port = relay.dev.port): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = { ...options.headers };
    // A fresh connection each time, so that no case can leave state on a kept-alive one for the next.
    const req = request({
      host: "127.0.0.1",
      port,
      method: options.method ?? "POST",
      path: options.path ?? "/webhook",
      headers,
      agent: false,
    });
    const timer = setTimeout(() => req.destroy(new Error("no answer within 30 s")), 30_000);
    let answered = false;
    req.on("response", (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on("error", (error) => {
      // EPIPE / ECONNRESET after the relay refused a large body early: the answer is what counts.
      if (!answered) {
        clearTimeout(timer);
        reject(error);
      }
    });
    if (options.chunks !== undefined) {
      for (const chunk of options.chunks) req.write(chunk);
      req.end();
    } else req.end(options.body);
  });
}

/** POST /webhook of `body` signed with the relay's secret (or the given header value). */
function post(body: string | Buffer, signature: string | null = msSignature(body), extra: Send = {}): Promise<Answer> {
  const headers: Record<string, string | string[]> = { "content-type": "application/json", ...extra.headers };
  if (signature !== null) headers["ms-signature"] = signature;
  return send({ ...extra, body, headers });
}

function adminCall(path: string, authorization: string | null, init: Send = {}): Promise<Answer> {
  const headers: Record<string, string | string[]> = { ...init.headers };
  if (authorization !== null) headers.authorization = authorization;
  return send({ method: "GET", ...init, path: `/admin${path}`, headers });
}

/** An envelope of exactly `bytes` bytes, padded inside a Details field. */
function envelopeOfSize(bytes: number): string {
  const base = envelope([{ Action: "OrderCreated", Details: { Pad: "" } }]);
  const padded = base.replace('"Pad":""', `"Pad":"${"x".repeat(bytes - Buffer.byteLength(base))}"`);
  expect(Buffer.byteLength(padded)).toBe(bytes);
  return padded;
}

function nested(depth: number): string {
  return envelope([{ Action: "OrderCreated", Details: { Deep: "__DEEP__" } }]).replace(
    '"__DEEP__"',
    `${"[".repeat(depth)}${"]".repeat(depth)}`,
  );
}

function expectError(answer: Answer, status: number, code: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers["content-type"]).toMatch(/^application\/json/);
  expect(answer.json, answer.text).toMatchObject({ error: code });
  expect(typeof answer.json!.message).toBe("string");
  expect((answer.json!.message as string).length).toBeGreaterThan(10);
}

function expectAccepted(answer: Answer, notifications?: number): void {
  expect(answer.status, answer.text).toBe(202);
  expect(answer.json).toMatchObject({ status: "accepted" });
  if (notifications !== undefined) expect(answer.json!.notifications).toBe(notifications);
}

/** Secrets and tokens never appear in an answer. */
function expectNoSecrets(answer: Answer): void {
  for (const secret of [FIXTURE_SECRET, PREVIOUS_SECRET, ...Object.values(SECRETS)])
    expect(answer.text).not.toContain(secret);
}

const validBody = () => envelope([NOTIFICATION]);
const withNotifications = (notifications: unknown) =>
  JSON.stringify({ Id: freshId(), Attempt: 1, Properties: {}, Notifications: notifications });
const withId = (id: unknown) => JSON.stringify({ Id: id, Attempt: 1, Properties: {}, Notifications: [NOTIFICATION] });

interface Case {
  name: string;
  run: () => Promise<Answer>;
  check: (answer: Answer) => void;
}

const invalidEnvelope = (path: string) => (answer: Answer) => {
  expectError(answer, 400, "invalid_envelope");
  const issues = answer.json!.issues as { path: string; message: string }[];
  expect(issues.map((i) => i.path).join(" ")).toContain(path);
};

const CASES: Case[] = [
  // ms-signature: the cases every test of the door shares
  ...SIGNATURE_CASES.map(
    ({ name, body, header, code }): Case => ({
      name,
      run: () => {
        const valid = validBody();
        const signature = header(valid);
        const sent = body?.(valid) ?? valid;
        return Array.isArray(signature)
          ? post(sent, null, { headers: { "ms-signature": signature } })
          : post(sent, signature);
      },
      check: (a) => (code === null ? expectAccepted(a, 1) : expectError(a, 401, code)),
    }),
  ),
  // Size
  {
    name: "a body of exactly MAX_BODY_BYTES (accepted)",
    run: () => post(envelopeOfSize(MAX_BODY_BYTES)),
    check: (a) => expectAccepted(a, 1),
  },
  {
    name: "a body one byte over MAX_BODY_BYTES, with Content-Length",
    run: () => post(envelopeOfSize(MAX_BODY_BYTES + 1)),
    check: (a) => {
      expectError(a, 413, "body_too_large");
      expect(a.json!.limit).toBe(MAX_BODY_BYTES);
    },
  },
  {
    name: "a chunked body over the limit, without Content-Length",
    run: () => {
      const body = Buffer.from(envelopeOfSize(MAX_BODY_BYTES + 1));
      return send({
        headers: { "ms-signature": msSignature(body) },
        chunks: [body.subarray(0, 40_000), body.subarray(40_000)],
      });
    },
    check: (a) => expectError(a, 413, "body_too_large"),
  },
  {
    name: "a chunked body of exactly the limit, without Content-Length (accepted)",
    run: () => {
      const body = Buffer.from(envelopeOfSize(MAX_BODY_BYTES));
      return send({
        headers: { "ms-signature": msSignature(body) },
        chunks: [body.subarray(0, 1000), body.subarray(1000, 50_000), body.subarray(50_000)],
      });
    },
    check: (a) => expectAccepted(a, 1),
  },
  {
    name: "a 4 MB body, refused before it is read",
    run: () => post(Buffer.alloc(4 * 1_048_576, 0x20), `sha256=${"0".repeat(64)}`),
    check: (a) => expectError(a, 413, "body_too_large"),
  },

  // Not JSON
  { name: "an empty body", run: () => post(""), check: (a) => expectError(a, 400, "invalid_json") },
  { name: "a body of whitespace", run: () => post(" \r\n\t"), check: (a) => expectError(a, 400, "invalid_json") },
  {
    name: "the seed's test vector body (not JSON), correctly signed",
    run: () => post("{'test':'test2'}"),
    check: (a) => expectError(a, 400, "invalid_json"),
  },
  {
    name: "truncated JSON",
    run: () => post(validBody().slice(0, -2)),
    check: (a) => expectError(a, 400, "invalid_json"),
  },
  {
    name: "JSON followed by garbage",
    run: () => post(`${validBody()}}`),
    check: (a) => expectError(a, 400, "invalid_json"),
  },
  {
    name: "bytes that are not UTF-8",
    run: () => {
      const [head, tail] = validBody().split('"1"') as [string, string];
      return post(Buffer.concat([Buffer.from(`${head}"`), Buffer.from([0xff, 0xfe]), Buffer.from(`"${tail}`)]));
    },
    check: (a) => expectError(a, 400, "invalid_encoding"),
  },
  {
    name: "an encoded UTF-16 surrogate (CESU-8) inside a string",
    run: () => {
      const [head, tail] = validBody().split('"1"') as [string, string];
      return post(Buffer.concat([Buffer.from(`${head}"`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(`"${tail}`)]));
    },
    check: (a) => expectError(a, 400, "invalid_encoding"),
  },
  {
    name: "a UTF-8 byte order mark before the JSON (accepted, as .NET writers may add one)",
    run: () => post(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(validBody())])),
    check: (a) => expectAccepted(a, 1),
  },

  // Shape
  { name: "a JSON array", run: () => post(JSON.stringify([NOTIFICATION])), check: invalidEnvelope("(root)") },
  { name: "a JSON string", run: () => post('"OrderCreated"'), check: invalidEnvelope("(root)") },
  { name: "JSON null", run: () => post("null"), check: invalidEnvelope("(root)") },
  { name: "Id a number", run: () => post(withId(12345)), check: invalidEnvelope("Id") },
  { name: "Id empty", run: () => post(withId("")), check: invalidEnvelope("Id") },
  {
    name: "Id missing",
    run: () => post(JSON.stringify({ Attempt: 1, Notifications: [NOTIFICATION] })),
    check: invalidEnvelope("Id"),
  },
  { name: "Id with a space and non-ASCII", run: () => post(withId("order 42 – ö")), check: invalidEnvelope("Id") },
  { name: "Id of 201 characters", run: () => post(withId("a".repeat(201))), check: invalidEnvelope("Id") },
  {
    name: "Notifications an object",
    run: () => post(withNotifications({ 0: NOTIFICATION })),
    check: invalidEnvelope("Notifications"),
  },
  {
    name: "Notifications missing",
    run: () => post(JSON.stringify({ Id: freshId(), Attempt: 1 })),
    check: invalidEnvelope("Notifications"),
  },
  { name: "Notifications null", run: () => post(withNotifications(null)), check: invalidEnvelope("Notifications") },
  {
    name: "a notification that is a string",
    run: () => post(withNotifications(["OrderCreated"])),
    check: invalidEnvelope("Notifications[0]"),
  },
  {
    name: "Action missing",
    run: () => post(withNotifications([{ Details: {} }])),
    check: invalidEnvelope("Notifications[0].Action"),
  },
  {
    name: "Action a number",
    run: () => post(withNotifications([NOTIFICATION, { Action: 7, Details: {} }])),
    check: invalidEnvelope("Notifications[1].Action"),
  },
  {
    name: "Action empty",
    run: () => post(withNotifications([{ Action: "", Details: {} }])),
    check: invalidEnvelope("Notifications[0].Action"),
  },
  {
    name: "Details an array",
    run: () => post(withNotifications([{ Action: "OrderCreated", Details: [1, 2] }])),
    check: invalidEnvelope("Notifications[0].Details"),
  },
  {
    name: "Details null",
    run: () => post(withNotifications([{ Action: "OrderCreated", Details: null }])),
    check: invalidEnvelope("Notifications[0].Details"),
  },
  {
    name: "Details missing",
    run: () => post(withNotifications([{ Action: "OrderCreated" }])),
    check: invalidEnvelope("Notifications[0].Details"),
  },
  {
    name: "1001 notifications (more than the relay takes in one call)",
    run: () => post(withNotifications(Array.from({ length: 1001 }, () => ({ Action: "A", Details: {} })))),
    check: invalidEnvelope("Notifications"),
  },
  {
    name: "1000 notifications (accepted)",
    run: () => post(withNotifications(Array.from({ length: 1000 }, (_, i) => ({ Action: "A", Details: { i } })))),
    check: (a) => expectAccepted(a, 1000),
  },
  {
    name: "duplicate keys (accepted; the last one wins, as in JSON.parse)",
    run: () => {
      const first = freshId();
      const last = freshId();
      return post(
        `{"Id":"${first}","Id":"${last}","Notifications":[{"Action":"X","Details":{}}],"Notifications":[${JSON.stringify(NOTIFICATION)},${JSON.stringify(NOTIFICATION)}]}`,
      ).then((answer) => ({ ...answer, last }) as Answer);
    },
    check: (a) => {
      expectAccepted(a, 2);
      expect(a.json!.id).toBe((a as Answer & { last: string }).last);
    },
  },
  {
    name: "__proto__ and constructor keys (accepted, kept as data)",
    run: () =>
      post(
        `{"Id":"${freshId()}","__proto__":{"Notifications":[]},"Notifications":[{"Action":"__proto__","Details":{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}}]}`,
      ),
    check: (a) => expectAccepted(a, 1),
  },
  {
    name: "a realistic nesting depth of 20 in Details (accepted)",
    run: () => post(nested(20)),
    check: (a) => expectAccepted(a, 1),
  },
  // The envelope itself is 4 levels deep at Details' values, so nested(60) is 64 levels in all.
  {
    name: `nesting of exactly ${MAX_DEPTH} levels in all (accepted)`,
    run: () => post(nested(MAX_DEPTH - 4)),
    check: (a) => expectAccepted(a, 1),
  },
  {
    name: `nesting of ${MAX_DEPTH + 1} levels in all`,
    run: () => post(nested(MAX_DEPTH - 3)),
    check: (a) => expectError(a, 400, "nesting_too_deep"),
  },
  {
    name: "brackets inside strings do not count as nesting (accepted)",
    run: () =>
      post(envelope([{ Action: "OrderCreated", Details: { Note: `${"[{".repeat(500)}\\"${"]}".repeat(500)}` } }])),
    check: (a) => expectAccepted(a, 1),
  },
  {
    name: "Details nested 5 000 deep",
    run: () => post(nested(5000)),
    check: (a) => expectError(a, 400, "nesting_too_deep"),
  },
  {
    name: "Details nested 30 000 deep",
    run: () => post(nested(30_000)),
    check: (a) => expectError(a, 400, "nesting_too_deep"),
  },
  {
    name: "Content-Type text/plain (accepted: the signature covers the bytes, not the label)",
    run: () => post(validBody(), undefined, { headers: { "content-type": "text/plain" } }),
    check: (a) => expectAccepted(a, 1),
  },

  // The registration handshake
  {
    name: "GET /webhook?echo= with a token",
    run: () => send({ method: "GET", path: "/webhook?echo=abc-123_XYZ" }),
    check: (a) => {
      expect(a.status).toBe(200);
      expect(a.text).toBe("abc-123_XYZ");
      expect(a.headers["content-type"]).toMatch(/^text\/plain/);
    },
  },
  {
    name: "GET /webhook?echo= with markup is echoed as plain text, never HTML",
    run: () => send({ method: "GET", path: "/webhook?echo=%3Cscript%3Ealert(1)%3C/script%3E" }),
    check: (a) => {
      expect(a.status).toBe(200);
      expect(a.text).toBe("<script>alert(1)</script>");
      expect(a.headers["content-type"]).toMatch(/^text\/plain/);
    },
  },
  {
    name: "GET /webhook without echo",
    run: () => send({ method: "GET" }),
    check: (a) => expectError(a, 400, "echo_missing"),
  },
  {
    name: "GET /webhook with a 257-character echo",
    run: () => send({ method: "GET", path: `/webhook?echo=${"a".repeat(257)}` }),
    check: (a) => expectError(a, 400, "echo_invalid"),
  },
  {
    name: "GET /webhook with a space in the echo",
    run: () => send({ method: "GET", path: "/webhook?echo=a%20b" }),
    check: (a) => expectError(a, 400, "echo_invalid"),
  },

  // Methods
  ...(["PUT", "DELETE", "PATCH", "OPTIONS"] as const).map(
    (method): Case => ({
      name: `${method} /webhook`,
      run: () => {
        const body = validBody();
        return send({ method, body, headers: { "ms-signature": msSignature(body) } });
      },
      check: (a) => {
        expectError(a, 405, "method_not_allowed");
        expect(a.headers.allow).toBe("GET, HEAD, POST");
      },
    }),
  ),

  // Paths
  ...["/webhook/", "//webhook", "/WEBHOOK", "/webhook%2F", "/webhooks", "/webhook.json"].map(
    (path): Case => ({
      name: `POST ${path} (not the relay's door)`,
      run: () => {
        const body = validBody();
        return send({ path, body, headers: { "ms-signature": msSignature(body) } });
      },
      check: (a) => expectError(a, 404, "not_found"),
    }),
  ),
  {
    name: "POST /webhook/../admin/rules without a token reaches the admin API's guard, not the webhook",
    run: () => {
      const body = validBody();
      return send({ path: "/webhook/../admin/rules", body, headers: { "ms-signature": msSignature(body) } });
    },
    check: (a) => expectError(a, 401, "unauthorized"),
  },
  {
    name: "GET /webhook/..%2Fadmin/dead-letters without a token (an encoded slash is not a separator)",
    run: () => send({ method: "GET", path: "/webhook/..%2Fadmin/dead-letters" }),
    check: (a) => expectError(a, 404, "not_found"),
  },
  {
    name: "POST /admin/%2e%2e/webhook unsigned: dot segments resolve to /webhook, which still checks the signature",
    run: () => send({ path: "/admin/%2e%2e/webhook", body: validBody() }),
    check: (a) => expectError(a, 401, "signature_missing"),
  },
  {
    name: "POST /%77ebhook (percent-encoded) with a wrong signature",
    run: () => {
      const body = validBody();
      return send({ path: "/%77ebhook", body, headers: { "ms-signature": msSignature(body, "wrong") } });
    },
    check: (a) => expectError(a, 401, "signature_invalid"),
  },

  // The admin API's guard
  {
    name: "admin without Authorization",
    run: () => adminCall("/rules", null),
    check: (a) => {
      expectError(a, 401, "unauthorized");
      expect(a.headers["www-authenticate"]).toMatch(/^Bearer/);
    },
  },
  {
    name: "admin with a wrong token",
    run: () => adminCall("/rules", "Bearer not-the-token"),
    check: (a) => expectError(a, 401, "unauthorized"),
  },
  {
    name: "admin with the token minus its last character",
    run: () => adminCall("/rules", `Bearer ${ADMIN_TOKEN.slice(0, -1)}`),
    check: (a) => expectError(a, 401, "unauthorized"),
  },
  {
    name: "admin with the token plus a character",
    run: () => adminCall("/rules", `Bearer ${ADMIN_TOKEN}x`),
    check: (a) => expectError(a, 401, "unauthorized"),
  },
  {
    name: "admin with the token as Basic credentials",
    run: () => adminCall("/rules", `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString("base64")}`),
    check: (a) => expectError(a, 401, "unauthorized"),
  },
  {
    name: "admin with an empty Bearer",
    run: () => adminCall("/rules", "Bearer "),
    check: (a) => expectError(a, 401, "unauthorized"),
  },
  {
    name: "admin with the token in the query string",
    run: () => adminCall(`/rules?token=${ADMIN_TOKEN}`, null),
    check: (a) => expectError(a, 401, "unauthorized"),
  },
  {
    name: "admin with the webhook secret as token",
    run: () => adminCall("/dead-letters", `Bearer ${FIXTURE_SECRET}`),
    check: (a) => expectError(a, 401, "unauthorized"),
  },
  {
    name: "PUT /admin/rules with a wrong token leaves the rules alone",
    run: async () => {
      const answer = await adminCall("/rules", "Bearer wrong", {
        method: "PUT",
        body: JSON.stringify({ version: 1, destinations: {}, routes: [] }),
      });
      const rules = await adminCall("/rules", `Bearer ${ADMIN_TOKEN}`);
      expect(rules.json!.routes).toHaveLength(1);
      return answer;
    },
    check: (a) => expectError(a, 401, "unauthorized"),
  },
  {
    name: "admin with a lower-case bearer scheme (accepted: the scheme is case-insensitive)",
    run: () => adminCall("/rules", `bearer ${ADMIN_TOKEN}`),
    check: (a) => expect(a.status).toBe(200),
  },
  {
    name: "PUT /admin/rules with an invalid document",
    run: () =>
      adminCall("/rules", `Bearer ${ADMIN_TOKEN}`, {
        method: "PUT",
        body: JSON.stringify({
          version: 1,
          destinations: {},
          routes: [{ name: "r", actions: ["*"], to: ["nowhere"] }],
        }),
      }),
    check: (a) => {
      expectError(a, 422, "rules_invalid");
      expect(JSON.stringify(a.json!.issues)).toContain("nowhere");
    },
  },
  {
    name: "PUT /admin/rules with a body that is not JSON",
    run: () => adminCall("/rules", `Bearer ${ADMIN_TOKEN}`, { method: "PUT", body: "{version: 1" }),
    check: (a) => expectError(a, 400, "invalid_json"),
  },
  {
    name: "PUT /admin/rules over MAX_BODY_BYTES",
    run: () => adminCall("/rules", `Bearer ${ADMIN_TOKEN}`, { method: "PUT", body: " ".repeat(MAX_BODY_BYTES + 1) }),
    check: (a) => expectError(a, 413, "body_too_large"),
  },
  {
    name: "GET /admin/dead-letters?limit=0",
    run: () => adminCall("/dead-letters?limit=0", `Bearer ${ADMIN_TOKEN}`),
    check: (a) => expectError(a, 400, "invalid_query"),
  },
  {
    name: "GET /admin/dead-letters with a forged cursor",
    run: () => adminCall("/dead-letters?cursor=%7B%7D", `Bearer ${ADMIN_TOKEN}`),
    check: (a) => expectError(a, 400, "invalid_query"),
  },
  {
    name: "GET /admin/dead-letters/..%2F..%2Frules",
    run: () => adminCall("/dead-letters/..%2F..%2Frules", `Bearer ${ADMIN_TOKEN}`),
    check: (a) => expectError(a, 404, "dead_letter_not_found"),
  },
  {
    name: "POST /admin/route with something that is not an envelope",
    run: () => adminCall("/route", `Bearer ${ADMIN_TOKEN}`, { method: "POST", body: JSON.stringify({ Id: 1 }) }),
    check: (a) => expectError(a, 400, "invalid_envelope"),
  },
];

beforeAll(async () => {
  receiver = await startReceiver("all");
  relay = await startRelay({
    vars: { MAX_BODY_BYTES: String(MAX_BODY_BYTES), RETRY_SCHEDULE: "1,1,1", RULES_CACHE_SECONDS: "0" },
    secrets: { ...SECRETS, EXTEND_WEBHOOK_SECRET_PREVIOUS: PREVIOUS_SECRET },
  });
  const rules = {
    version: 1,
    destinations: { all: { url: `${receiver.url}/all` } },
    routes: [{ name: "all", actions: ["*"], to: ["all"] }],
  };
  const put = await adminCall("/rules", `Bearer ${ADMIN_TOKEN}`, { method: "PUT", body: JSON.stringify(rules) });
  expect(put.status, put.text).toBe(200);
});

afterAll(async () => {
  await Promise.allSettled([relay?.stop(), receiver?.stop()]);
});

describe("hostile and broken requests, each answered as documented and followed by a good call", () => {
  it("has a corpus of at least 40 cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
  });

  it.each(CASES.map((c) => [c.name, c] as const))("%s", async (_name, testCase) => {
    const answer = await testCase.run();
    testCase.check(answer);
    expectNoSecrets(answer);
    const id = freshId();
    const good = await post(envelope([NOTIFICATION], id));
    expect(good.status, `the good call after it: ${good.text}`).toBe(202);
    goodCalls.push({ id, after: testCase.name });
  });

  it("answers a sender's retry of an accepted call as a duplicate", async () => {
    const body = validBody();
    expectAccepted(await post(body), 1);
    // The relay remembers an accepted Id off the response's path, so the retry may briefly find nothing.
    const answer = await waitFor(
      "the duplicate answer",
      async () => {
        const retry = await post(body);
        return retry.status === 200 ? retry : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(answer.json).toEqual({ status: "duplicate", id: JSON.parse(body).Id });
  });

  it("delivered every good call made between the hostile ones", async () => {
    expect(goodCalls.length).toBeGreaterThanOrEqual(40);
    let missing: string[] = [];
    try {
      await waitFor(
        "the good calls' deliveries",
        () => {
          const delivered = new Set(receiver.delivered().map((r) => r.deliveryId));
          missing = goodCalls.filter(({ id }) => !delivered.has(`${id}.all`)).map(({ after }) => after);
          return missing.length === 0 ? true : undefined;
        },
        { timeoutMs: 60_000 },
      );
    } catch (error) {
      throw new Error(
        `${(error as Error).message}: the good calls after these cases never arrived: ${missing.join("; ")}`,
      );
    }
  });
});

describe("a relay without its secrets or with a bad setting fails closed", () => {
  it("refuses every call with 503 secret_not_configured and the admin API with 503 admin_disabled when no secret is set", async () => {
    const bare = await startRelay({ secrets: {} });
    try {
      const body = validBody();
      expectError(
        await send({ body, headers: { "ms-signature": msSignature(body) } }, bare.dev.port),
        503,
        "secret_not_configured",
      );
      expectError(await send({ body }, bare.dev.port), 503, "secret_not_configured");
      expectError(
        await send(
          { method: "GET", path: "/admin/rules", headers: { authorization: `Bearer ${ADMIN_TOKEN}` } },
          bare.dev.port,
        ),
        503,
        "admin_disabled",
      );
      const health = await send({ method: "GET", path: "/healthz" }, bare.dev.port);
      expect(health.json).toMatchObject({ status: "ok", webhookSecret: false, adminEnabled: false });
    } finally {
      await bare.stop();
    }
  });

  it("answers 503 misconfigured naming the bad var, never falling back to a default", async () => {
    const broken = await startRelay({ vars: { MAX_BODY_BYTES: "lots" } });
    try {
      const body = validBody();
      const answer = await send({ body, headers: { "ms-signature": msSignature(body) } }, broken.dev.port);
      expectError(answer, 503, "misconfigured");
      expect(answer.json!.message).toContain("MAX_BODY_BYTES");
    } finally {
      await broken.stop();
    }
  });
});
