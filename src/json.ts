import { RelayError } from "./errors.ts";

/**
 * The one home for request bodies and JSON: reading a body under a byte limit, and parsing JSON so that every
 * number keeps the sender's digits. `JSON.parse` turns `12345678901234567890` into `12345678901234567000`
 * and `100.50` into `100.5`; here such a number becomes a `JSON.rawJSON` value holding its source text, which
 * `JSON.stringify` writes back unchanged (docs/delivery.md, “What a receiver gets”). Everything that reaches a
 * receiver goes through `parseJson`: the door's body, and each queue message the consumer reads.
 */

/** Extend's payloads nest about five levels; anything past this is refused before parsing. */
export const MAX_DEPTH = 64;

/**
 * The raw request body, refused with 413 as soon as it is known to exceed `limit` bytes: from
 * Content-Length when given, else while streaming (chunked bodies), without reading the rest.
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

function tooLarge(limit: number): RelayError {
  return new RelayError("body_too_large", `The body exceeds the relay's limit of ${limit} bytes (MAX_BODY_BYTES).`, {
    limit,
  });
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * A request body (the sender's call or an admin request) as JSON, or a 400 saying what is wrong: not UTF-8,
 * nested past MAX_DEPTH (checked before parsing, so nothing later recurses that deep), or not JSON.
 */
export function parseJsonBody(body: BufferSource): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new RelayError("invalid_encoding", "The body is not valid UTF-8.");
  }
  const scan = scanJson(text);
  if (scan.tooDeep) {
    throw new RelayError("nesting_too_deep", `The body nests objects or arrays more than ${MAX_DEPTH} levels deep.`);
  }
  try {
    return scan.rawNumbers ? JSON.parse(text, keepDigits) : JSON.parse(text);
  } catch (error) {
    throw new RelayError("invalid_json", `The body is not JSON: ${(error as Error).message}`);
  }
}

/** JSON text (our own queue messages) parsed with the sender's digits kept. Throws SyntaxError. */
export function parseJson(text: string): unknown {
  return scanJson(text).rawNumbers ? JSON.parse(text, keepDigits) : JSON.parse(text);
}

/** A number's value as the relay compares it (a kept-digits number counts as the nearest double). */
export function numericValue(value: unknown): unknown {
  return JSON.isRawJSON(value) ? Number((value as { rawJSON: string }).rawJSON) : value;
}

function keepDigits(this: unknown, _key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === "number" && context?.source !== undefined && String(value) !== context.source) {
    return JSON.rawJSON(context.source);
  }
  return value;
}

/**
 * One pass over JSON text, outside strings: whether brackets nest deeper than MAX_DEPTH (stops there), and
 * whether some number might not survive `JSON.parse` digit for digit (a fraction, an exponent, `-0`, or 16
 * or more digits), so that the slower kept-digits parse runs only for such bodies.
 */
function scanJson(text: string): { tooDeep: boolean; rawNumbers: boolean } {
  let depth = 0;
  let rawNumbers = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 34) {
      // a string: skip to its closing quote
      for (i++; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c === 92) i++;
        else if (c === 34) break;
      }
    } else if (code === 123 || code === 91) {
      if (++depth > MAX_DEPTH) return { tooDeep: true, rawNumbers };
    } else if (code === 125 || code === 93) depth--;
    else if (!rawNumbers && (code === 45 || (code >= 48 && code <= 57))) {
      const start = i;
      while (i + 1 < text.length && isNumberChar(text.charCodeAt(i + 1))) i++;
      const length = i - start + 1;
      if (length >= 16) rawNumbers = true;
      else {
        for (let j = start; j <= i; j++) {
          const c = text.charCodeAt(j);
          if (c === 46 || c === 101 || c === 69) rawNumbers = true; // . e E
        }
        if (code === 45 && text.charCodeAt(start + 1) === 48) rawNumbers = true; // -0…
      }
    }
  }
  return { tooDeep: false, rawNumbers };
}

function isNumberChar(code: number): boolean {
  return (code >= 48 && code <= 57) || code === 46 || code === 101 || code === 69 || code === 43 || code === 45;
}

/** A request's JSON body (an admin request's), within `limit` bytes and read as the door reads the sender's. */
export async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  return parseJsonBody(await readBody(request, limit));
}
