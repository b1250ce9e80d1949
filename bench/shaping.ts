/**
 * Shaping deliveries (docs/rules.md, "Shaping deliveries") under `wrangler dev` with no devtools session:
 * - coalescing: a storm of BalanceChanged on 100 products for a minute with a 10 s window, counted at the
 *   receiver: deliveries made, whether any arrived after a newer state of its product (the shop going back), and
 *   whether each product's last state arrived, and the time from the last call to the last delivery;
 * - order per key: 1,000 keys × 5 notifications to an ordered and an unordered destination in the same run,
 *   10 % of first attempts failing at both: each destination's throughput, and out-of-order arrivals per key;
 * - transforms: the CPU of one 10-field JSONata mapping (Node, tinybench), and the consumer's delivery rate
 *   with a transform against without, the receiver holding its answers until the backlog is queued.
 */
import { createServer, type Server } from "node:http";
import { Bench } from "tinybench";
import { startWranglerDev, type WranglerDev } from "../scripts/lib/wrangler-dev.ts";
import { transform } from "../src/delivery/transform.ts";
import { SECRETS, sign } from "./lib/fixtures.ts";
import { relayConfig } from "./lib/snapshot.ts";
import { median, sleep } from "./lib/stats.ts";

export interface CoalesceRun {
  calls: number;
  products: number;
  seconds: number;
  windowSeconds: number;
  deliveries: number;
  /** Deliveries that arrived after one of the same product with a newer balance (the receiver would go back). */
  stale: number;
  /** Products whose last delivery is not their last state (a lost update). */
  lastStateMissing: number;
  /** From the last call's answer to the last delivery. */
  tailSeconds: number;
}

export interface OrderRun {
  keys: number;
  perKey: number;
  failureShare: number;
  ordered: { perSecond: number; seconds: number; delivered: number };
  unordered: { perSecond: number; seconds: number; delivered: number };
  /** Arrivals at the ordered receiver that came before an earlier-accepted one of the same key was delivered. */
  outOfOrder: number;
}

export interface TransformRun {
  /** CPU ms per notification of a 10-field mapping (Node, tinybench's mean over its samples). */
  cpuMsPerNotification: number;
  /** Deliveries per second with the transform and without, the same backlog each (medians over rounds). */
  withPerSecond: number;
  withoutPerSecond: number;
  deliveries: number;
}

interface Arrival {
  id: string;
  attempt: number;
  at: number;
  status: number;
  body: string;
}

/** A receiver recording every request per first path segment; `fail` decides a 503; `hold` queues answers. */
function receiver(fail: (source: string, id: string, attempt: number) => boolean = () => false) {
  const arrivals = new Map<string, Arrival[]>();
  let held: (() => void)[] | undefined;
  const server: Server = createServer({ keepAliveTimeout: 60_000 }, (request, response) => {
    const source = /^\/([^/?]+)/.exec(request.url ?? "")?.[1] ?? "unknown";
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const answer = () => {
        const id = String(request.headers["x-relay-delivery-id"]);
        const attempt = Number(request.headers["x-relay-attempt"]);
        const status = fail(source, id, attempt) ? 503 : 200;
        const list = arrivals.get(source) ?? [];
        arrivals.set(source, list);
        list.push({ id, attempt, at: Date.now(), status, body: Buffer.concat(chunks).toString() });
        response.writeHead(status, { "Content-Length": "0" });
        response.end();
      };
      if (held === undefined) answer();
      else held.push(answer);
    });
  });
  return new Promise<{
    url: string;
    arrivals: Map<string, Arrival[]>;
    hold(): void;
    release(): void;
    stop(): Promise<void>;
  }>((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      resolve({
        url: `http://127.0.0.1:${port}`,
        arrivals,
        hold: () => {
          held ??= [];
        },
        release: () => {
          const waiting = held ?? [];
          held = undefined;
          for (const answer of waiting) answer();
        },
        stop: () =>
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    }),
  );
}

