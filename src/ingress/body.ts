import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { describe } from "../errors.ts";
import { tooLarge } from "../json.ts";
import { log } from "../log.ts";

/**
 * The sender's body, read once (docs/delivery.md, "The door") in chunks of up to 1 MiB: each goes into the HMAC of every webhook
 * secret and into a streaming UTF-8 decoder as it arrives, and is dropped. The door so holds the text and nothing
 * else, about the body's size for the JSON Extend sends, where reading the chunks and then copying them into one
 * buffer held twice that before the signature was even checked. Refused with 413 as soon as it is known to
 * exceed `limit` bytes: from Content-Length when given, else while streaming (chunked bodies).
 *
 * A body that declares at least `keep.from` bytes is also sent on to R2 as it streams (`keep.bucket` under
 * `keep.key`, with its SHA-256 taken on the way), since it will likely need claims (docs/delivery.md, "Large
 * notifications"): so it is stored while it arrives, not after, and never copied. Until the caller uses it the
 * object is unverified; the caller deletes it when the call is refused or needs no claim.
 */
export interface SignedBody {
  /** The body as text; undefined when it is not UTF-8 (a 400, once the signature has been checked). */
  text: string | undefined;
  bytes: number;
  /** Whether `signature` is the HMAC-SHA256 of the body under one of the secrets. */
  verified: boolean;
  /** The body as kept in R2, when it was (undefined: not asked, too small, or R2 did not take it, which is logged). */
  kept?: KeptBody;
}

export interface KeptBody {
  key: string;
  sha256: string;
}

export interface KeepBody {
  bucket: R2Bucket;
  key: string;
  /** Bodies declaring fewer bytes than this are not kept. */
  from: number;
}

/** The most read at once: reading a 5 MB body in 4 KB chunks, as it arrives, costs the door a quarter more. */
const READ_BYTES = 1024 * 1024;
/** What a body of no declared length is read in. */
const CHUNKED_READ_BYTES = 64 * 1024;

export async function readSignedBody(
  request: Request,
  limit: number,
  signature: Uint8Array | undefined,
  secrets: readonly string[],
  keep?: KeepBody,
): Promise<SignedBody> {
  const header = request.headers.get("content-length");
  const declared = header === null ? undefined : Number(header);
  if (declared !== undefined && declared > limit) throw tooLarge(limit);
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

  // A body worth keeping goes to R2 through a stream of its declared length, each chunk written as it is read.
  const worth = keep !== undefined && signature !== undefined && declared !== undefined && declared >= keep.from;
  const hash = worth ? createHash("sha256") : undefined;
  let writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  let put: Promise<unknown> | undefined;
  const writes: Promise<void>[] = [];
  if (worth && request.body !== null) {
    const fixed = new FixedLengthStream(declared);
    put = keep.bucket.put(keep.key, fixed.readable, { httpMetadata: { contentType: "application/json" } });
    put.catch(() => {}); // settled below
    writer = fixed.writable.getWriter();
  }

  if (request.body !== null) {
    const next = chunks(request.body);
    try {
      for (;;) {
        const size = declared === undefined ? CHUNKED_READ_BYTES : Math.max(1, Math.min(READ_BYTES, declared - bytes));
        const value = await next.read(size);
        if (value === undefined) break;
        bytes += value.byteLength;
        if (bytes > limit) {
          await next.cancel();
          throw tooLarge(limit);
        }
        if (writer !== undefined) writes.push(writer.write(value));
        for (const hmac of hmacs) hmac.update(value);
        hash?.update(value);
        decode(value);
      }
    } catch (error) {
      writer?.abort(error).catch(() => {});
      throw error;
    }
  }
  decode();
  const stored =
    writer !== undefined &&
    (await Promise.all([...writes, writer.close(), put]).then(
      () => true,
      (error: unknown) => {
        log("warn", "payloads_stream_failed", { key: keep!.key, error: describe(error) });
        return false;
      },
    ));
  // Every secret is compared, in constant time, so timing does not tell which one (if any) matched.
  const matches = hmacs.map((hmac) => {
    const digest = hmac.digest();
    return signature !== undefined && digest.byteLength === signature.byteLength && timingSafeEqual(digest, signature);
  });
  return {
    text: utf8 ? parts.join("") : undefined,
    bytes,
    verified: matches.includes(true),
    ...(stored && { kept: { key: keep!.key, sha256: hash!.digest("hex") } }),
  };
}

/**
 * A stream's chunks, at least `size` bytes each but the last (undefined once it ends) where the stream can be read
 * into buffers (a request's body can), else as they come (a stream a test made).
 */
function chunks(stream: ReadableStream<Uint8Array>): {
  read(size: number): Promise<Uint8Array | undefined>;
  cancel(): Promise<void>;
} {
  let byob: ReadableStreamBYOBReader | undefined;
  try {
    byob = stream.getReader({ mode: "byob" });
  } catch {
    const reader = stream.getReader();
    return {
      read: async () => (await reader.read()).value,
      cancel: () => reader.cancel().catch(() => {}),
    };
  }
  const reader = byob;
  let ended = false;
  return {
    async read(size) {
      if (ended) return undefined;
      const { done, value } = await reader.readAtLeast(size, new Uint8Array(size));
      // Fewer bytes than asked for means the stream ended.
      if (done || value === undefined || value.byteLength < size) ended = true;
      return value !== undefined && value.byteLength > 0 ? value : undefined;
    },
    cancel: () => reader.cancel().catch(() => {}),
  };
}
