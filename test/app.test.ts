/**
 * What the app answers outside any one route (src/app.ts): no bad var's value in a public answer (finding 5),
 * and headers that keep a browser from running what the relay reflects on the console's origin (finding 7).
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { expectError, fetchWith, msSignature } from "./helpers.ts";

describe("a bad var", () => {
  it("is named by /webhook's 503 misconfigured, never quoted", async () => {
    const body = JSON.stringify({ Id: "x", Attempt: 1, Notifications: [] });
    const request = new Request("https://relay.test/webhook", {
      method: "POST",
      headers: { "content-type": "application/json", "ms-signature": msSignature(body, "fixture-secret") },
      body,
    });
    const error = await expectError(await fetchWith({ MAX_BODY_BYTES: "lots" }, request), 503, "misconfigured");
    expect(error.message).toContain("MAX_BODY_BYTES");
    expect(JSON.stringify(error)).not.toContain("lots");
  });

  it("is named by /healthz's 503 misconfigured, never quoted", async () => {
    const error = await expectError(
      await fetchWith({ RETRY_SCHEDULE: "10,30,internal-host.example" }, new Request("https://relay.test/healthz")),
      503,
      "misconfigured",
    );
    expect(error.message).toContain("RETRY_SCHEDULE");
    expect(JSON.stringify(error)).not.toContain("internal-host.example");
  });
});

describe("every answer", () => {
  it("to an echo holding markup is text that no browser sniffs or runs (nosniff, a CSP of its own)", async () => {
    const token = "<script>alert(1)</script>";
    const response = await exports.default.fetch(`https://relay.test/webhook?echo=${encodeURIComponent(token)}`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe(token);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'; sandbox");
  });

  it("outside the console is nosniff too (health, errors, the admin API)", async () => {
    for (const path of ["/healthz", "/nothing-here", "/admin/rules", "/webhook"]) {
      const response = await exports.default.fetch(`https://relay.test${path}`);
      expect(response.headers.get("x-content-type-options"), path).toBe("nosniff");
    }
  });

  it("of /healthz says the admin API is off while a token is too short", async () => {
    const response = await fetchWith({ ADMIN_TOKEN: "short" }, new Request("https://relay.test/healthz"));
    expect(await response.json()).toMatchObject({ status: "ok", adminEnabled: false });
  });
});
