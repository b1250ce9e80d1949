import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_FAILURES } from "../../src/auth/limiter.ts";
import { listActivity } from "../../src/ledger/activity.ts";
import { ADMIN_TOKEN, admin, expectError, fetchWith, VIEWER_TOKEN } from "../helpers.ts";

let clients = 0;
/** A client of its own (the limiter counts per client, for the whole file). */
const client = () => `198.51.100.${++clients}`;
const as = (authorization: string, ip = client()) => ({ headers: { authorization, "cf-connecting-ip": ip } });

describe("admin authentication", () => {
  it("answers 401 without a token, with a WWW-Authenticate challenge", async () => {
    const response = await admin("/dead-letters", as(""));
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await response.json()).toMatchObject({ error: "unauthorized" });
  });

  it.each(["Bearer wrong", `Bearer ${ADMIN_TOKEN}X`, "Basic dGVzdDp0ZXN0", "Bearer", ADMIN_TOKEN])(
    "answers 401 to %j",
    async (authorization) => {
      const response = await admin("/dead-letters", as(authorization));
      expect(response.status).toBe(401);
      expect(await response.text()).not.toContain(ADMIN_TOKEN);
    },
  );

  it("accepts the scheme in any case, and names the actor: admin-token (operator), viewer-token (viewer)", async () => {
    expect((await admin("/dead-letters", as(`bearer ${ADMIN_TOKEN}`))).status).toBe(200);
    expect(await (await admin("/whoami", as(`Bearer ${ADMIN_TOKEN}`))).json()).toEqual({
      id: "admin-token",
      role: "operator",
      via: "api",
    });
    expect(await (await admin("/whoami", as(`Bearer ${VIEWER_TOKEN}`))).json()).toEqual({
      id: "viewer-token",
      role: "viewer",
      via: "api",
    });
  });

  it("is disabled with 503 admin_disabled when no token and no Access are set", async () => {
    const response = await fetchWith(
      { ADMIN_TOKEN: undefined, VIEWER_TOKEN: undefined },
      new Request("https://relay.test/admin/dead-letters", as("Bearer anything")),
    );
    await expectError(response, 503, "admin_disabled");
  });

  it("never reads the console's session cookie", async () => {
    const response = await admin("/rules", {
      headers: {
        authorization: "",
        cookie: "__Host-console_session=x; console_session=x",
        "cf-connecting-ip": client(),
      },
    });
    expect(response.status).toBe(401);
  });
});

describe("guessing the token (finding 2)", () => {
  it(`refuses a client with 429 and Retry-After after ${MAX_FAILURES} wrong bearers, the right one included; others go on`, async () => {
    const guesser = client();
    const answers = [];
    for (let i = 0; i < MAX_FAILURES; i++)
      answers.push((await admin("/rules", as(`Bearer guess-${i}`, guesser))).status);
    expect(answers).toEqual(Array(MAX_FAILURES).fill(401));
    const limited = await admin("/rules", as(`Bearer ${ADMIN_TOKEN}`, guesser));
    const body = await expectError(limited, 429, "too_many_attempts");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(500);
    expect(JSON.stringify(body)).not.toContain(ADMIN_TOKEN);
    expect((await admin("/rules", as(`Bearer ${ADMIN_TOKEN}`))).status).not.toBe(429);
  });

  it("counts an IPv6 client by its /64: another address of the same /64 is limited too", async () => {
    for (let i = 0; i < MAX_FAILURES; i++) await admin("/rules", as("Bearer wrong", `2001:db8:1:2::${i + 1}`));
    expect((await admin("/rules", as(`Bearer ${ADMIN_TOKEN}`, "2001:db8:1:2:ffff::9"))).status).toBe(429);
    expect((await admin("/rules", as(`Bearer ${ADMIN_TOKEN}`, "2001:db8:1:3::1"))).status).not.toBe(429);
  });

  it("does not let the viewer's own token reset a count of guesses at the operator's", async () => {
    const guesser = client();
    for (let i = 0; i < MAX_FAILURES - 1; i++) await admin("/rules", as("Bearer wrong", guesser));
    expect((await admin("/rules", as(`Bearer ${VIEWER_TOKEN}`, guesser))).status).not.toBe(401);
    expect((await admin("/rules", as("Bearer wrong", guesser))).status).toBe(401);
    expect((await admin("/rules", as(`Bearer ${ADMIN_TOKEN}`, guesser))).status).toBe(429);
  });

  it("checks no credential without a client address: no shared bucket for requests that lack one", async () => {
    const response = await admin("/rules", {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "cf-connecting-ip": "" },
    });
    await expectError(response, 400, "client_unknown");
  });

  it("refuses to run the admin API with a token shorter than 32 characters, naming it and never its value", async () => {
    for (const [name, value] of [
      ["ADMIN_TOKEN", "short-admin-token-1234567890"],
      ["VIEWER_TOKEN", "short-viewer-token"],
    ] as const) {
      const response = await fetchWith(
        { [name]: value },
        new Request("https://relay.test/admin/rules", as(`Bearer ${value}`)),
      );
      const body = await expectError(response, 503, "misconfigured");
      expect(body.message).toContain(`${name} is shorter than 32 characters`);
      expect(JSON.stringify(body)).not.toContain(value);
    }
  });
});

describe("roles", () => {
  it("lets a viewer read and refuses its changes with 403 forbidden, on record", async () => {
    const viewer = (path: string, init: RequestInit = {}) =>
      admin(path, { ...init, headers: { authorization: `Bearer ${VIEWER_TOKEN}`, "cf-connecting-ip": "203.0.113.7" } });
    expect((await viewer("/rules")).status).not.toBe(403);
    expect((await viewer("/rules/validate", { method: "POST", body: "{}" })).status).toBe(422);
    await expectError(await viewer("/destinations/wms/pause", { method: "POST" }), 403, "forbidden");
    await expectError(await viewer("/rules", { method: "PUT", body: "{}" }), 403, "forbidden");
    const { items } = await listActivity(env.LEDGER, { actor: "viewer-token", limit: 10 });
    expect(items.map((r) => [r.action, r.target, r.outcome, r.via, r.ip])).toEqual([
      ["rules.save", undefined, "forbidden", "api", "203.0.113.7"],
      ["destination.pause", "wms", "forbidden", "api", "203.0.113.7"],
    ]);
  });
});
