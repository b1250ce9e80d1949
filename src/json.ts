import { RelayError } from "./errors.ts";

/** Extend's payloads nest about five levels; anything past this is refused before parsing. */
export const MAX_DEPTH = 64;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * A request body (the sender's call or an admin request) as JSON, or a 400 saying what is wrong:
 * not UTF-8, nested past MAX_DEPTH (checked before parsing, so nothing later recurses that deep), or not JSON.
 */
export function parseJsonBody(body: BufferSource): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new RelayError(400, "invalid_encoding", "The body is not valid UTF-8.");
  }
  if (exceedsDepth(text, MAX_DEPTH)) {
    throw new RelayError(
      400,
      "nesting_too_deep",
      `The body nests objects or arrays more than ${MAX_DEPTH} levels deep.`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RelayError(400, "invalid_json", `The body is not JSON: ${(error as Error).message}`);
  }
}

/** True when brackets outside strings nest deeper than `limit` (one pass, stops early). */
function exceedsDepth(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === 92)
        i++; // backslash: skip the escaped character
      else if (code === 34) inString = false;
    } else if (code === 34) inString = true;
    else if (code === 123 || code === 91) {
      if (++depth > limit) return true;
    } else if (code === 125 || code === 93) depth--;
  }
  return false;
}
