import { createHmac, timingSafeEqual } from "node:crypto";
import { tooLarge } from "../json.ts";

/**
 * The sender's body, read once (docs/delivery.md, "The door"): each chunk goes into the HMAC of every webhook
 * secret and into a streaming UTF-8 decoder as it arrives, and is dropped. The door so holds the text and nothing
 * else, about the body's size for the JSON Extend sends, where reading the chunks and then copying them into one
 * buffer held twice that before the signature was even checked. Refused with 413 as soon as it is known to
 * exceed `limit` bytes: from Content-Length when given, else while streaming (chunked bodies).
 */
export interface SignedBody {
  /** The body as text; undefined when it is not UTF-8 (a 400, once the signature has been checked). */
  text: string | undefined;
  bytes: number;
  /** Whether `signature` is the HMAC-SHA256 of the body under one of the secrets. */
  verified: boolean;
}

export async function readSignedBody(
  request: Request,
  limit: number,
  signature: Uint8Array | undefined,
  secrets: readonly string[],
): Promise<SignedBody> {
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  const hmacs = signature === undefined ? [] : secrets.map((secret) => createHmac("sha256", secret));
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  const parts: string[] = [];
  let utf8 = true;
  let bytes = 0;
  const decode = (chunk?: Uint8Array) => {
    if (!utf8) return;
    try {
      parts.push(chunk === undefined ? decoder.decode() : decoder.decode(chunk, { stream: true }));
    } catch {
      utf8 = false;
    }
  };
  if (request.body !== null) {
    const reader = request.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      if (bytes > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge(limit);
      }
      for (const hmac of hmacs) hmac.update(value);
      decode(value);
    }
  }
  decode();
  // Every secret is compared, in constant time, so timing does not tell which one (if any) matched.
  const matches = hmacs.map((hmac) => {
    const digest = hmac.digest();
    return signature !== undefined && digest.byteLength === signature.byteLength && timingSafeEqual(digest, signature);
  });
  return { text: utf8 ? parts.join("") : undefined, bytes, verified: matches.includes(true) };
}
