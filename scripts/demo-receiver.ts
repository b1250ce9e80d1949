/**
 * The demo receiver for `npm run dev`: one HTTP server on loopback whose paths are the destinations of
 * the local rules (rules.example.json: /wms, /shop, /crm on port 8788). It prints each delivery in one
 * line and checks its signature the way a real receiver would: ms-signature with node:crypto's HMAC,
 * Standard Webhooks with the `standardwebhooks` package.
 *
 * It answers 200 when the signature verifies (or the destination is unsigned), 401 when it does not,
 * and `?status=NNN` in a destination's URL makes it answer NNN instead, to watch retries and dead letters.
 * Once a call's deliveries have gone quiet for a few seconds (by then the ledger has usually written them), it
 * prints, once per call Id, the `npm run trace` command that shows where the call went.
 *
 * Alone: node scripts/demo-receiver.ts [--port 8788] [--rules rules.example.json]
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { Webhook } from "standardwebhooks";
import { readDevVars } from "./lib/dev-vars.ts";
import { LOCAL_RELAY_URL } from "./lib/local-relay.ts";
import { shellWord } from "./lib/output.ts";
import { ROOT } from "./lib/wrangler-dev.ts";

export const DEMO_RECEIVER_PORT = 8788;
/** The relay `npm run trace` asks by default; the trace hint names --url only for another one. */
/** Quiet time after a call's last delivery before its trace hint is printed (the ledger's queue batches 2 s). */
export const TRACE_HINT_DELAY_MS = 2500;

export interface ReceiverDestination {
  /** The destination id in the rules. */
  name: string;
  /** URL path it is served on, e.g. /wms. */
  path: string;
  scheme: "ms-signature" | "standard-webhooks" | "none";
  /** The secret's value (not its name); undefined when unsigned or not known. */
  secret?: string | undefined;
}

