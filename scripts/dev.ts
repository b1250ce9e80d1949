/**
 * `npm run dev`: the local loop in one command. Creates .dev.vars from .dev.vars.example when missing,
 * seeds rules.example.json into the local KV, starts the demo receiver (127.0.0.1:8788) and the relay
 * under `wrangler dev` (127.0.0.1:8787, local KV and Queues kept in .wrangler/state across restarts).
 * Ctrl-C stops everything.
 *
 * Options: --port 8787 · --receiver-port 8788 · --rules <file> (default rules.example.json) ·
 * --keep-rules (do not seed; keep what the local KV holds).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { secretsOf, validateRules } from "../src/rules/schema.ts";
import {
  DEMO_RECEIVER_PORT,
  type DemoReceiver,
  receiverDestinations,
  startDemoReceiver,
  withReceiverPort,
} from "./demo-receiver.ts";
import { DEV_VARS, ensureDevVars, readDevVars } from "./lib/dev-vars.ts";
import { RELAY_PORT } from "./lib/local-relay.ts";
import { withoutColour } from "./lib/output.ts";
import { ROOT, startWranglerDev, type WranglerDev } from "./lib/wrangler-dev.ts";
import { DEV_STATE_DIR, putRulesFile } from "./lib/wrangler-kv.ts";

const EXAMPLE_RULES_FILE = join(ROOT, "rules.example.json");
/**
 * Faster than production so retries and rule changes show up while you watch. Passed with --var, not
 * kept in .dev.vars: the workers tests read .dev.vars too and must see wrangler.toml's values.
 */
const DEV_LOOP_VARS = { RETRY_SCHEDULE: "2,5,10,30,60", RULES_CACHE_SECONDS: "2" };

class DevLoopError extends Error {
  override name = "DevLoopError";
}

/**
 * Validates a rules file (with `secrets` to warn about missing ones) and writes it into the local KV of
 * `persistTo`. Throws DevLoopError naming the problems when it is invalid. Returns the warnings.
 */
async function seedRules(file: string, persistTo: string, secrets?: Record<string, string>): Promise<string[]> {
  const document = JSON.parse(readFileSync(file, "utf8")) as unknown;
  const validation = validateRules(document, secrets);
  if (!validation.ok) {
    throw new DevLoopError(
      `${file} is invalid:\n${validation.issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`,
    );
  }
  await putRulesFile(file, { persistTo });
  return validation.warnings.map((w) => `${w.path}: ${w.message}`);
}

/**
 * SECRET_HOSTS for the local loop: each secret the rules name bound to the host of the destination naming it
 * (the demo receiver's loopback address), so the example rules deliver; a deployed relay spells its own.
 */
export function secretHostsOf(rules: unknown): Record<string, string[]> {
  const bound: Record<string, string[]> = {};
  const validation = validateRules(rules);
  if (!validation.ok) return bound;
  for (const destination of Object.values(validation.rules.destinations)) {
    if (typeof destination.url !== "string") continue;
    const host = new URL(destination.url).hostname;
    for (const { name } of secretsOf(destination)) bound[name] = [...new Set([...(bound[name] ?? []), host])];
  }
  return bound;
}

export interface DevLoopOptions {
  relayPort?: number;
  receiverPort?: number;
  /** Local KV / Queues state; defaults to .wrangler/state. */
  persistTo?: string;
  /** Rules file to seed; undefined with `seed: false`. Defaults to rules.example.json. */
  rulesFile?: string;
  seed?: boolean;
  /** Worker secrets; defaults to .dev.vars (created from the example when missing). */
  secrets?: Record<string, string>;
  /** Demo receiver lines; defaults to stdout. */
  print?: (line: string) => void;
  /** The relay's (wrangler's) output lines; default: dropped. */
  onRelayOutput?: (line: string) => void;
}

export interface DevLoop {
  relay: WranglerDev;
  receiver: DemoReceiver;
  secrets: Record<string, string>;
  /** The rules as seeded (destinations pointing at the receiver's port). */
  rules: unknown;
  warnings: string[];
  stop(): Promise<void>;
}

