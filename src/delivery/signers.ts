import { RelayError } from "../errors.ts";
import { signBody } from "../extend/signature.ts";
import type { Destination } from "../rules/schema.ts";

/**
 * Signature headers for a delivery: the sender's own `ms-signature`, or Standard Webhooks
 * (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`), over the exact bytes sent.
 */
export async function signatureHeaders(
  signing: Destination["signing"],
  secret: string | undefined,
  body: Uint8Array,
  deliveryId: string,
  nowSeconds: number,
): Promise<Record<string, string>> {
  if (signing.scheme === "none") return {};
  if (secret === undefined) throw missingSecret(signing.secret);
  if (signing.scheme === "ms-signature") return { "ms-signature": await signBody(body, secret) };
  return standardWebhooksHeaders(secret, body, deliveryId, nowSeconds);
}

export function missingSecret(name: string): RelayError {
  return new RelayError(500, "secret_missing", `The Worker secret ${name} named by the rules is not set.`);
}

const keys = new Map<string, Promise<CryptoKey>>();

function standardWebhooksKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (key === undefined) {
    let raw: Uint8Array;
    try {
      raw = Uint8Array.from(atob(secret.startsWith("whsec_") ? secret.slice(6) : secret), (c) => c.charCodeAt(0));
    } catch {
      throw new RelayError(500, "secret_invalid", "A standard-webhooks secret must be whsec_ followed by base64.");
    }
    key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(secret, key);
  }
  return key;
}

const encoder = new TextEncoder();

async function standardWebhooksHeaders(
  secret: string,
  body: Uint8Array,
  id: string,
  timestamp: number,
): Promise<Record<string, string>> {
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const content = new Uint8Array(prefix.byteLength + body.byteLength);
  content.set(prefix);
  content.set(body, prefix.byteLength);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await standardWebhooksKey(secret), content));
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": `v1,${btoa(String.fromCharCode(...mac))}`,
  };
}
