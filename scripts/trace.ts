/**
 * `npm run trace -- <Id | business key>`: asks a relay's admin API where a call went and prints it for a
 * person. An argument GET /admin/calls/:id finds is a call's Id; anything else is searched as a business
 * key (order, product, customer, invoice or offer number, price list name: GET /admin/calls?key=), and
 * the trace of each match is printed, newest first.
 *
 * Exit codes: 0 found · 1 nothing found · 2 usage, the relay unreachable, or it refused the admin token.
 */
import { parseArgs } from "node:util";
import { DEV_VARS, readDevVars } from "./lib/dev-vars.ts";
import { LOCAL_RELAY_URL, unreachable } from "./lib/local-relay.ts";
import { consoleOutput, type Output, shellWord } from "./lib/output.ts";
import { type CallTrace, formatTrace } from "./lib/trace-format.ts";

const DEFAULT_LIMIT = 5;
const TIMEOUT_MS = 15_000;
/** The admin API's limit on ?key= (and on a page). */
const MAX_KEY_LENGTH = 200;
const PAGE = 100;

const USAGE = `Usage: npm run trace -- <Id | business key> [options]

  <Id>              a call's Id, e.g. 35a05317f6fa66db6202fc35c289715d (send-sample prints it)
  <business key>    an order, product, customer, invoice or offer number, or a price list name:
                    the calls whose notifications carry it, newest first
  --url <url>       the relay (default ${LOCAL_RELAY_URL}, the one npm run dev starts)
  --token <t>       token (default: ADMIN_TOKEN, else VIEWER_TOKEN, from the environment or .dev.vars)
  --limit <n>       calls shown for a business key (default ${DEFAULT_LIMIT}, at most ${PAGE})
  --json            print the admin API's JSON (for a business key: an array of call traces)

Exit codes: 0 found, 1 nothing found, 2 usage, relay unreachable or admin token refused.`;

/** A failure that ends the run with exit 2 and one line on stderr. */
class TraceError extends Error {}

interface Answer {
  status: number;
  body: unknown;
}

interface CallSummary {
  id: string;
}

interface Client {
  url: string;
  tokenSource: string;
  get(path: string): Promise<Answer>;
}

