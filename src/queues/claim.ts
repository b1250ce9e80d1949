import * as z from "zod";
import { CLAIMS_PREFIX } from "../r2-keys.ts";

/**
 * A claim check (docs/delivery.md, "Large notifications"): a notification too large to ride in a queue message
 * is kept in R2 (binding PAYLOADS) and its messages carry this instead of the text. The text it stands for goes
 * where its mark is: a NUL, the claim's position, a NUL. A raw NUL never occurs in JSON text (JSON escapes
 * control characters inside strings), so a mark cannot be mistaken for the sender's own text.
 */
export const claimSchema = z.object({
  /** The object's key in PAYLOADS. */
  key: z.string().min(1),
  /** Where the text starts in the object, in bytes, when the object is the sender's whole body; else it is the text. */
  offset: z.int().min(0).optional(),
  /** The text's length in bytes (UTF-8). */
  bytes: z.int().min(0),
  /** The object's SHA-256, as hex: what was read must be what was kept. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export type Claim = z.infer<typeof claimSchema>;

/** Where the door keeps a call's claims in PAYLOADS: one prefix per call. */
export const claimKey = (callId: string, name: string): string =>
  `${CLAIMS_PREFIX}${encodeURIComponent(callId)}/${name}`;

/**
 * Where the door keeps a large body as it streams in, before its call's Id is known (src/ingress/body.ts). Its
 * claims name it, and the ledger deletes it with them.
 */
export const bodyKey = (): string => `${CLAIMS_PREFIX}bodies/${crypto.randomUUID()}`;
export const BODY_KEY_LENGTH = `${CLAIMS_PREFIX}bodies/`.length + 36;

/** Where claim number `k` of a text goes. */
export const claimMark = (k: number): string => `\u0000${k}\u0000`;

/** Every mark in a text, with the claim number it names. */
export const CLAIM_MARKS = /\u0000(\d+)\u0000/g;
