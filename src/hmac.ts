/**
 * HMAC-SHA256 keys, imported once per isolate and secret (importing costs more than signing a small body).
 * One cache for every use: Extend's `ms-signature` at the door and towards destinations (the secret's
 * UTF-8 bytes are the key) and Standard Webhooks (`whsec_<base64>`: the decoded bytes are the key).
 */
const keys = new Map<string, Promise<CryptoKey>>();
const encoder = new TextEncoder();

/** Thrown for a `whsec_` secret whose key is empty or not base64; the message never holds the value. */
export class InvalidKeyError extends Error {
  override name = "InvalidKeyError";
}

export function hmacKey(secret: string, format: "utf8" | "whsec"): Promise<CryptoKey> {
  const cacheKey = `${format}:${secret}`;
  let key = keys.get(cacheKey);
  if (key === undefined) {
    const raw = format === "utf8" ? encoder.encode(secret) : whsecBytes(secret);
    key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    keys.set(cacheKey, key);
  }
  return key;
}

function whsecBytes(secret: string): Uint8Array {
  const base64 = secret.startsWith("whsec_") ? secret.slice(6) : secret;
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  } catch {
    throw new InvalidKeyError("its key is not base64");
  }
  if (bytes.byteLength === 0) throw new InvalidKeyError("its key is empty");
  return bytes;
}
