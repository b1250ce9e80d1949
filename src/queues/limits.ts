import { Buffer } from "node:buffer";

/**
 * Cloudflare Queues' limits (1 KB = 1000 bytes) and what the relay plans within them: a message at most 128 KB,
 * a sendBatch at most 100 messages and 256 KB. Each message also carries about 100 bytes of Queues' metadata, so
 * the budgets leave room for it. A delivery message leaves 2,000 bytes more, so that its dead-letter record (the
 * message and about 1,700 bytes of its own) always fits a queue message too.
 */
export const MESSAGE_BUDGET = 128_000 - 2_000;
export const BATCH_BUDGET = 256_000 - 6_000;
export const BATCH_MESSAGES = 100;
export const METADATA_BYTES = 100;

/** A queue message as planned: its body, the JSON text sent, and its size in bytes as Queues counts it. */
export interface Planned<T> {
  body: T;
  text: string;
  bytes: number;
}

/** A body planned as a queue message: its JSON text and that text's size. */
export function plan<T>(body: T): Planned<T> {
  const text = JSON.stringify(body);
  return { body, text, bytes: utf8Length(text) };
}

/** Groups messages, in order, into sendBatch calls within Queues' count and size limits. */
export function batchMessages<T extends { bytes: number }>(messages: readonly T[]): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = message.bytes + METADATA_BYTES;
    if (current.length > 0 && (current.length === BATCH_MESSAGES || bytes + size > BATCH_BUDGET)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** UTF-8 byte length of a string without encoding it (a lone surrogate counts as the 3 bytes of U+FFFD). */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/**
 * Bounds of a record's own text fields (UTF-8 bytes), so that a dead-letter record around the largest delivery
 * message still fits a queue message: MESSAGE_BUDGET + about 1,700 bytes of record fields + Queues' metadata stay
 * under 128,000.
 */
export const RECORD_TEXT_LIMITS = { detail: 600, lastError: 400, id: 300, raw: 100_000 } as const;

const encoder = new TextEncoder();

/** `text` cut to at most `maxBytes` of UTF-8 (never inside a character), marked with … when cut. */
export function cut(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes || encoder.encode(text).byteLength <= maxBytes) return text;
  const bytes = encoder.encode(text).subarray(0, maxBytes - 3);
  return `${new TextDecoder().decode(bytes).replace(/\uFFFD$/, "")}…`;
}