export interface ReceivedDelivery {
  destination: string;
  deliveryId: string | null;
  attempt: string | null;
  actions: string[];
  scheme: ReceiverDestination["scheme"];
  /** null when the destination is unsigned. */
  verified: boolean | null;
  /** Why verification failed. */
  problem?: string;
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

export interface DemoReceiver {
  url: string;
  port: number;
  deliveries: ReceivedDelivery[];
  /** Replaces the destinations served (e.g. once the port, and so the rules' URLs, is known). */
  setDestinations(destinations: ReceiverDestination[]): void;
  /** Resolves with the first delivery (already received or arriving) that satisfies `test`. */
  waitFor(test: (delivery: ReceivedDelivery) => boolean, timeoutMs?: number): Promise<ReceivedDelivery>;
  close(): Promise<void>;
}

export interface DemoReceiverOptions {
  port?: number;
  destinations: ReceiverDestination[];
  /** Where the one-line summaries go; defaults to stdout. Pass `() => {}` to stay quiet. */
  print?: (line: string) => void;
  /** The relay the trace hint points at (default http://127.0.0.1:8787); `false` prints no trace hints. */
  relayUrl?: string | false;
  /** Quiet time before a call's trace hint; default TRACE_HINT_DELAY_MS. */
  traceHintDelayMs?: number;
}

export async function startDemoReceiver(options: DemoReceiverOptions): Promise<DemoReceiver> {
  const print = options.print ?? ((line: string) => console.log(line));
  let byPath = new Map<string, ReceiverDestination>();
  let width = 4;
  const setDestinations = (destinations: ReceiverDestination[]) => {
    byPath = new Map(destinations.map((d) => [d.path, d]));
    width = Math.max(...destinations.map((d) => d.name.length), 4);
  };
  setDestinations(options.destinations);
  const deliveries: ReceivedDelivery[] = [];
  const waiters = new Set<(delivery: ReceivedDelivery) => void>();
  // One trace hint per call Id, printed once its deliveries have gone quiet for a while.
  const hinted = new Set<string>();
  const pendingHints = new Map<string, NodeJS.Timeout>();
  const hintLater = (delivery: ReceivedDelivery) => {
    if (options.relayUrl === false) return;
    const callId = callIdOf(delivery);
    if (callId === undefined || hinted.has(callId)) return;
    clearTimeout(pendingHints.get(callId));
    const timer = setTimeout(() => {
      pendingHints.delete(callId);
      hinted.add(callId);
      print(traceHint(callId, width, options.relayUrl || LOCAL_RELAY_URL));
    }, options.traceHintDelayMs ?? TRACE_HINT_DELAY_MS);
    timer.unref();
    pendingHints.set(callId, timer);
  };

  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const url = new URL(request.url ?? "/", "http://receiver");
      const destination = byPath.get(url.pathname);
      if (request.method !== "POST" || destination === undefined) {
        response.writeHead(404, { "content-type": "text/plain" }).end("no demo destination here\n");
        return;
      }
      const raw = Buffer.concat(chunks);
      const { verified, problem } = verify(destination, raw, request.headers);
      const forced = Number(url.searchParams.get("status"));
      const status =
        Number.isInteger(forced) && forced >= 200 && forced <= 599 ? forced : verified === false ? 401 : 200;
      const delivery: ReceivedDelivery = {
        destination: destination.name,
        deliveryId: header(request.headers, "x-relay-delivery-id"),
        attempt: header(request.headers, "x-relay-attempt"),
        actions: actionsOf(raw),
        scheme: destination.scheme,
        verified,
        ...(problem !== undefined && { problem }),
        status,
        headers: request.headers,
        body: raw.toString("utf8"),
        receivedAt: Date.now(),
      };
      deliveries.push(delivery);
      print(summary(delivery, width));
      hintLater(delivery);
      response
        .writeHead(status, { "content-type": "text/plain" })
        .end(status < 300 ? "ok\n" : `${problem ?? "refused"}\n`);
      for (const waiter of waiters) waiter(delivery);
    });
  });
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(options.port ?? DEMO_RECEIVER_PORT, "127.0.0.1", () => done());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    deliveries,
    setDestinations,
    waitFor(test, timeoutMs = 30_000) {
      const found = deliveries.find(test);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((done, fail) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          const seen = deliveries.map((d) => `${d.destination} ${d.deliveryId} ${d.actions.join(",")}`).join("; ");
          fail(new Error(`no matching delivery within ${timeoutMs} ms (received: ${seen || "nothing"})`));
        }, timeoutMs);
        const waiter = (delivery: ReceivedDelivery) => {
          if (!test(delivery)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          done(delivery);
        };
        waiters.add(waiter);
      });
    },
    close() {
      for (const timer of pendingHints.values()) clearTimeout(timer);
      pendingHints.clear();
      return new Promise((done) => {
        server.close(() => done());
        server.closeAllConnections();
      });
    },
  };
}

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  return typeof value === "string" ? value : null;
}

function verify(
  destination: ReceiverDestination,
  raw: Buffer,
  headers: IncomingHttpHeaders,
): { verified: boolean | null; problem?: string } {
  if (destination.scheme === "none") return { verified: null };
  if (destination.secret === undefined) return { verified: false, problem: "the receiver does not know the secret" };
  if (destination.scheme === "ms-signature") {
    const given = header(headers, "ms-signature");
    if (given === null) return { verified: false, problem: "ms-signature header missing" };
    const expected = `sha256=${createHmac("sha256", destination.secret).update(raw).digest("hex")}`;
    const a = Buffer.from(given.toLowerCase());
    const b = Buffer.from(expected);
    return a.length === b.length && timingSafeEqual(a, b)
      ? { verified: true }
      : { verified: false, problem: "ms-signature does not match" };
  }
  try {
    new Webhook(destination.secret).verify(raw.toString("utf8"), {
      "webhook-id": header(headers, "webhook-id") ?? "",
      "webhook-timestamp": header(headers, "webhook-timestamp") ?? "",
      "webhook-signature": header(headers, "webhook-signature") ?? "",
    });
    return { verified: true };
  } catch (error) {
    return { verified: false, problem: `standard-webhooks: ${(error as Error).message}` };
  }
}

function actionsOf(raw: Buffer): string[] {
  try {
    const body = JSON.parse(raw.toString("utf8")) as { Notifications?: { Action?: unknown }[] };
    return (body.Notifications ?? []).map((n) => String(n.Action));
  } catch {
    return ["(body is not JSON)"];
  }
}

