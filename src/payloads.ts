import { CLAIM_MARKS, type Claim } from "./queues/claim.ts";

export { claimKey } from "./queues/claim.ts";

/**
 * Claim checks in R2 (binding PAYLOADS; docs/delivery.md, "Large notifications"): the door keeps a notification
 * too large for a queue message there, under a key of its call, and its messages carry the claim (key, length,
 * SHA-256). Whoever reads one checks both, so a receiver gets exactly what the sender sent or nothing.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Why a claim could not be read; the dead letter it may end as names it. */
export class ClaimUnreadable extends Error {
  override name = "ClaimUnreadable";
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  let hex = "";
  for (const byte of digest) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** Keeps `text` under `key` and returns its claim. Throws when R2 does not take it. */
export async function putClaim(bucket: R2Bucket, key: string, text: string): Promise<Claim> {
  const bytes = encoder.encode(text);
  const sha256 = await sha256Hex(bytes);
  await bucket.put(key, bytes, { sha256, httpMetadata: { contentType: "application/json" } });
  return { key, bytes: bytes.byteLength, sha256 };
}

/** The text a claim stands for, checked against its length and SHA-256; ClaimUnreadable saying why otherwise. */
export async function readClaim(bucket: R2Bucket | undefined, claim: Claim): Promise<string> {
  return textOf(await readObject(bucket, claim), claim);
}

/** The object a claim names, checked against its SHA-256 (and its length, when it is the text itself). */
async function readObject(bucket: R2Bucket | undefined, claim: Claim): Promise<Uint8Array> {
  if (bucket === undefined) throw new ClaimUnreadable("the PAYLOADS binding is not configured");
  let object: R2ObjectBody | null;
  try {
    object = await bucket.get(claim.key);
  } catch (error) {
    throw new ClaimUnreadable(`R2 could not be read (${error instanceof Error ? error.name : "error"})`);
  }
  if (object === null) throw new ClaimUnreadable(`the object ${claim.key} is missing from PAYLOADS`);
  const bytes = new Uint8Array(await object.arrayBuffer());
  const length =
    claim.offset === undefined ? bytes.byteLength === claim.bytes : claim.offset + claim.bytes <= bytes.byteLength;
  if (!length || (await sha256Hex(bytes)) !== claim.sha256) {
    throw new ClaimUnreadable(`the object ${claim.key} is not what was kept (its length or SHA-256 differs)`);
  }
  return bytes;
}

function textOf(object: Uint8Array, claim: Claim): string {
  const offset = claim.offset ?? 0;
  try {
    return decoder.decode(object.subarray(offset, offset + claim.bytes));
  } catch {
    throw new ClaimUnreadable(`the object ${claim.key} is not UTF-8 where the claim says`);
  }
}

/**
 * `text` with each claim's mark replaced by the text it stands for (only the claims it marks are read). A mark
 * of no claim in `claims` is ClaimUnreadable: a body is never sent with a hole in it.
 */
export async function withClaims(
  text: string,
  claims: readonly Claim[] | undefined,
  bucket: R2Bucket | undefined,
): Promise<string> {
  if (claims === undefined || claims.length === 0) return text;
  const marked = [...new Set([...text.matchAll(CLAIM_MARKS)].map((m) => Number(m[1])))];
  // Claims on one body (src/ingress/body.ts) read it once.
  const objects = new Map<string, Promise<Uint8Array>>();
  const texts = new Map<number, string>();
  await Promise.all(
    marked.map(async (k) => {
      const claim = claims[k];
      if (claim === undefined) throw new ClaimUnreadable(`the body marks claim ${k}, which the message does not hold`);
      let object = objects.get(claim.key);
      if (object === undefined) objects.set(claim.key, (object = readObject(bucket, claim)));
      texts.set(k, textOf(await object, claim));
    }),
  );
  return text.replace(CLAIM_MARKS, (_mark, k: string) => texts.get(Number(k))!);
}
