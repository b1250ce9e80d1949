/**
 * Runs one Worker locally like `wrangler dev`, through wrangler's own API (`unstable_startWorker`), but with
 * no devtools session on its isolate: `wrangler dev` keeps one open and relays every console line through it,
 * a cost production does not have. Started by startWranglerDev({ devtools: false }); reads its options as JSON
 * on stdin (secrets included, so they are never on a command line), and stops on SIGTERM.
 */
import { unstable_startWorker } from "wrangler";

interface Options {
  config: string;
  port: number;
  persistTo: string;
  vars: Record<string, string>;
  secrets: Record<string, string>;
}

let text = "";
for await (const chunk of process.stdin) text += chunk;
const options = JSON.parse(text) as Options;

const worker = await unstable_startWorker({
  config: options.config,
  bindings: {
    ...Object.fromEntries(Object.entries(options.vars).map(([k, value]) => [k, { type: "plain_text", value }])),
    ...Object.fromEntries(Object.entries(options.secrets).map(([k, value]) => [k, { type: "secret_text", value }])),
  },
  dev: {
    inspector: false,
    server: { hostname: "127.0.0.1", port: options.port },
    persist: options.persistTo,
    // wrangler ranks "log" above "info": at "info" the Worker's console.log lines would be hidden.
    logLevel: "log",
  },
});
await worker.ready;

process.on("SIGTERM", () => {
  worker.dispose().finally(() => process.exit(0));
});
