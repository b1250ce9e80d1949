import { describe, expect, it } from "vitest";
import { createApp } from "../../src/app.ts";
import { ROUTES } from "../../src/auth/routes.ts";

/** The one table of what each route needs (src/auth/routes.ts) covers the app, and says what the docs say. */
describe("the routes' roles", () => {
  const routes = createApp().routes.map((r) => `${r.method} ${r.path}`);
  // Middleware (`use`) is registered as ALL on a wildcard path; every other route must be in the table.
  const concrete = [...new Set(routes)].filter(
    (key) =>
      (key.startsWith("/admin") || / \/(admin|console)/.test(key)) && !(key.startsWith("ALL ") && key.endsWith("*")),
  );

  it("names every route of /admin and /console", () => {
    const missing = concrete.filter((key) => !Object.hasOwn(ROUTES, key));
    expect(missing, "routes missing from src/auth/routes.ts").toEqual([]);
    expect(concrete.length).toBeGreaterThan(40);
  });

  it("names no route the app does not have", () => {
    expect(Object.keys(ROUTES).filter((key) => !routes.includes(key))).toEqual([]);
  });

  it("lets a viewer every GET, and needs an operator for every change that has an action", () => {
    for (const [key, need] of Object.entries(ROUTES)) {
      if (key.startsWith("GET ")) expect(need.role, key).not.toBe("operator");
      if ("action" in need && key !== "POST /console/logout") expect(need.role, key).toBe("operator");
    }
    expect(
      Object.entries(ROUTES)
        .filter(([, n]) => n.role === "public")
        .map(([k]) => k),
    ).toEqual(["GET /console/style.css", "GET /console/login", "POST /console/login"]);
  });
});