function summary(d: ReceivedDelivery, width: number): string {
  const signature =
    d.verified === null ? "unsigned" : d.verified ? `verified: yes (${d.scheme})` : `verified: NO (${d.problem})`;
  return [
    `[${d.destination.padEnd(width)}]`,
    `${d.deliveryId ?? "(no delivery id)"}`,
    `attempt ${d.attempt ?? "?"}`,
    d.actions.join(",") || "(no notifications)",
    signature,
    `→ ${d.status}`,
  ].join("  ");
}

/**
 * The call Id of a delivery: the body's envelope `Id` (receivers get the sender's text), else its
 * delivery id without `.<destination>` and a `.nK` / `.pK` part suffix.
 */
export function callIdOf(d: Pick<ReceivedDelivery, "deliveryId" | "destination" | "body">): string | undefined {
  if (d.deliveryId === null) return undefined;
  try {
    const id = (JSON.parse(d.body) as { Id?: unknown }).Id;
    if (typeof id === "string" && d.deliveryId.startsWith(`${id}.${d.destination}`)) return id;
  } catch {
    // not JSON: fall back to the delivery id
  }
  const suffix = `.${d.destination}`;
  const bare = d.deliveryId.replace(/\.[np]\d+$/, "");
  return bare.endsWith(suffix) && bare.length > suffix.length ? bare.slice(0, -suffix.length) : undefined;
}

/** `        trace: npm run trace -- <Id>`, indented under the delivery ids of the lines above. */
function traceHint(callId: string, width: number, relayUrl: string): string {
  const url = relayUrl.replace(/\/+$/, "") === LOCAL_RELAY_URL ? "" : ` --url ${relayUrl}`;
  return `${" ".repeat(width + 4)}trace: npm run trace -- ${shellWord(callId)}${url}`;
}

/**
 * The receiver's destinations from a rules document: those whose URL is on loopback at `port`, each
 * with its signing secret's value looked up in `secrets` (e.g. .dev.vars).
 */
export function receiverDestinations(
  rules: unknown,
  secrets: Record<string, string>,
  port: number,
): ReceiverDestination[] {
  const destinations = (
    rules as { destinations?: Record<string, { url?: string; signing?: { scheme?: string; secret?: string } }> }
  ).destinations;
  const out: ReceiverDestination[] = [];
  for (const [name, d] of Object.entries(destinations ?? {})) {
    if (typeof d.url !== "string" || !URL.canParse(d.url)) continue;
    const url = new URL(d.url);
    if (!["127.0.0.1", "localhost"].includes(url.hostname) || Number(url.port) !== port) continue;
    const scheme = (d.signing?.scheme ?? "none") as ReceiverDestination["scheme"];
    out.push({
      name,
      path: url.pathname,
      scheme,
      secret: d.signing?.secret === undefined ? undefined : secrets[d.signing.secret],
    });
  }
  return out;
}

/** A copy of a rules document with its loopback destinations at `fromPort` moved to `toPort` (tests use free ports). */
export function withReceiverPort<T>(rules: T, toPort: number, fromPort = DEMO_RECEIVER_PORT): T {
  const copy = structuredClone(rules) as { destinations?: Record<string, { url?: string }> };
  for (const d of Object.values(copy.destinations ?? {})) {
    if (typeof d.url !== "string" || !URL.canParse(d.url)) continue;
    const url = new URL(d.url);
    if (["127.0.0.1", "localhost"].includes(url.hostname) && Number(url.port) === fromPort) {
      url.port = String(toPort);
      d.url = url.toString();
    }
  }
  return copy as T;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: String(DEMO_RECEIVER_PORT) },
      rules: { type: "string", default: "rules.example.json" },
    },
  });
  const port = Number(values.port);
  const rules = JSON.parse(readFileSync(resolve(process.env.INIT_CWD ?? ROOT, values.rules), "utf8")) as unknown;
  const destinations = receiverDestinations(rules, readDevVars(), port);
  const receiver = await startDemoReceiver({ port, destinations });
  console.log(
    `demo receiver on ${receiver.url}: ${destinations.map((d) => `${d.path} (${d.name}, ${d.scheme})`).join(", ")}`,
  );
  process.on("SIGINT", () => void receiver.close().then(() => process.exit(0)));
}
