import { RelayError } from "./errors.ts";

/**
 * The one home for request bodies and JSON: reading a body under a byte limit, and parsing JSON text with an
 * outline of where its parts are. The outline lets the relay hand on the sender's own text (every number
 * with its digits, every escape, every key) instead of re-serialising what `JSON.parse` made of it
 * (docs/delivery.md, “What a receiver gets”).
 */

/** Extend's payloads nest about five levels; anything past this is refused before parsing. */
export const MAX_DEPTH = 64;

/**
 * The raw request body, refused with 413 as soon as it is known to exceed `limit` bytes: from Content-Length
 * when given, else while streaming (chunked bodies), without reading the rest.
 */
export async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  if (request.body === null) return new Uint8Array(0);

  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** 413 `body_too_large`, naming the limit. */
export function tooLarge(limit: number): RelayError {
  return new RelayError("body_too_large", `The body exceeds the relay's limit of ${limit} bytes (MAX_BODY_BYTES).`, {
    limit,
  });
}

/** One member of the top-level object: its key (decoded) and its text from the key's quote to the value's end. */
export interface Member {
  key: string;
  start: number;
  /** Where the value starts. */
  value: number;
  end: number;
}

/**
 * Where the parts of a top-level JSON object are in its text: its members in order, and the elements of the
 * last member named `arrayKey` when that is an array (each as [start, end)).
 */
export interface Outline {
  members: Member[];
  elements: [number, number][];
}

export interface ParsedJson {
  value: unknown;
  text: string;
  outline: Outline;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * A request body (the sender's call or an admin request) as JSON with its outline, or a 400 saying what is
 * wrong: not UTF-8, nested past MAX_DEPTH (checked before parsing, so nothing later recurses that deep), or
 * not JSON.
 */
export function parseJsonBody(body: BufferSource, arrayKey?: string): ParsedJson {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw notUtf8();
  }
  return parseJsonText(text, arrayKey);
}

/** 400 `invalid_encoding`. */
export const notUtf8 = () => new RelayError("invalid_encoding", "The body is not valid UTF-8.");

/** JSON text already decoded, with its outline, or a 400 as parseJsonBody says. */
export function parseJsonText(text: string, arrayKey?: string): ParsedJson {
  const outline = outlineOf(text, arrayKey);
  if (outline === "too deep") {
    throw new RelayError("nesting_too_deep", `The body nests objects or arrays more than ${MAX_DEPTH} levels deep.`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RelayError("invalid_json", `The body is not JSON: ${(error as Error).message}`);
  }
  return { value, text, outline };
}

/** A request's JSON body (an admin request's), within `limit` bytes and read as the door reads the sender's. */
export async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  return parseJsonBody(await readBody(request, limit)).value;
}

const QUOTE = 34;
const BACKSLASH = 92;

/** The index of the quote that closes the string opened at `open` (text.length when there is none). */
function stringEnd(text: string, open: number): number {
  let close = text.indexOf('"', open + 1);
  while (close > 0) {
    let slashes = 0;
    for (let k = close - 1; text.charCodeAt(k) === BACKSLASH; k--) slashes++;
    if (slashes % 2 === 0) return close;
    close = text.indexOf('"', close + 1);
  }
  return text.length;
}

const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

/**
 * One pass over JSON text, skipping strings with indexOf: "too deep" when brackets nest past MAX_DEPTH, else
 * the outline. For text that is not JSON the outline means nothing; JSON.parse refuses such text anyway. (A
 * stored call's text with claim marks in it is not JSON, but its outline is its own: src/extend/envelope.ts.)
 */
export function outlineOf(text: string, arrayKey: string | undefined): Outline | "too deep" {
  const members: Member[] = [];
  let elements: [number, number][] = [];
  let depth = 0;
  let topIsObject = false;
  // Depth 1 (inside the top-level object): the member being read.
  let keyAt = -1;
  let key = "";
  let valueAt = -1;
  // Depth 2 (inside the top-level array member named arrayKey): the element being read.
  let inArray = false;
  let elementAt = -1;
  let lastToken = -1; // end of the last token seen, to trim whitespace off a value's end

  const endMember = (at: number) => {
    if (keyAt >= 0 && valueAt >= 0) members.push({ key, start: keyAt, value: valueAt, end: at });
    keyAt = valueAt = -1;
  };
  const endElement = (at: number) => {
    if (elementAt >= 0) elements.push([elementAt, at]);
    elementAt = -1;
  };

  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isSpace(c)) continue;
    if (depth === 1 && keyAt >= 0 && valueAt < 0 && c !== 58) valueAt = i; // after "key":
    if (depth === 2 && inArray && elementAt < 0 && c !== 44 && c !== 93) elementAt = i;
    if (c === QUOTE) {
      const close = stringEnd(text, i);
      if (depth === 1 && keyAt < 0) {
        keyAt = i;
        try {
          key = JSON.parse(text.slice(i, close + 1)) as string;
        } catch {
          key = "";
        }
      }
      i = close;
    } else if (c === 123 || c === 91) {
      // { [
      if (depth === 0 && c === 123) topIsObject = true;
      depth++;
      if (depth > MAX_DEPTH) return "too deep";
      if (depth === 2 && c === 91 && topIsObject && arrayKey !== undefined && key === arrayKey && valueAt === i) {
        inArray = true;
        elements = [];
      }
    } else if (c === 125 || c === 93) {
      // } ]
      if (depth === 2 && inArray) {
        endElement(lastToken);
        inArray = false;
      }
      depth--;
      if (depth === 0 && topIsObject) endMember(lastToken);
    } else if (c === 44) {
      // ,
      if (depth === 1) endMember(lastToken);
      else if (depth === 2 && inArray) endElement(lastToken);
    }
    lastToken = i + 1;
  }
  return { members, elements };
}
