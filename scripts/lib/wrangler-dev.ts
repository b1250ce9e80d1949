/**
 * Starts the relay (or another Worker config) under `wrangler dev` on loopback, with its own state folder,
 * vars and secrets, and stops it again. Used by `npm run dev`, the end-to-end tests and the benchmarks.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dirname, "../..");
export const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");

/** The environment wrangler runs in: our pinned Node first on PATH (wrangler needs Node ≥ 22), no telemetry. */
export function wranglerEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
    WRANGLER_SEND_METRICS: "false",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
  };
}

export interface WranglerDevOptions {
  /** Defaults to a free loopback port. */
  port?: number;
  /** wrangler config file; defaults to the relay's wrangler.toml. */
  config?: string;
  /** Local KV / D1 / Queues state; defaults to a fresh temporary folder, deleted by stop(). */
  persistTo?: string;
  /** Vars (`--var`), e.g. RETRY_SCHEDULE. */
  vars?: Record<string, string>;
  /**
   * Secrets, written to a private env file (never on the command line) that stop() deletes. A value
   * with a `'`, a line break or a trailing `\` is refused (see envFileLine).
   */
  secrets?: Record<string, string>;
  /** Where wrangler's own output goes; defaults to nowhere (kept for error messages). */
  onOutput?: (line: string) => void;
  /**
   * false: no devtools session on the Worker's isolate (scripts/lib/start-worker.ts, wrangler's own API), as in
   * production; `wrangler dev` relays every console line through one. Defaults to true (the `wrangler dev` command).
   */
  devtools?: boolean;
}

export interface WranglerDev {
  url: string;
  port: number;
  /** The local KV / D1 / Queues state folder. */
  persistTo: string;
  /** The devtools inspector's port (the `wrangler dev` command only), for a CPU profile (DEVELOPERS.md). */
  inspectorPort?: number;
  process: ChildProcess;
  /** Everything wrangler printed so far (for diagnostics). */
  output(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/**
 * One env-file line that wrangler's `--env-file` reading (dotenv 16, then dotenv-expand) turns back into
 * exactly `value`: single-quoted, so dotenv keeps every character, with each `$` written `\$`, which
 * dotenv-expand does not substitute and turns back into `$`. dotenv cannot carry a `'` or a line break
 * in such a value, and misreads one ending in `\`; those are refused, naming the key (never the value).
 */
export function envFileLine(key: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
    throw new Error(`secret name ${JSON.stringify(key)} is not a valid env-file name`);
  if (/['\r\n]|\\$/.test(value)) {
    throw new Error(
      `secret ${key} cannot be written to wrangler's env file: its value contains a ' or a line break, or ends in \\`,
    );
  }
  return `${key}='${value.replaceAll("$", "\\$")}'`;
}

export async function startWranglerDev(options: WranglerDevOptions = {}): Promise<WranglerDev> {
  const port = options.port ?? (await freePort());
  // Secrets that cannot be written refuse here, before anything is made.
  const secretsText =
    options.secrets === undefined
      ? undefined
      : Object.entries(options.secrets)
          .map(([key, value]) => envFileLine(key, value))
          .join("\n");
  // A state folder of our own making is deleted on stop(); one that was given is the caller's to keep.
  const ownState = options.persistTo === undefined;
  const persistTo = options.persistTo ?? mkdtempSync(join(tmpdir(), "extend-relay-state-"));
  const config = options.config ?? join(ROOT, "wrangler.toml");
  const spawnOptions = { cwd: ROOT, env: { ...wranglerEnv(), CI: "true" }, detached: true };
  let secretsDir: string | undefined;
  let inspectorPort: number | undefined;
  let child: ChildProcess;
  if (options.devtools === false) {
    // Options, secrets included, on stdin (scripts/lib/start-worker.ts), never on a command line.
    child = spawn(process.execPath, [join(ROOT, "scripts", "lib", "start-worker.ts")], {
      ...spawnOptions,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const { vars = {}, secrets = {} } = options;
    child.stdin?.end(JSON.stringify({ config, port, persistTo, vars, secrets }));
  } else {
    inspectorPort = await freePort();
    const args = [
      "dev",
      "--config",
      config,
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      persistTo,
      "--show-interactive-dev-session=false",
      // wrangler ranks "log" above "info": at "info" the Worker's console.log lines would be hidden.
      "--log-level",
      "log",
    ];
    for (const [key, value] of Object.entries(options.vars ?? {})) args.push("--var", `${key}:${value}`);
    if (secretsText !== undefined) {
      secretsDir = mkdtempSync(join(tmpdir(), "extend-relay-secrets-"));
      const file = join(secretsDir, ".env");
      writeFileSync(file, `${secretsText}\n`, { mode: 0o600 });
      args.push("--env-file", file);
    }
    child = spawn(WRANGLER, args, { ...spawnOptions, stdio: ["ignore", "pipe", "pipe"] });
  }
  let output = "";
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    output += text;
    if (output.length > 2_000_000) output = output.slice(-1_000_000);
    if (options.onOutput) for (const line of text.split("\n")) if (line.trim() !== "") options.onOutput(line);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);

  let exited = false;
  const exit = new Promise<void>((done) =>
    child.on("exit", () => {
      exited = true;
      done();
    }),
  );
  const stop = async () => {
    if (!exited) {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // already gone
        }
      }, 5000);
      await exit;
      clearTimeout(timer);
    }
    if (secretsDir !== undefined) rmSync(secretsDir, { recursive: true, force: true });
    if (ownState) rmSync(persistTo, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`wrangler dev exited before it was ready:\n${output.slice(-4000)}`);
    }
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`wrangler dev did not answer on ${url} in time:\n${output.slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    url,
    port,
    persistTo,
    ...(inspectorPort !== undefined && { inspectorPort }),
    process: child,
    output: () => output,
    stop,
  };
}
