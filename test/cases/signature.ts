/**
 * The ways a call's `ms-signature` can be wrong, and what the door answers each: written once, run both in
 * workerd (test/ingress/bad-input.test.ts) and over real HTTP against `wrangler dev` (test/e2e/bad-input.test.ts).
 * Signatures are made with node:crypto, independently of the relay's WebCrypto code.
 */
import { createHmac } from "node:crypto";
import signatures from "../../fixtures/extend/signatures.json";

/** `ms-signature` as Extend Commerce writes it: HMAC-SHA256 of the raw bytes, upper-case hex. */
export function msSignature(body: string | Uint8Array, secret: string = signatures.secret): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex").toUpperCase()}`;
}

export interface SignatureCase {
  name: string;
  /** The body actually sent, made from a fresh valid one. */
  body?: (valid: string) => string;
  /** The ms-signature header(s) sent for it (null: none), given the fresh valid body. */
  header: (valid: string) => string | string[] | null;
  /** The error code expected, or null when the call is accepted. */
  code: "signature_missing" | "signature_malformed" | "signature_invalid" | null;
}

export const SIGNATURE_CASES: SignatureCase[] = [
  { name: "no ms-signature header", header: () => null, code: "signature_missing" },
  { name: "an empty ms-signature header", header: () => "", code: "signature_missing" },
  {
    name: "the hex without the sha256= prefix",
    header: (b) => msSignature(b).slice("sha256=".length),
    code: "signature_malformed",
  },
  {
    name: "an upper-case SHA256= prefix (the sender spells it sha256=)",
    header: (b) => msSignature(b).replace("sha256=", "SHA256="),
    code: "signature_malformed",
  },
  {
    name: "another algorithm's prefix (sha1=)",
    header: (b) => msSignature(b).replace("sha256=", "sha1="),
    code: "signature_malformed",
  },
  {
    name: "a truncated signature (63 hex digits)",
    header: (b) => msSignature(b).slice(0, -1),
    code: "signature_malformed",
  },
  { name: "a signature one digit too long", header: (b) => `${msSignature(b)}0`, code: "signature_malformed" },
  { name: "non-hex digits", header: (b) => `${msSignature(b).slice(0, -2)}ZZ`, code: "signature_malformed" },
  {
    name: "the MAC in base64 instead of hex",
    header: (b) => `sha256=${Buffer.from(msSignature(b).slice(7), "hex").toString("base64")}`,
    code: "signature_malformed",
  },
  {
    name: "two ms-signature headers, both correct",
    header: (b) => [msSignature(b), msSignature(b)],
    code: "signature_malformed",
  },
  {
    name: "a signature made with the wrong secret",
    header: (b) => msSignature(b, "not-the-secret"),
    code: "signature_invalid",
  },
  {
    name: "the signature of a different body",
    header: (b) => msSignature(b.replace(/"Id":"/, '"Id":"x')),
    code: "signature_invalid",
  },
  {
    name: "a correctly signed body with one byte appended",
    body: (b) => `${b} `,
    header: (b) => msSignature(b),
    code: "signature_invalid",
  },
  {
    name: "the seed's test vector (signed with secret123, not this relay's secret)",
    body: () => signatures.seedVector.body,
    header: () => signatures.seedVector.signature,
    code: "signature_invalid",
  },
  {
    name: "a correct signature in lower-case hex (accepted: hex is case-insensitive)",
    header: (b) => msSignature(b).toLowerCase(),
    code: null,
  },
];
