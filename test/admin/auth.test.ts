import { describe, expect, it } from "vitest";
import { admin, fetchWith } from "../helpers.ts";

describe("admin authentication", () => {
  it("answers 401 without a token, with a WWW-Authenticate challenge", async () => {
    const response = await admin("/dead-letters", { headers: { authorization: "" } });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(await response.json()).toMatchObject({ error: "unauthorized" });
  });

  it.each(["Bearer wrong", "Bearer test-admin-tokenX", "Basic dGVzdDp0ZXN0", "Bearer", "test-admin-token"])(
    "answers 401 to %j",
    async (authorization) => {
      const response = await admin("/dead-letters", { headers: { authorization } });
      expect(response.status).toBe(401);
      const text = await response.text();
      expect(text).not.toContain("test-admin-token");
    },
  );

  it("accepts the scheme in any case", async () => {
    expect((await admin("/dead-letters", { headers: { authorization: "bearer test-admin-token" } })).status).toBe(200);
  });

  it("is disabled with 503 admin_disabled when ADMIN_TOKEN is unset", async () => {
    const response = await fetchWith(
      { ADMIN_TOKEN: undefined },
      new Request("https://relay.test/admin/dead-letters", { headers: { authorization: "Bearer anything" } }),
    );
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: "admin_disabled" });
  });
});
