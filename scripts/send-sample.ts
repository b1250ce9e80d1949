/**
 * `npm run send-sample -- <Action | file | --all>`: posts a sample call from fixtures/extend/ to the relay,
 * signed with ms-signature the way Extend Commerce signs it, and prints the answer.
 *
 * Each sample gets a fresh Id (so repeated sends are not answered "duplicate") unless --keep-id; only the
 * Id's characters change, and the signature covers the exact bytes sent.
 *
 * Exit codes: 0 every answer 2xx · 1 some answer was not 2xx · 2 usage, or the relay cannot be reached.
 */
import { createHmac, randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { DEV_VARS, readDevVars } from "./lib/dev-vars.ts";
import { LOCAL_RELAY_URL, unreachable } from "./lib/local-relay.ts";
import { consoleOutput, type Output } from "./lib/output.ts";
import { ROOT } from "./lib/wrangler-dev.ts";

export const FIXTURES_DIR = join(ROOT, "fixtures", "extend");
const DEFAULT_RELAY_URL = `${LOCAL_RELAY_URL}/webhook`;

const USAGE = `Usage: npm run send-sample -- <Action | file.json | --all> [options]

  <Action>          a sample from fixtures/extend/, e.g. OrderCreated (npm run send-sample -- --list)
  <file.json>       any file holding an envelope
  --all             every sample in fixtures/extend/
  --url <url>       the relay's webhook URL (default ${DEFAULT_RELAY_URL})
  --secret <s>      signing secret (default: EXTEND_WEBHOOK_SECRET from the environment or .dev.vars)
  --keep-id         send the sample's own Id (a second send is then answered "duplicate")
  --list            list the samples

Exit codes: 0 every answer 2xx, 1 some answer was not 2xx, 2 usage or relay unreachable.`;

export interface Sample {
  name: string;
  /** Where the sample was read from. */
  path: string;
  text: string;
}

/** Sample names (file names without .json), sorted. */
export function sampleNames(dir = FIXTURES_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json") && f !== "signatures.json")
    .map((f) => f.slice(0, -".json".length))
    .sort();
}

/** A sample by Action / sample name (case-insensitive) or by file path; undefined when neither (a folder is neither). */
export function findSample(argument: string, cwd = process.cwd(), dir = FIXTURES_DIR): Sample | undefined {
  const name = sampleNames(dir).find((n) => n.toLowerCase() === argument.replace(/\.json$/i, "").toLowerCase());
  if (name !== undefined) {
    const path = join(dir, `${name}.json`);
    return { name, path, text: readFileSync(path, "utf8") };
  }
  const path = resolve(cwd, argument);
  if (
    (argument.includes("/") || argument.endsWith(".json")) &&
    statSync(path, { throwIfNoEntry: false })?.isFile() === true
  ) {
    return { name: basename(path), path, text: readFileSync(path, "utf8") };
  }
  return undefined;
}

export function newId(): string {
  return randomBytes(16).toString("hex");
}

/**
 * The text with the envelope's top-level Id replaced, touching nothing else (indentation, CRLF, key
 * order stay as they were).
 */
export function withId(text: string, id: string): string {
  const current = (JSON.parse(text) as { Id?: unknown }).Id;
  if (typeof current !== "string") throw new Error('the sample has no string "Id" to replace');
  const pattern = /("Id"\s*:\s*)"((?:[^"\\]|\\.)*)"/g;
  for (const match of text.matchAll(pattern)) {
    if (JSON.parse(`"${match[2]}"`) !== current) continue;
    const replaced = `${text.slice(0, match.index)}${match[1]}"${id}"${text.slice(match.index + match[0].length)}`;
    if ((JSON.parse(replaced) as { Id?: unknown }).Id === id) return replaced;
  }
  throw new Error("could not find the envelope's Id in the sample's text");
}

export function msSignature(body: Uint8Array, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex").toUpperCase()}`;
}

export interface SendResult {
  id: string | undefined;
  status: number;
  /** The answer's body, parsed when it is JSON. */
  answer: unknown;
}

