/**
 * Flow control (docs/flow-control.md) under `wrangler dev`: a rate-limited destination fed faster than its
 * limit for a while, measured at the receiver; and a 10,000-delivery backlog held by a paused destination,
 * drained after resume. The receiver here records every request's delivery id, attempt and arrival time, so
 * that losses, extra attempts and order can be counted.
 */
import { readdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { startWranglerDev, type WranglerDev } from "../scripts/lib/wrangler-dev.ts";
import { SECRETS, sign } from "./lib/fixtures.ts";
import { relayConfig } from "./lib/snapshot.ts";
import { sleep } from "./lib/stats.ts";

export interface LimitedRun {
  perSecond: number;
  /** Calls offered per second, above the limit so that the gate holds some. */
  offeredPerSecond: number;
  windowSeconds: number;
  /** Arrivals per second over the window. */
  measuredPerSecond: number;
  expected: number;
  delivered: number;
  lost: number;
  /** Requests beyond one per delivery, and requests with an attempt other than 1. */
  extraAttempts: number;
}

export interface HeldBacklogRun {
  deliveries: number;
  /** From the first call sent until the gate held them all. */
  holdSeconds: number;
  /** From resume until the last arrival. */
  drainSeconds: number;
  perSecond: number;
  lost: number;
  extraAttempts: number;
  /** Whether the arrivals came in exactly the gate's order (its held rows by sequence). */
  inOrder: boolean;
  /** The farthest an arrival was from its place in the gate's order. */
  maxDisplacement: number;
}

interface Arrival {
  id: string;
  attempt: string;
  at: number;
}

function receiver(): Promise<{ url: string; arrivals: Map<string, Arrival[]>; server: Server }> {
  const arrivals = new Map<string, Arrival[]>();
  const server = createServer({ keepAliveTimeout: 60_000 }, (request, response) => {
    const source = /^\/([^/?]+)/.exec(request.url ?? "")?.[1] ?? "unknown";
    request.resume();
    request.on("end", () => {
      const list = arrivals.get(source) ?? [];
      arrivals.set(source, list);
      list.push({
        id: String(request.headers["x-relay-delivery-id"]),
        attempt: String(request.headers["x-relay-attempt"]),
        at: Date.now(),
      });
      response.writeHead(200, { "Content-Length": "0" });
      response.end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      resolve({ url: `http://127.0.0.1:${port}`, arrivals, server });
    }),
  );
}

export async function runFlow(
  options: { perSecond: number; seconds: number; backlog: number },
  progress: (line: string) => void,
): Promise<{ limited: LimitedRun; backlog: HeldBacklogRun }> {
  const sink = await receiver();
  const dev = await startWranglerDev({
    config: relayConfig(),
    secrets: SECRETS,
    vars: { RULES_CACHE_SECONDS: "1" },
  });
  try {
    const admin = (path: string, init: RequestInit = {}) =>
      fetch(`${dev.url}/admin${path}`, {
        ...init,
        headers: { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}`, "content-type": "application/json" },
        signal: AbortSignal.timeout(60_000),
      });
    const rules = {
      version: 1,
      destinations: {
        limited: { url: `${sink.url}/limited`, rateLimit: { perSecond: options.perSecond } },
        paused: { url: `${sink.url}/paused`, mode: "single" },
      },
      routes: [
        { name: "limited", actions: ["OrderCreated"], to: ["limited"] },
        { name: "paused", actions: ["ProductChanged"], to: ["paused"] },
      ],
    };
    const put = await admin("/rules", { method: "PUT", body: JSON.stringify(rules) });
    if (!put.ok) throw new Error(`PUT /admin/rules answered ${put.status}`);
    await sleep(1500);
    const limited = await runLimited(dev, sink.arrivals, options, progress);
    const backlog = await runHeldBacklog(dev, admin, sink.arrivals, options.backlog, progress);
    return { limited, backlog };
  } finally {
    await dev.stop();
    await new Promise((resolve) => sink.server.close(resolve));
  }
}

let sequence = 0;
async function post(dev: WranglerDev, notifications: unknown[]): Promise<void> {
  const body = new TextEncoder().encode(
    JSON.stringify({
      Id: `flow${(sequence++).toString().padStart(12, "0")}${Date.now().toString(16)}`,
      Attempt: 1,
      Properties: { NotificationId: String(sequence) },
      Notifications: notifications,
    }),
  );
  const response = await fetch(`${dev.url}/webhook`, {
    method: "POST",
    headers: { "content-type": "application/json", "ms-signature": sign(body) },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  if (response.status !== 202) throw new Error(`the door answered ${response.status}: ${await response.text()}`);
}

/** Calls at 1.2× the limit for `seconds`; the rate is measured at the receiver over the same span. */
async function runLimited(
  dev: WranglerDev,
  arrivals: Map<string, Arrival[]>,
  options: { perSecond: number; seconds: number },
  progress: (line: string) => void,
): Promise<LimitedRun> {
  const offered = Math.ceil(options.perSecond * 1.2);
  const total = offered * options.seconds;
  progress(`flow: ${total} calls at ${offered}/s to a destination limited to ${options.perSecond}/s`);
  const started = Date.now();
  const sends: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / offered;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    sends.push(post(dev, [{ Action: "OrderCreated", Details: { OrderNumber: String(i) } }]));
  }
  await Promise.all(sends);
  const deadline = Date.now() + (total / options.perSecond) * 1000 + 60_000;
  while ((arrivals.get("limited")?.length ?? 0) < total && Date.now() < deadline) await sleep(200);
  const got = arrivals.get("limited") ?? [];
  const first = got[0]?.at ?? started;
  // The window: from the first arrival, `seconds` long (the gate is busy the whole time: calls keep coming).
  const inWindow = got.filter((a) => a.at < first + options.seconds * 1000).length;
  const ids = new Set(got.map((a) => a.id));
  const run: LimitedRun = {
    perSecond: options.perSecond,
    offeredPerSecond: offered,
    windowSeconds: options.seconds,
    measuredPerSecond: inWindow / options.seconds,
    expected: total,
    delivered: ids.size,
    lost: total - ids.size,
    extraAttempts: got.length - ids.size + got.filter((a) => a.attempt !== "1").length,
  };
  progress(
    `flow: ${run.measuredPerSecond.toFixed(1)}/s measured over ${options.seconds} s (limit ${options.perSecond}/s), ${run.lost} lost, ${run.extraAttempts} extra attempts`,
  );
  return run;
}

/** Pauses `paused`, sends `count` deliveries (calls of 100 notifications, mode single), resumes, times the drain. */
async function runHeldBacklog(
  dev: WranglerDev,
  admin: (path: string, init?: RequestInit) => Promise<Response>,
  arrivals: Map<string, Arrival[]>,
  count: number,
  progress: (line: string) => void,
): Promise<HeldBacklogRun> {
  const pause = await admin("/destinations/paused/pause", { method: "POST" });
  if (!pause.ok) throw new Error(`pause answered ${pause.status}`);
  // The pause reaches every consumer within the gates' cache time (2 s).
  await sleep(2500);
  const started = Date.now();
  const perCall = 100;
  const calls = Math.ceil(count / perCall);
  progress(`flow: pausing "paused" and sending ${calls} calls × ${perCall} notifications`);
  for (let c = 0; c < calls; c += 4) {
    await Promise.all(
      Array.from({ length: Math.min(4, calls - c) }, (_, k) =>
        post(
          dev,
          Array.from({ length: perCall }, (_, i) => ({
            Action: "ProductChanged",
            Details: { ProductNumber: `${c + k}-${i}` },
          })),
        ),
      ),
    );
  }
  const held = async () =>
    ((await (await admin("/destinations/paused")).json()) as { held: number; state: string }).held;
  while ((await held()) < count && Date.now() - started < 600_000) await sleep(500);
  const holdSeconds = (Date.now() - started) / 1000;
  const order = gateOrder(dev.persistTo);
  progress(`flow: ${await held()} held after ${holdSeconds.toFixed(1)} s; resuming`);
  const resume = await admin("/destinations/paused/resume", { method: "POST" });
  if (!resume.ok) throw new Error(`resume answered ${resume.status}`);
  const resumed = Date.now();
  while ((arrivals.get("paused")?.length ?? 0) < count && Date.now() - resumed < 600_000) await sleep(200);
  const got = arrivals.get("paused") ?? [];
  const last = got.at(-1)?.at ?? Date.now();
  const ids = new Set(got.map((a) => a.id));
  const place = new Map(order.map((id, i) => [id, i]));
  const displacement = got.map((a, i) => Math.abs((place.get(a.id) ?? i) - i));
  const run: HeldBacklogRun = {
    deliveries: got.length,
    holdSeconds,
    drainSeconds: (last - resumed) / 1000,
    perSecond: got.length / Math.max(0.001, (last - resumed) / 1000),
    lost: count - ids.size,
    extraAttempts: got.length - ids.size + got.filter((a) => a.attempt !== "1").length,
    inOrder: order.length === got.length && got.every((a, i) => order[i] === a.id),
    maxDisplacement: Math.max(0, ...displacement),
  };
  progress(
    `flow: ${got.length} drained in ${run.drainSeconds.toFixed(1)} s (${run.perSecond.toFixed(0)}/s), ${run.lost} lost, in order: ${run.inOrder} (at most ${run.maxDisplacement} places off)`,
  );
  return run;
}

/** The delivery ids a gate holds, in its order: read from the Durable Object's own SQLite file. */
function gateOrder(persistTo: string): string[] {
  const root = join(persistTo, "v3", "do");
  for (const folder of readdirSync(root)) {
    for (const file of readdirSync(join(root, folder))) {
      if (!file.endsWith(".sqlite")) continue;
      const db = new DatabaseSync(join(root, folder, file), { readOnly: true });
      try {
        const table = db.prepare("SELECT name FROM sqlite_master WHERE name = 'held'").get();
        if (table === undefined) continue;
        const rows = db.prepare("SELECT delivery_id AS id FROM held ORDER BY seq").all() as { id: string }[];
        if (rows.length > 0) return rows.map((r) => r.id);
      } finally {
        db.close();
      }
    }
  }
  return [];
}