function client(url: string, token: string, tokenSource: string): Client {
  return {
    url,
    tokenSource,
    async get(path) {
      let response: Response;
      try {
        response = await fetch(`${url}${path}`, {
          headers: { authorization: `Bearer ${token}`, accept: "application/json" },
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
      } catch (error) {
        if ((error as Error).name === "TimeoutError") {
          throw new TraceError(`the relay at ${url} did not answer within ${TIMEOUT_MS / 1000} s`);
        }
        throw new TraceError(unreachable(url, error));
      }
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new TraceError(
          `${url} answered GET ${path.replace(/\?.*/, "")} with ${response.status} and no JSON: is --url the relay's base URL (e.g. ${LOCAL_RELAY_URL})?`,
        );
      }
      if (response.status === 401) {
        throw new TraceError(
          `the relay at ${url} refused the admin token from ${tokenSource} (401: ${messageOf(body)}). Pass its ADMIN_TOKEN with --token or set ADMIN_TOKEN.`,
        );
      }
      return { status: response.status, body };
    },
  };
}

function messageOf(body: unknown): string {
  const { error, message } = (body ?? {}) as { error?: unknown; message?: unknown };
  return [error, message].filter((s) => typeof s === "string").join(": ") || JSON.stringify(body).slice(0, 200);
}

function unexpected(c: Client, path: string, answer: Answer): TraceError {
  const what = (answer.body as { error?: unknown } | null)?.error;
  if (answer.status === 404 && what === "not_found") {
    return new TraceError(`the relay at ${c.url} has no trace API (GET ${path.replace(/\?.*/, "")} is not found)`);
  }
  return new TraceError(`the relay at ${c.url} answered GET ${path} with ${answer.status} (${messageOf(answer.body)})`);
}

/** The call's trace, or undefined when the ledger has no call with this Id. */
async function callById(c: Client, id: string): Promise<CallTrace | undefined> {
  const path = `/admin/calls/${encodeURIComponent(id)}`;
  const answer = await c.get(path);
  if (answer.status === 200) return answer.body as CallTrace;
  if (answer.status === 404 && (answer.body as { error?: unknown }).error === "call_not_found") return undefined;
  throw unexpected(c, path, answer);
}

/** The newest calls with this business key (up to one page), and whether there are more than that. */
async function callsByKey(c: Client, key: string): Promise<{ ids: string[]; beyond: boolean }> {
  const path = `/admin/calls?key=${encodeURIComponent(key)}&limit=${PAGE}`;
  const answer = await c.get(path);
  if (answer.status !== 200) throw unexpected(c, path, answer);
  const page = answer.body as { items?: CallSummary[]; cursor?: string };
  return { ids: (page.items ?? []).map((item) => item.id), beyond: page.cursor !== undefined };
}

/** The relay's base URL from --url: a trailing /webhook or /admin (or /) is dropped. */
function baseUrl(url: string): string | undefined {
  if (!URL.canParse(url)) return undefined;
  const parsed = new URL(url);
  if (!["http:", "https:"].includes(parsed.protocol) || parsed.search !== "" || parsed.hash !== "") return undefined;
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, "").replace(/\/(webhook|admin)$/, "")}`;
}

export async function runTrace(argv: string[], io: Output = consoleOutput, env = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: "string" },
        token: { type: "string" },
        limit: { type: "string" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    io.err(`error: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0]!.trim() === "") {
    io.err(`error: name one call Id or business key, e.g. npm run trace -- 3339887\n\n${USAGE}`);
    return 2;
  }
  const wanted = positionals[0]!.trim();
  const url = baseUrl(values.url ?? LOCAL_RELAY_URL);
  if (url === undefined) {
    io.err(`error: --url ${values.url} is not an http:// or https:// URL of a relay, e.g. ${LOCAL_RELAY_URL}`);
    return 2;
  }
  const limit = Number(values.limit ?? DEFAULT_LIMIT);
  if (!/^\d+$/.test(values.limit ?? String(DEFAULT_LIMIT)) || limit < 1 || limit > PAGE) {
    io.err(`error: --limit must be a whole number from 1 to ${PAGE} (got "${values.limit}")`);
    return 2;
  }
  let token = values.token;
  let tokenSource = "--token";
  if (token === undefined && env.ADMIN_TOKEN !== undefined && env.ADMIN_TOKEN !== "") {
    token = env.ADMIN_TOKEN;
    tokenSource = "ADMIN_TOKEN";
  }
  // A trace only reads: VIEWER_TOKEN does when it is all there is.
  if (token === undefined && env.VIEWER_TOKEN !== undefined && env.VIEWER_TOKEN !== "") {
    token = env.VIEWER_TOKEN;
    tokenSource = "VIEWER_TOKEN";
  }
  if (token === undefined) {
    const devVars = readDevVars();
    token = devVars.ADMIN_TOKEN || devVars.VIEWER_TOKEN;
    tokenSource = ".dev.vars";
  }
  if (token === undefined || token === "") {
    io.err(`error: no admin token. Pass --token, set ADMIN_TOKEN, or run npm run dev once to create ${DEV_VARS}.`);
    return 2;
  }
  if (!/^[\x21-\x7e]+$/.test(token)) {
    io.err(`error: the admin token from ${tokenSource} holds a space, a line break or a character outside ASCII`);
    return 2;
  }

  const c = client(url, token, tokenSource);
  try {
    const call = await callById(c, wanted);
    if (call !== undefined) {
      io.out(values.json ? JSON.stringify(call, null, 2) : formatTrace(call, { url }).join("\n"));
      return 0;
    }
    const { ids, beyond } = wanted.length <= MAX_KEY_LENGTH ? await callsByKey(c, wanted) : { ids: [], beyond: false };
    if (ids.length === 0) {
      io.err(
        `Nothing found: the ledger at ${url} has no call with Id ${JSON.stringify(wanted)} and no notification with that business key. A call shows up a few seconds after the relay accepts it; refused calls are not recorded, and calls expire after LEDGER_RETENTION_DAYS.`,
      );
      return 1;
    }
    const shown = ids.slice(0, limit);
    const traces: CallTrace[] = [];
    for (const id of shown) {
      const trace = await callById(c, id);
      if (trace !== undefined) traces.push(trace);
    }
    if (values.json) {
      io.out(JSON.stringify(traces, null, 2));
      return 0;
    }
    const lines = [
      `${ids.length}${beyond ? "+" : ""} call${ids.length === 1 && !beyond ? "" : "s"} with business key ${wanted}${ids.length > 1 ? ", newest first" : ""}`,
    ];
    for (const trace of traces) lines.push("", ...formatTrace(trace, { url, key: wanted }));
    const more = ids.length - shown.length;
    if (more > 0) {
      const next = Math.min(PAGE, limit + Math.max(more, DEFAULT_LIMIT));
      const older = `${beyond ? "more than " : ""}${more} older call${more === 1 && !beyond ? "" : "s"}`;
      const at = url === LOCAL_RELAY_URL ? "" : ` --url ${url}`;
      lines.push("", `… and ${older} (npm run trace -- ${shellWord(wanted)} --limit ${next}${at})`);
    } else if (beyond) {
      lines.push("", `… and older ones beyond the newest ${PAGE}: GET /admin/calls?key=…&until=… pages through them.`);
    }
    io.out(lines.join("\n"));
    return 0;
  } catch (error) {
    if (error instanceof TraceError) {
      io.err(`error: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

if (import.meta.main) {
  process.exitCode = await runTrace(process.argv.slice(2));
}
