import { version } from "../../package.json";
import { signBody } from "../extend/signature.ts";
import { hmacKey, InvalidKeyError } from "../hmac.ts";
import type { DeadLetterReason } from "../queues/dead-letter.ts";
import type { Delivery } from "../queues/delivery.ts";
import { sendProblem } from "../rules/hosts.ts";
import type { Destination } from "../rules/schema.ts";
import { isRelaySecret, secretValue } from "../secrets.ts";
import { consumerSettings, hostPolicy } from "../settings.ts";

const USER_AGENT = `extend-relay/${version}`;
const encoder = new TextEncoder();

/** Thrown while preparing a delivery that can never succeed as the rules stand: it is dead-lettered at once. */
export class GiveUp extends Error {
  override name = "GiveUp";
  readonly reason: DeadLetterReason;
  constructor(reason: DeadLetterReason, detail: string) {
    super(detail);
    this.reason = reason;
  }
}

export interface PreparedRequest {
  /** What `fetch` is given as it is: no Request object of its own, which fetch would copy again to add a signal. */
  url: string;
  init: RequestInit & { headers: Record<string, string>; body: Uint8Array };
  /** Secret values this request carries, so that error texts can be cleaned of them. */
  secrets: { name: string; value: string }[];
}

/**
 * The downstream request (docs/delivery.md): the body (src/delivery/body.ts), the relay's headers, the
 * destination's headers and the signature over the bytes.
 * Every secret is checked before anything is built, so a value that cannot be sent never reaches the
 * runtime (whose warnings would print it): GiveUp `secret_*` instead, naming the secret, never its value.
 */
export async function prepareRequest(
  delivery: Delivery,
  destination: Destination,
  body: Uint8Array,
  attempt: number,
  env: object,
  nowSeconds: number,
): Promise<PreparedRequest> {
  const secrets: PreparedRequest["secrets"] = [];
  const hosts = hostPolicy(consumerSettings(env));
  const refuse = (problem: string | undefined, where: string) => {
    if (problem !== undefined) throw new GiveUp("host_not_allowed", `Not sent (${where}): ${problem}.`);
  };
  const secret = (name: string, where: string): string => {
    if (isRelaySecret(name)) {
      throw new GiveUp(
        "secret_not_allowed",
        `The rules name the relay's own secret ${name} (${where}); it is never sent.`,
      );
    }
    // Where a secret may go is the relay's configuration, not the rules' (src/rules/hosts.ts).
    if (where !== "url") refuse(sendProblem(hosts, new URL(url).hostname, name), where);
    const value = secretValue(env, name);
    if (value === undefined) throw new GiveUp("secret_missing", `The Worker secret ${name} (${where}) is not set.`);
    secrets.push({ name, value });
    return value;
  };

  const url = typeof destination.url === "string" ? destination.url : secret(destination.url.secret, "url");
  if (typeof destination.url === "object" && !sendableUrl(url)) {
    throw new GiveUp(
      "secret_invalid",
      `The Worker secret ${destination.url.secret} (url) does not hold an https URL without credentials (http only for localhost).`,
    );
  }
  refuse(
    sendProblem(hosts, new URL(url).hostname, typeof destination.url === "object" ? destination.url.secret : undefined),
    "url",
  );

  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "User-Agent": USER_AGENT,
    "X-Relay-Delivery-Id": delivery.deliveryId,
    "X-Relay-Attempt": String(attempt),
  };
  for (const [name, value] of Object.entries(destination.headers)) {
    if (typeof value === "string") {
      headers[name] = value;
      continue;
    }
    const text = secret(value.secret, `header ${name}`);
    if (!HEADER_SAFE.test(text)) {
      throw new GiveUp(
        "secret_invalid",
        `The Worker secret ${value.secret} (header ${name}) cannot be sent in a header: it holds a line break, a control character or a character outside ASCII.`,
      );
    }
    headers[name] = text;
  }

  const signing = destination.signing;
  if (signing.scheme === "ms-signature") {
    headers["ms-signature"] = await signBody(body, secret(signing.secret, "signing.secret"));
  } else if (signing.scheme === "standard-webhooks") {
    const key = secret(signing.secret, "signing.secret");
    try {
      Object.assign(headers, await standardWebhooksHeaders(key, body, delivery.deliveryId, nowSeconds));
    } catch (error) {
      if (!(error instanceof InvalidKeyError)) throw error;
      throw new GiveUp(
        "secret_invalid",
        `The Worker secret ${signing.secret} (signing.secret) is not a Standard Webhooks secret: ${error.message}; it must be whsec_ followed by base64.`,
      );
    }
  }
  return { url, init: { method: "POST", headers, body, redirect: "manual" }, secrets };
}

/** Visible ASCII, space and tab: what a header value can carry without the runtime changing or printing it. */
const HEADER_SAFE = /^[\t\x20-\x7E]*$/;

function sendableUrl(value: string): boolean {
  if (!URL.canParse(value)) return false;
  const url = new URL(value);
  const loopback = url.hostname === "localhost" || url.hostname === "127.0.0.1" || url.hostname === "[::1]";
  const scheme = url.protocol === "https:" || (url.protocol === "http:" && loopback);
  return scheme && url.username === "" && url.password === "";
}

/** Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` over `id.timestamp.body`. */
async function standardWebhooksHeaders(
  secret: string,
  body: Uint8Array,
  id: string,
  timestamp: number,
): Promise<Record<string, string>> {
  const key = await hmacKey(secret, "whsec");
  const prefix = encoder.encode(`${id}.${timestamp}.`);
  const content = new Uint8Array(prefix.byteLength + body.byteLength);
  content.set(prefix);
  content.set(body, prefix.byteLength);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, content));
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": `v1,${btoa(String.fromCharCode(...mac))}`,
  };
}

/** `text` with every secret value in it replaced by its name, for error texts that may quote a URL. */
export function redact(text: string, secrets: PreparedRequest["secrets"]): string {
  let out = text;
  for (const { name, value } of secrets) out = out.replaceAll(value, `[secret ${name}]`);
  return out;
}

/** Headers whose value is a signature: masked too, as a viewer could otherwise send the same request again. */
const SIGNATURES = new Set(["ms-signature", "webhook-signature"]);

/**
 * The request an attempt sends, as an operator may see it (docs/console.md, "A delivery's requests"): its URL and
 * headers, every secret value masked by its name and every signature masked, and the body; `curl` the same as a
 * command to paste (the masks to be filled in by whoever holds the secrets). GiveUp, as for sending, when it cannot
 * be built (a secret not set, a host not allowed).
 */
export async function maskedRequest(
  delivery: Delivery,
  destination: Destination,
  body: string,
  attempt: number,
  env: object,
  nowSeconds: number,
): Promise<{ url: string; headers: [string, string][]; body: string; curl: string }> {
  const prepared = await prepareRequest(delivery, destination, encoder.encode(body), attempt, env, nowSeconds);
  const url = redact(prepared.url, prepared.secrets);
  const headers = Object.entries(prepared.init.headers).map(
    ([name, value]) =>
      [name, SIGNATURES.has(name.toLowerCase()) ? "[signature]" : redact(value, prepared.secrets)] as [string, string],
  );
  const quote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;
  const curl = [
    `curl -X POST ${quote(url)}`,
    ...headers.map(([name, value]) => `  -H ${quote(`${name}: ${value}`)}`),
    `  --data-binary ${quote(redact(body, prepared.secrets))}`,
  ].join(" \\\n");
  return { url, headers, body: redact(body, prepared.secrets), curl };
}