/** Starts the demo receiver, seeds the rules, starts the relay. Everything started is stopped on failure. */
export async function startDevLoop(options: DevLoopOptions = {}): Promise<DevLoop> {
  const persistTo = options.persistTo ?? DEV_STATE_DIR;
  const secrets = options.secrets ?? readDevVars();
  const rulesFile = options.rulesFile ?? EXAMPLE_RULES_FILE;
  const receiverPort = options.receiverPort ?? DEMO_RECEIVER_PORT;
  const document = JSON.parse(readFileSync(rulesFile, "utf8")) as unknown;

  let receiver: DemoReceiver | undefined;
  let relay: WranglerDev | undefined;
  const stop = async () => {
    await Promise.allSettled([relay?.stop(), receiver?.close()]);
  };
  try {
    receiver = await startDemoReceiver({
      port: receiverPort,
      destinations: [],
      relayUrl: `http://127.0.0.1:${options.relayPort ?? RELAY_PORT}`,
      ...(options.print !== undefined && { print: options.print }),
    });
    // Port 0 picks a free one; the rules' loopback URLs follow the receiver wherever it listens.
    const rules = withReceiverPort(document, receiver.port);
    receiver.setDestinations(receiverDestinations(rules, secrets, receiver.port));
    let warnings: string[] = [];
    if (options.seed !== false) {
      if (receiver.port === DEMO_RECEIVER_PORT) warnings = await seedRules(rulesFile, persistTo, secrets);
      else {
        // The rules with the receiver's port, in a folder of their own for as long as seeding takes.
        const folder = mkdtempSync(join(tmpdir(), "extend-relay-rules-"));
        try {
          const file = join(folder, "rules.json");
          writeFileSync(file, JSON.stringify(rules, null, 2));
          warnings = await seedRules(file, persistTo, secrets);
        } finally {
          rmSync(folder, { recursive: true, force: true });
        }
      }
    }
    relay = await startWranglerDev({
      port: options.relayPort ?? RELAY_PORT,
      persistTo,
      secrets,
      vars: { ...DEV_LOOP_VARS, SECRET_HOSTS: JSON.stringify(secretHostsOf(rules)) },
      ...(options.onRelayOutput !== undefined && { onOutput: options.onRelayOutput }),
    });
    return { relay, receiver, secrets, rules, warnings, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function assertPortFree(port: number, what: string): Promise<void> {
  await new Promise<void>((done, fail) => {
    const server = createServer();
    server.once("error", () =>
      fail(
        new DevLoopError(
          `127.0.0.1:${port} is in use, so the ${what} cannot start there. Is npm run dev already running?`,
        ),
      ),
    );
    server.listen(port, "127.0.0.1", () => server.close(() => done()));
  });
}

/** Wrangler lines worth showing: the Worker's JSON logs and request lines, not banners. */
function relayLine(line: string): string | undefined {
  const text = withoutColour(line).trim();
  // Our own readiness probe, and wrangler failing to fetch Request.cf when offline: noise here.
  if (text.includes("/healthz") || text.includes("Request.cf") || text.includes("workers.cloudflare.com"))
    return undefined;
  if (text.startsWith("{") || /^\[wrangler:(info|warn|error)\]/.test(text) || /error|✘/i.test(text)) return text;
  return undefined;
}

function portOption(name: string, value: string): number {
  const port = Number(value);
  if (value.trim() === "" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DevLoopError(`--${name} must be a port number from 1 to 65535 (got "${value}")`);
  }
  return port;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: String(RELAY_PORT) },
      "receiver-port": { type: "string", default: String(DEMO_RECEIVER_PORT) },
      rules: { type: "string" },
      "keep-rules": { type: "boolean", default: false },
    },
  });
  const relayPort = portOption("port", values.port);
  const receiverPort = portOption("receiver-port", values["receiver-port"]);
  const rulesFile =
    values.rules !== undefined ? resolve(process.env.INIT_CWD ?? ROOT, values.rules) : EXAMPLE_RULES_FILE;

  const devVars = ensureDevVars();
  if (devVars.created) {
    console.log(
      `Created ${relative(ROOT, DEV_VARS)} from .dev.vars.example with random ${devVars.replaced.join(" and ")} (local secrets; git-ignored).`,
    );
  } else if (devVars.replaced.length > 0) {
    console.log(
      `Gave ${devVars.replaced.join(" and ")} in ${relative(ROOT, DEV_VARS)} a random value: the relay refuses tokens shorter than 32 characters.`,
    );
  }
  await assertPortFree(relayPort, "relay");
  await assertPortFree(receiverPort, "demo receiver");
  console.log(`Starting the relay with wrangler dev (the first start takes a few seconds)…`);

  const loop = await startDevLoop({
    relayPort,
    receiverPort,
    rulesFile,
    seed: !values["keep-rules"],
    onRelayOutput: (line) => {
      const shown = relayLine(line);
      if (shown !== undefined) console.log(`relay │ ${shown}`);
    },
  });
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nStopping the relay and the demo receiver…");
    await loop.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown());
  process.on("SIGTERM", () => void shutdown());
  // Last resort if this process dies another way: never leave workerd running.
  process.on("exit", () => {
    try {
      if (loop.relay.process.pid !== undefined) process.kill(-loop.relay.process.pid, "SIGKILL");
    } catch {
      // already gone
    }
  });

  const destinations = receiverDestinations(loop.rules, loop.secrets, loop.receiver.port);
  console.log(
    [
      "",
      "extend-relay is running",
      `  relay          ${loop.relay.url}/webhook   (admin: ${loop.relay.url}/admin, health: ${loop.relay.url}/healthz)`,
      `  demo receiver  ${loop.receiver.url}   ${destinations.map((d) => `${d.path} = ${d.name} (${d.scheme})`).join(", ")}`,
      `  rules          ${values["keep-rules"] ? "kept what the local KV holds" : `${relative(ROOT, rulesFile)} seeded into the local KV`}`,
      `  state          ${relative(ROOT, DEV_STATE_DIR)} (kept across restarts)`,
      `  trace          npm run trace -- <Id or order number>${loop.relay.url === `http://127.0.0.1:${RELAY_PORT}` ? "" : ` --url ${loop.relay.url}`}`,
      `                 curl -s -H "Authorization: Bearer $ADMIN_TOKEN" ${loop.relay.url}/admin/calls/<Id>   (ADMIN_TOKEN: see ${relative(ROOT, DEV_VARS)})`,
      `  console        ${loop.relay.url}/console   (sign in with ADMIN_TOKEN, or VIEWER_TOKEN to look only; see ${relative(ROOT, DEV_VARS)})`,
      ...loop.warnings.map((w) => `  warning        ${w}`),
      "",
      "In another terminal: npm run send-sample -- OrderCreated   (or --all). Ctrl-C stops everything.",
      "",
    ].join("\n"),
  );
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    console.error(`npm run dev failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  }
}
