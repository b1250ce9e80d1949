/**
 * A call's text in the ledger (table call_text): each part is kept deflated (raw DEFLATE, as a BLOB) when that
 * is smaller, else as TEXT. A JSON call of a kilobyte deflates to about a third, and the text is most of what a
 * call costs the ledger (docs/ledger.md, "Retention and sizing"). Rows written as TEXT read back unchanged.
 */

import { deflateRawSync, inflateRawSync } from "node:zlib";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Below this many bytes deflating saves next to nothing. */
const MIN_PACKED_BYTES = 128;

/**
 * What call_text's `chunk` column holds for `chunk`: its DEFLATE bytes when smaller, else the text itself.
 * node:zlib's synchronous calls (native in workerd): a CompressionStream costs the ledger consumer several times
 * more for a kilobyte, in its stream machinery (measured: bench section 3).
 */
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
  if (bytes === undefined) throw new Error(`call_text holds a ${typeof value}, neither text nor bytes`);
  return decoder.decode(inflateRawSync(bytes));
}