let sequence = 0;
/** Sends one signed call; resolves when the door answered 202, with when it did. */
async function post(dev: WranglerDev, notifications: unknown[]): Promise<number> {
  const body = new TextEncoder().encode(
    JSON.stringify({
      Id: `shape${(sequence++).toString().padStart(12, "0")}${Date.now().toString(16)}`,
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
  await response.body?.cancel();
  return Date.now();
}

async function relay(rules: unknown, vars: Record<string, string> = {}): Promise<WranglerDev> {
  const dev = await startWranglerDev({
    config: relayConfig(),
    secrets: SECRETS,
    vars: { RULES_CACHE_SECONDS: "1", ...vars },
    devtools: false,
  });
  const put = await fetch(`${dev.url}/admin/rules`, {
    method: "PUT",
    headers: { authorization: `Bearer ${SECRETS.ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(rules),
    signal: AbortSignal.timeout(60_000),
  });
  if (!put.ok) throw new Error(`PUT /admin/rules answered ${put.status}: ${await put.text()}`);
  await sleep(1500);
  return dev;
}

async function waitUntil(done: () => boolean, maxMs: number, quietMs = 15_000, count?: () => number): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = -1;
  let changed = Date.now();
  while (!done() && Date.now() < deadline) {
    const now = count?.() ?? 0;
    if (now !== last) {
      last = now;
      changed = Date.now();
    } else if (count !== undefined && Date.now() - changed > quietMs) return;
    await sleep(200);
  }
}

/** 10,000 BalanceChanged on 100 products over 60 s, coalesced with a 10 s window. */
export async function runCoalesce(
  options: { calls: number; products: number; seconds: number; windowSeconds: number },
  progress: (line: string) => void,
): Promise<CoalesceRun> {
  const sink = await receiver();
  const dev = await relay({
    version: 1,
    destinations: {
      shop: {
        url: `${sink.url}/shop`,
        coalesce: { windowSeconds: options.windowSeconds, actions: ["BalanceChanged"] },
      },
    },
    routes: [{ name: "stock", actions: ["BalanceChanged"], to: ["shop"] }],
  });
  try {
    progress(
      `shaping: ${options.calls} BalanceChanged on ${options.products} products over ${options.seconds} s, ${options.windowSeconds} s window`,
    );
    /** Per product, each balance the door accepted and when it answered. */
    const accepted = new Map<string, { balance: number; at: number }[]>();
    const started = Date.now();
    const sends: Promise<void>[] = [];
    let lastAnswer = 0;
    for (let i = 0; i < options.calls; i++) {
      const due = started + (i * options.seconds * 1000) / options.calls;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      const product = `P${i % options.products}`;
      const balance = i;
      sends.push(
        post(dev, [
          { Action: "BalanceChanged", Details: { ProductNumber: product, Warehouse: "YX", Balance: balance } },
        ]).then((at) => {
          const list = accepted.get(product) ?? [];
          accepted.set(product, list);
          list.push({ balance, at });
          lastAnswer = Math.max(lastAnswer, at);
        }),
      );
      // At most 50 calls in flight: a sender that keeps up, never a flood of sockets.
      if (sends.length >= 50) await Promise.all(sends.splice(0, 25));
    }
    await Promise.all(sends);
    const got = () => sink.arrivals.get("shop") ?? [];
    const finalBalance = new Map([...accepted].map(([p, list]) => [p, Math.max(...list.map((a) => a.balance))]));
    const lastDelivered = () => {
      const last = new Map<string, number>();
      for (const a of got()) {
        const d = JSON.parse(a.body).Notifications[0].Details as { ProductNumber: string; Balance: number };
        last.set(d.ProductNumber, Math.max(last.get(d.ProductNumber) ?? -1, d.Balance));
      }
      return last;
    };
    await waitUntil(
      () => [...finalBalance].every(([p, b]) => lastDelivered().get(p) === b),
      (options.windowSeconds + 120) * 1000,
    );
    const arrivals = got();
    // Stale: a delivery that arrived after one of the same product with a newer balance (the shop would go back).
    let stale = 0;
    const newest = new Map<string, number>();
    for (const a of arrivals) {
      const d = JSON.parse(a.body).Notifications[0].Details as { ProductNumber: string; Balance: number };
      if ((newest.get(d.ProductNumber) ?? -1) > d.Balance) stale++;
      newest.set(d.ProductNumber, Math.max(newest.get(d.ProductNumber) ?? -1, d.Balance));
    }
    const last = lastDelivered();
    const run: CoalesceRun = {
      ...options,
      deliveries: arrivals.filter((a) => a.status === 200).length,
      stale,
      lastStateMissing: [...finalBalance].filter(([p, b]) => last.get(p) !== b).length,
      tailSeconds: ((arrivals.at(-1)?.at ?? lastAnswer) - lastAnswer) / 1000,
    };
    progress(
      `shaping: ${run.deliveries} deliveries for ${options.calls} calls, ${run.stale} stale, ${run.lastStateMissing} products missing their last state, last delivery ${run.tailSeconds.toFixed(1)} s after the last call`,
    );
    return run;
  } finally {
    await dev.stop();
    await sink.stop();
  }
}

/** 1,000 keys × 5 notifications to an ordered and an unordered destination, 10 % of first attempts failing. */
export async function runOrder(
  options: { keys: number; perKey: number; failureShare: number },
  progress: (line: string) => void,
): Promise<OrderRun> {
  // A seeded choice of which deliveries fail their first attempt, the same share at both receivers.
  const fails = (id: string, attempt: number) => {
    if (attempt !== 1) return false;
    let hash = 2166136261;
    for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 16777619);
    return ((hash >>> 0) % 1000) / 1000 < options.failureShare;
  };
  const sink = await receiver((_source, id, attempt) => fails(id.split(".")[0]!, attempt));
  const dev = await relay(
    {
      version: 1,
      destinations: {
        ordered: { url: `${sink.url}/ordered`, order: "key" },
        unordered: { url: `${sink.url}/unordered` },
      },
      routes: [{ name: "orders", actions: ["OrderChanged"], to: ["ordered", "unordered"] }],
    },
    { RETRY_SCHEDULE: "1" },
  );
  try {
    const total = options.keys * options.perKey;
    progress(`shaping: ${total} OrderChanged on ${options.keys} orders to an ordered and an unordered destination`);
    /** Per key, the call Ids in the order the door accepted them (sent one at a time per key). */
    const sent = new Map<string, string[]>();
    /** Per key, its latest call's send: the next waits for it. */
    const sendsByKey = new Map<string, Promise<unknown>>();
    const sends: Promise<unknown>[] = [];
    for (let n = 0; n < options.perKey; n++) {
      for (let k = 0; k < options.keys; k++) {
        const key = `O-${k}`;
        const id = `ord${String(n * options.keys + k).padStart(9, "0")}${Date.now().toString(16)}`;
        const body = new TextEncoder().encode(
          JSON.stringify({
            Id: id,
            Attempt: 1,
            Properties: {},
            Notifications: [{ Action: "OrderChanged", Details: { OrderNumber: key, Step: n } }],
          }),
        );
        // A key's next notification only after its previous was accepted: the door's order is then certain.
        const previous = sendsByKey.get(key) ?? Promise.resolve();
        const send = previous.then(() =>
          fetch(`${dev.url}/webhook`, {
            method: "POST",
            headers: { "content-type": "application/json", "ms-signature": sign(body) },
            body,
            signal: AbortSignal.timeout(30_000),
          }).then(async (r) => {
            if (r.status !== 202) throw new Error(`the door answered ${r.status}`);
            await r.body?.cancel();
            const list = sent.get(key) ?? [];
            sent.set(key, list);
            list.push(id);
          }),
        );
        sendsByKey.set(key, send);
        sends.push(send);
        if (sends.length >= 30) await Promise.all(sends.splice(0, 15));
      }
    }
    await Promise.all(sends);
    const delivered = (source: string) =>
      new Set((sink.arrivals.get(source) ?? []).filter((a) => a.status === 200).map((a) => a.id)).size;
    await waitUntil(
      () => delivered("ordered") >= total && delivered("unordered") >= total,
      600_000,
      20_000,
      () => delivered("ordered") + delivered("unordered"),
    );
    const span = (source: string) => {
      const got = sink.arrivals.get(source) ?? [];
      const seconds = ((got.at(-1)?.at ?? 0) - (got[0]?.at ?? 0)) / 1000;
      return { perSecond: delivered(source) / Math.max(0.001, seconds), seconds, delivered: delivered(source) };
    };
    // Per key, the ordered receiver's arrivals must follow the door's order, each tried only after the earlier
    // one of its key was delivered.
    let outOfOrder = 0;
    const position = new Map<string, number>();
    for (const list of sent.values()) for (const [i, id] of list.entries()) position.set(id, i);
    const deliveredUpTo = new Map<string, number>();
    for (const a of sink.arrivals.get("ordered") ?? []) {
      const id = a.id.split(".")[0]!;
      const key = `O-${Number(id.slice(3, 12)) % options.keys}`;
      const place = position.get(id) ?? 0;
      if (place > (deliveredUpTo.get(key) ?? -1) + 1) outOfOrder++;
      if (a.status === 200) deliveredUpTo.set(key, Math.max(deliveredUpTo.get(key) ?? -1, place));
    }
    const run: OrderRun = { ...options, ordered: span("ordered"), unordered: span("unordered"), outOfOrder };
    progress(
      `shaping: ordered ${run.ordered.perSecond.toFixed(0)}/s, unordered ${run.unordered.perSecond.toFixed(0)}/s, ${outOfOrder} out of order`,
    );
    return run;
  } finally {
    await dev.stop();
    await sink.stop();
  }
}

/** A mapping of ten fields, as a CRM would want an order. */
const TEN_FIELDS =
  '{"order": Details.OrderNumber, "customer": Details.CustomerNumber, "type": Details.OrderType, "warehouse": Details.Warehouse, "total": Details.Total, "currency": Details.Currency, "lines": $count(Details.Lines), "event": $action, "call": $callId, "at": $receivedAt}';

const ORDER = {
  Action: "OrderCreated",
  Details: {
    OrderNumber: "3339887",
    CustomerNumber: "817472",
    OrderType: "NormalOrder",
    Warehouse: "YX",
    Total: 1299.5,
    Currency: "SEK",
    Lines: [{ Sku: "A" }, { Sku: "B" }, { Sku: "C" }],
  },
};

/** The transform's CPU in Node, and the consumer's rate with and without it under wrangler dev. */
export async function runTransform(
  options: { calls: number; rounds: number },
  progress: (line: string) => void,
): Promise<TransformRun> {
  const bench = new Bench({ time: 1000 });
  const bindings = { action: "OrderCreated", callId: "c", receivedAt: "2026-12-07T00:00:00.000Z", destination: "crm" };
  bench.add("10-field mapping", async () => {
    await transform(TEN_FIELDS, ORDER, bindings);
  });
  await bench.run();
  const result = bench.tasks[0]!.result;
  if (result.state !== "completed") throw new Error(`the transform's benchmark did not complete (${result.state})`);
  const cpuMsPerNotification = result.latency.mean;
  progress(`shaping: a 10-field JSONata mapping takes ${cpuMsPerNotification.toFixed(3)} ms per notification (Node)`);

  const sink = await receiver();
  const dev = await relay({
    version: 1,
    destinations: {
      with: { url: `${sink.url}/with`, mode: "single", transform: TEN_FIELDS },
      without: { url: `${sink.url}/without`, mode: "single" },
    },
    routes: [
      { name: "with", actions: ["OrderCreated"], where: { "Details.To": "with" }, to: ["with"] },
      { name: "without", actions: ["OrderCreated"], where: { "Details.To": "without" }, to: ["without"] },
    ],
  });
  try {
    const rates: Record<"with" | "without", number[]> = { with: [], without: [] };
    for (let round = 0; round < options.rounds; round++) {
      for (const to of round % 2 === 0 ? (["with", "without"] as const) : (["without", "with"] as const)) {
        sink.arrivals.delete(to);
        sink.hold();
        for (let i = 0; i < options.calls; i += 10) {
          await Promise.all(
            Array.from({ length: Math.min(10, options.calls - i) }, () =>
              post(dev, [{ ...ORDER, Details: { ...ORDER.Details, To: to } }]),
            ),
          );
        }
        await sleep(1000);
        sink.release();
        await waitUntil(() => (sink.arrivals.get(to)?.length ?? 0) >= options.calls, 120_000);
        const got = sink.arrivals.get(to) ?? [];
        // The first batch was answered at the release: the rate is over what followed.
        const seconds = ((got.at(-1)?.at ?? 0) - (got[10]?.at ?? 0)) / 1000;
        rates[to].push((got.length - 11) / Math.max(0.001, seconds));
      }
    }
    const run: TransformRun = {
      cpuMsPerNotification,
      withPerSecond: median(rates.with),
      withoutPerSecond: median(rates.without),
      deliveries: options.calls,
    };
    progress(
      `shaping: consumer ${run.withPerSecond.toFixed(0)}/s with the transform, ${run.withoutPerSecond.toFixed(0)}/s without`,
    );
    return run;
  } finally {
    await dev.stop();
    await sink.stop();
  }
}