/** Posts `text` (with a fresh Id unless keepId) signed with `secret`; network failures reject. */
export async function sendSample(options: {
  text: string;
  url?: string;
  secret: string;
  keepId?: boolean;
}): Promise<SendResult> {
  const text = options.keepId === true ? options.text : withId(options.text, newId());
  const body = Buffer.from(text, "utf8");
  const response = await fetch(options.url ?? DEFAULT_RELAY_URL, {
    method: "POST",
    headers: { "content-type": "application/json", "ms-signature": msSignature(body, options.secret) },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  const raw = await response.text();
  let answer: unknown = raw;
  try {
    answer = JSON.parse(raw);
  } catch {
    // not JSON: keep the text
  }
  let id: string | undefined;
  try {
    id = (JSON.parse(text) as { Id?: string }).Id;
  } catch {
    id = undefined;
  }
  return { id, status: response.status, answer };
}

export async function runSendSample(
  argv: string[],
  io: Output = consoleOutput,
  cwd = process.env.INIT_CWD ?? process.cwd(),
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        all: { type: "boolean", default: false },
        url: { type: "string" },
        secret: { type: "string" },
        "keep-id": { type: "boolean", default: false },
        list: { type: "boolean", default: false },
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
  if (values.list) {
    io.out(sampleNames().join("\n"));
    return 0;
  }
  if (values.all === positionals.length > 0 || positionals.length > 1) {
    io.err(`error: name one sample (an Action or a file) or pass --all\n\n${USAGE}`);
    return 2;
  }
  const url = values.url ?? DEFAULT_RELAY_URL;
  if (!URL.canParse(url) || !["http:", "https:"].includes(new URL(url).protocol)) {
    io.err(`error: --url ${url} is not an http:// or https:// URL, e.g. ${DEFAULT_RELAY_URL}`);
    return 2;
  }
  const samples: Sample[] = [];
  if (values.all) {
    for (const name of sampleNames()) samples.push(findSample(name)!);
  } else {
    const sample = findSample(positionals[0]!, cwd);
    if (sample === undefined) {
      io.err(
        `error: "${positionals[0]}" is neither a sample nor a file. Samples in fixtures/extend/:\n  ${sampleNames().join("\n  ")}`,
      );
      return 2;
    }
    samples.push(sample);
  }
  const secret = values.secret ?? process.env.EXTEND_WEBHOOK_SECRET ?? readDevVars().EXTEND_WEBHOOK_SECRET;
  if (secret === undefined || secret === "") {
    io.err(
      `error: no signing secret. Pass --secret, set EXTEND_WEBHOOK_SECRET, or run npm run dev once to create ${DEV_VARS}.`,
    );
    return 2;
  }
  const width = Math.max(...samples.map((s) => s.name.length));
  // Every sample gets its fresh Id before anything is sent: a file that is no envelope is named as such.
  const texts: string[] = [];
  for (const sample of samples) {
    try {
      texts.push(values["keep-id"] ? sample.text : withId(sample.text, newId()));
    } catch (error) {
      const problem = error instanceof SyntaxError ? `it is not JSON (${error.message})` : (error as Error).message;
      io.err(`error: cannot give ${sample.path} a fresh Id: ${problem}. Pass --keep-id to send a file as it is.`);
      return 2;
    }
  }
  let failed = 0;
  for (const [index, sample] of samples.entries()) {
    let result: SendResult;
    try {
      result = await sendSample({ text: texts[index]!, url, secret, keepId: true });
    } catch (error) {
      io.err(`error: ${unreachable(url, error)}`);
      return 2;
    }
    if (result.status < 200 || result.status > 299) failed++;
    const answer = typeof result.answer === "string" ? result.answer : JSON.stringify(result.answer);
    io.out(`${sample.name.padEnd(width)}  Id ${result.id}  → ${result.status} ${answer}`);
  }
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) {
  process.exitCode = await runSendSample(process.argv.slice(2));
}
