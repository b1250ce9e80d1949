import { hmacKey } from "../hmac.ts";

/**
 * Extend Commerce's `ms-signature` (ASP.NET WebHooks): `sha256=` + HMAC-SHA256 of the raw body bytes,
 * keyed with the UTF-8 secret, in hex (upper case when Extend sends it; either case is accepted).
 * The relay checks it at the door and uses the same scheme to sign deliveries to `ms-signature` destinations.
 */
export const SIGNATURE_HEADER = "ms-signature";
const PREFIX = "sha256=";
const SHA256_BYTES = 32;

export type SignatureHeaderProblem = "missing" | "malformed";

/** The 32 signature bytes from a header value, or why the header cannot be one. */
export function parseSignatureHeader(header: string | null): Uint8Array | SignatureHeaderProblem {
  if (header === null || header === "") return "missing";
  if (header.length !== PREFIX.length + 2 * SHA256_BYTES || !header.startsWith(PREFIX)) return "malformed";
  const bytes = new Uint8Array(SHA256_BYTES);
  for (let i = 0; i < SHA256_BYTES; i++) {
    const high = hexValue(header.charCodeAt(PREFIX.length + 2 * i));
    const low = hexValue(header.charCodeAt(PREFIX.length + 2 * i + 1));
    if (high < 0 || low < 0) return "malformed";
    bytes[i] = (high << 4) | low;
  }
  return bytes;
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  const lower = code | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87; // a-f, A-F
  return -1;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, "0"));

/** The `ms-signature` header value for `body` under `secret`, as Extend Commerce writes it. */
export async function signBody(body: BufferSource, secret: string): Promise<string> {
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret, "utf8"), body));
  let hex = PREFIX;
  for (const byte of mac) hex += HEX[byte];
  return hex;
}
