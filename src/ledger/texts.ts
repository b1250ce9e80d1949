import { deflateRawSync, inflateRawSync } from "node:zlib";
import { describe } from "../errors.ts";
import { log } from "../log.ts";
import { TEXTS_PREFIX } from "../r2-keys.ts";

/**
 * Where the ledger keeps each call's text as the sender wrote it (docs/ledger.md, "How it is stored"), so that any
 * delivery of the call can be sent again: in R2 (binding PAYLOADS), one object per ledger batch holding each of
 * its calls' texts deflated (raw DEFLATE) one after another, read back by range; a call's row says which object,
 * where and how long. A text whose R2 write fails is kept in D1 instead (ledger_text_parts), as are the texts
 * of relay 0.1's ledger. The text is most of what a call weighs: in D1 it would be half the ledger.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The objects' keys: one folder per UTC day, so that retention drops a day's texts by their day. */
export const textKey = (day: number): string =>
  `${TEXTS_PREFIX}${new Date(day * 86_400_000).toISOString().slice(0, 10)}/${crypto.randomUUID()}`;

export const dayOf = (ms: number): number => Math.floor(ms / 86_400_000);

/** Where one text is in its object. */
export interface TextPlace {
  at: number;
  bytes: number;
}

/** One batch's texts as one object: their DEFLATE bytes back to back, and where each is. */
export function packTexts(texts: readonly string[]): { object: Uint8Array; places: TextPlace[] } {
  const parts = texts.map((text) => deflateRawSync(encoder.encode(text)));
  const object = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  const places: TextPlace[] = [];
  let at = 0;
  for (const part of parts) {
    object.set(part, at);
    places.push({ at, bytes: part.byteLength });
    at += part.byteLength;
  }
  return { object, places };
}

/**
 * Keeps a batch's texts in one R2 object; undefined when R2 did not take it (logged), so that the caller keeps
 * them in D1 instead: a call's text is never given up for R2's sake.
 */
export async function putTexts(
  payloads: R2Bucket | undefined,
  texts: readonly string[],
  now: number,
): Promise<{ key: string; day: number; places: TextPlace[] } | undefined> {
  if (texts.length === 0 || payloads === undefined) return undefined;
  const { object, places } = packTexts(texts);
  const day = dayOf(now);
  const key = textKey(day);
  try {
    await payloads.put(key, object);
    return { key, day, places };
  } catch (error) {
    log("warn", "ledger_texts_not_stored", { texts: texts.length, error: describe(error) });
    return undefined;
  }
}

/** A text read back from its place in an object; null when the object is gone (past retention) or unreadable. */
export async function readText(
  payloads: R2Bucket | undefined,
  key: string,
  place: TextPlace,
  callId: string,
): Promise<string | null> {
  if (payloads === undefined) return null;
  try {
    const object = await payloads.get(key, { range: { offset: place.at, length: place.bytes } });
    if (object === null) return null;
    return decoder.decode(inflateRawSync(new Uint8Array(await object.arrayBuffer())));
  } catch (error) {
    log("error", "call_text_unreadable", { callId, error: describe(error) });
    return null;
  }
}

/** Below this many bytes deflating saves next to nothing. */
const MIN_PACKED_BYTES = 128;

/** What ledger_text_parts' `chunk` holds for a text kept in D1: its DEFLATE bytes when smaller, else the text. */
export function packText(chunk: string): string | Uint8Array {
  const plain = encoder.encode(chunk);
  if (plain.byteLength < MIN_PACKED_BYTES) return chunk;
  const packed = deflateRawSync(plain);
  return packed.byteLength < plain.byteLength
    ? new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength)
    : chunk;
}

/** The text of a `chunk` column as D1 returns it (a string, or a BLOB as bytes or an array of numbers). */
export function unpackText(value: unknown): string {
  if (typeof value === "string") return value;
  const bytes =
    value instanceof ArrayBuffer
      ? new Uint8Array(value)
      : ArrayBuffer.isView(value)
        ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
        : Array.isArray(value)
          ? Uint8Array.from(value as number[])
          : undefined;
  if (bytes === undefined) throw new Error(`a call text holds a ${typeof value}, neither text nor bytes`);
  return decoder.decode(inflateRawSync(bytes));
}

/**
 * A call's text from its ledger_text_parts rows, in order (each part deflated on its own), or null when they are
 * not all there or do not inflate (logged, so that an unreadable text is seen rather than shown as missing).
 */
export function joinedParts(callId: string, rows: readonly { parts: number; chunk: unknown }[]): string | null {
  if (rows.length === 0 || rows.length !== rows[0]!.parts) return null;
  try {
    return rows.map((row) => unpackText(row.chunk)).join("");
  } catch (error) {
    log("error", "call_text_unreadable", { callId, error: describe(error) });
    return null;
  }
}
