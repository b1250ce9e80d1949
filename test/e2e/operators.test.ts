/**
 * Operators on `wrangler dev` (docs/console.md): Cloudflare Access assertions from a local certs server (an
 * operator pauses, a viewer is refused, the activity log names both), a token session that sign-out ends at
 * once, the idle timeout through the test clock (DEV_CLOCK), a rules restore, and the rules CLI reading with
 * only VIEWER_TOKEN.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/lib/wrangler-dev.ts";
import { tempDir } from "../temp.ts";
import { AUD, type FakeAccess, startAccess } from "./lib/access.ts";
import { ok, type Receiver, startReceiver } from "./lib/receivers.ts";
import { ADMIN_TOKEN, type Relay, startRelay, VIEWER_TOKEN } from "./lib/relay.ts";

let access: FakeAccess;
let relay: Relay;
let wms: Receiver;

const OPERATOR = "ops@example.com";
const VIEWER = "viewer@example.com";

const rules = (routes: unknown[] = []) => ({ version: 1, destinations: { wms: { url: wms.url } }, routes });

async function asAccess(email: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("cf-access-jwt-assertion", await access.assertion(email));
  return fetch(`${relay.url}${path}`, { ...init, headers, redirect: "manual" });
}

/** A console request as a browser without script sends it, at the test clock's `now` when given. */
function consoleRequest(path: string, cookie: string, init: RequestInit & { now?: number } = {}) {
  const headers = new Headers(init.headers);
  headers.set("cookie", cookie);
  if (init.now !== undefined) headers.set("x-dev-clock", String(init.now));
  return fetch(`${relay.url}${path}`, { ...init, headers, redirect: "manual" });
}

async function signIn(now?: number): Promise<string> {
  const response = await fetch(`${relay.url}/console/login`, {
    method: "POST",
    redirect: "manual",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      origin: relay.url,
      ...(now !== undefined && { "x-dev-clock": String(now) }),
    },
    body: new URLSearchParams({ token: ADMIN_TOKEN }).toString(),
  });
  expect(response.status).toBe(303);
  return response.headers.get("set-cookie")!.split(";")[0]!;
}

beforeAll(async () => {
  [access, wms] = await Promise.all([startAccess(), startReceiver("wms", ok)]);
  relay = await startRelay({
    vars: {
      ACCESS_TEAM_DOMAIN: access.teamDomain,
      ACCESS_AUD: AUD,
      OPERATORS: OPERATOR,
      CONSOLE_TOKEN_SIGN_IN: "on",
      CONSOLE_IDLE_MINUTES: "5",
      DEV_CLOCK: "on",
      RULES_CACHE_SECONDS: "0",
    },
  });
  expect((await relay.admin("/rules", { method: "PUT", body: JSON.stringify(rules()) })).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await relay?.stop();
  await Promise.all([access?.stop(), wms?.stop()]);
});

describe("Cloudflare Access", () => {
  it("lets an operator pause, refuses a viewer (403), and the activity log names both", async () => {
    const paused = await asAccess(OPERATOR, "/admin/destinations/wms/pause", { method: "POST" });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toMatchObject({ state: "paused", pausedBy: "hand" });
    const refused = await asAccess(VIEWER, "/admin/destinations/wms/resume", { method: "POST" });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: "forbidden" });
    expect(await (await asAccess(VIEWER, "/admin/whoami")).json()).toEqual({ id: VIEWER, role: "viewer", via: "api" });

    const log = (await (await asAccess(VIEWER, "/admin/activity?target=wms")).json()) as {
      items: { id: number; actor: string; role: string; action: string; outcome: string; via: string }[];
    };
    expect(log.items.map((r) => [r.actor, r.role, r.action, r.outcome, r.via])).toEqual([
      [VIEWER, "viewer", "destination.resume", "forbidden", "api"],
      [OPERATOR, "operator", "destination.pause", "ok", "api"],
    ]);
    // The console (through Access) links the pause to its row; a viewer sees no pause or resume form.
    const page = await (await asAccess(VIEWER, "/console/destinations")).text();
    expect(page).toContain(`href="/console/activity/${log.items[1]!.id}"`);
    expect(page).toContain(OPERATOR);
    expect(page).not.toContain('action="/console/destinations/wms/resume"');
    expect((await asAccess(OPERATOR, "/admin/destinations/wms/resume", { method: "POST" })).status).toBe(200);
  });

  it("refuses an invalid assertion with 401 access_denied, never falling back to the bearer", async () => {
    const forged = await access.assertion(OPERATOR, { aud: ["another-application"] });
    const response = await fetch(`${relay.url}/admin/rules`, {
      headers: { "cf-access-jwt-assertion": forged, authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: "access_denied" });
  });
});

