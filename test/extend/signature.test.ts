import { createHmac } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseSignatureHeader, signBody } from "../../src/extend/signature.ts";
import { readSignedBody } from "../../src/ingress/body.ts";

/** HMAC-SHA256 with node:crypto, independent of the relay's WebCrypto code. */
const hmac = (body: Uint8Array, secret: string) => createHmac("sha256", secret).update(body).digest();
const header = (mac: Uint8Array) => `sha256=${Buffer.from(mac).toString("hex").toUpperCase()}`;

const bodies = fc.uint8Array({ maxLength: 2048 });
// Any string, non-ASCII included: the key is the secret's UTF-8 bytes.
const secrets = fc.string({ minLength: 1, maxLength: 80, unit: "grapheme" });

/** What the door decides (src/ingress/body.ts verifies as it streams the body). */
async function verifies(body: Uint8Array, signature: string, secrets: string[]): Promise<boolean> {
  const parsed = parseSignatureHeader(signature);
  if (typeof parsed === "string") return false;
  const request = new Request("https://relay.test/webhook", { method: "POST", body });
  return (await readSignedBody(request, 10 * 1024 * 1024, parsed, secrets)).verified;
}

describe("ms-signature verification, for any body and secret", () => {
  it("signs exactly as node:crypto's HMAC-SHA256 in upper-case hex", async () => {
    await fc.assert(
      fc.asyncProperty(bodies, secrets, async (body, secret) => {
        expect(await signBody(body, secret)).toBe(header(hmac(body, secret)));
      }),
      { numRuns: 300 },
    );
  });

  it("accepts the correct signature, in upper- or lower-case hex", async () => {
    await fc.assert(
      fc.asyncProperty(bodies, secrets, fc.boolean(), async (body, secret, lower) => {
        const signature = header(hmac(body, secret));
        expect(await verifies(body, lower ? signature.toLowerCase() : signature, [secret])).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects the signature with any single bit flipped", async () => {
    await fc.assert(
      fc.asyncProperty(bodies, secrets, fc.integer({ min: 0, max: 255 }), async (body, secret, bit) => {
        const mac = hmac(body, secret);
        mac[bit >> 3]! ^= 1 << (bit & 7);
        expect(await verifies(body, header(mac), [secret])).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it("accepts another body's or another secret's signature exactly when the HMACs coincide", async () => {
    // HMAC pads short keys with zeros, so "k" and "k\0" are the same key: the oracle is the HMAC itself, not string equality.
    const related = fc.oneof(
      secrets.map((s) => [s, s] as const),
      fc.tuple(secrets, secrets),
      secrets.map((s) => [s, `${s}\u0000`] as const),
    );
    await fc.assert(
      fc.asyncProperty(bodies, bodies, related, async (body, otherBody, [secret, otherSecret]) => {
        const signature = header(hmac(otherBody, otherSecret));
        const same = hmac(body, secret).equals(hmac(otherBody, otherSecret));
        expect(await verifies(body, signature, [secret])).toBe(same);
      }),
      { numRuns: 300 },
    );
  });

  it("accepts during a rotation when either secret signed, and only then", async () => {
    await fc.assert(
      fc.asyncProperty(bodies, secrets, secrets, secrets, async (body, current, previous, signer) => {
        const signature = header(hmac(body, signer));
        const expected = [current, previous].some((s) => hmac(body, s).equals(hmac(body, signer)));
        expect(await verifies(body, signature, [current, previous])).toBe(expected);
      }),
      { numRuns: 200 },
    );
  });

  it("reads a header as a signature only when it is sha256= and 64 hex digits, decoding them exactly", () => {
    const hex = fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF"), minLength: 64, maxLength: 64 });
    const headers = fc.oneof(
      hex.map((h) => `sha256=${h}`),
      fc.string({ maxLength: 80 }),
      fc
        .tuple(
          fc.constantFrom("sha256=", "SHA256=", "sha256 =", "sha1=", "", " sha256="),
          fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEFgz= "), maxLength: 70 }),
        )
        .map(([p, h]) => p + h),
    );
    fc.assert(
      fc.property(headers, (value) => {
        const parsed = parseSignatureHeader(value);
        if (/^sha256=[0-9a-fA-F]{64}$/.test(value)) {
          expect(parsed).toBeInstanceOf(Uint8Array);
          expect(Buffer.from(parsed as Uint8Array).toString("hex")).toBe(value.slice(7).toLowerCase());
        } else {
          expect(parsed).toBe(value === "" ? "missing" : "malformed");
        }
      }),
      { numRuns: 1000 },
    );
    expect(parseSignatureHeader(null)).toBe("missing");
  });
});