describe("token sessions", () => {
  it("end at sign-out: the old cookie then redirects to the sign-in form", async () => {
    const cookie = await signIn();
    const overview = await consoleRequest("/console", cookie);
    expect(overview.status).toBe(200);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await overview.text())![1]!;
    const out = await consoleRequest("/console/logout", cookie, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: relay.url },
      body: new URLSearchParams({ csrf }).toString(),
    });
    expect(out.status).toBe(303);
    const after = await consoleRequest("/console/rules", cookie);
    expect(after.status).toBe(303);
    expect(after.headers.get("location")).toBe("/console/login?next=%2Fconsole%2Frules");
  });

  it("end after CONSOLE_IDLE_MINUTES without a request (the test clock, honoured on loopback only)", async () => {
    const T = Date.now();
    const cookie = await signIn(T);
    expect((await consoleRequest("/console", cookie, { now: T + 4 * 60_000 })).status).toBe(200);
    expect((await consoleRequest("/console", cookie, { now: T + 8 * 60_000 })).status).toBe(200);
    const idle = await consoleRequest("/console", cookie, { now: T + 14 * 60_000 });
    expect(idle.status).toBe(303);
    expect(idle.headers.get("location")).toBe("/console/login");
  });
});

describe("the rules history", () => {
  it("restores an earlier version, validated, on record", async () => {
    const first = rules([{ name: "orders", actions: ["OrderCreated"], to: ["wms"] }]);
    const saved = (await (await relay.admin("/rules", { method: "PUT", body: JSON.stringify(first) })).json()) as {
      version: number;
    };
    expect((await relay.admin("/rules", { method: "PUT", body: JSON.stringify(rules()) })).status).toBe(200);
    const versions = (await (await relay.admin("/rules/versions")).json()) as {
      items: { version: number; inForce: boolean }[];
    };
    expect(versions.items[0]).toMatchObject({ inForce: true });
    const restored = await relay.admin(`/rules/versions/${saved.version}/restore`, { method: "POST" });
    expect(restored.status).toBe(200);
    expect(await (await relay.admin("/rules")).json()).toEqual(first);
    const log = (await (await relay.admin("/activity?action=rules.restore")).json()) as {
      items: { actor: string; detail: { restored: number } }[];
    };
    expect(log.items[0]).toMatchObject({ actor: "admin-token", detail: { restored: saved.version } });
  });

  it("is read by the rules CLI with only VIEWER_TOKEN; a push then needs ADMIN_TOKEN", async () => {
    const run = (...args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        const { ADMIN_TOKEN: _, ...env } = process.env;
        const child = spawn(join(ROOT, "node_modules", ".bin", "node"), ["scripts/rules.ts", ...args], {
          cwd: ROOT,
          env: { ...env, VIEWER_TOKEN, INIT_CWD: ROOT },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("close", (code) => done({ code, stdout, stderr }));
      });
    const pulled = await run("pull", "--url", relay.url);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(JSON.parse(pulled.stdout)).toMatchObject({ version: 1 });
    const file = join(tempDir("rules-url"), "rules.json");
    writeFileSync(file, JSON.stringify(rules()));
    const pushed = await run("push", file, "--url", relay.url);
    expect(pushed.code).toBe(2);
    expect(pushed.stderr).toContain("no ADMIN_TOKEN: pushing changes the rules");
  });
});
