import { type Context, Hono } from "hono";
import { claimsNeeded, planCall, planMessages, route, senderAttempt } from "../delivery/planner.ts";
import type { AppEnv } from "../env.ts";
import { describe, errorResponse, RelayError } from "../errors.ts";
import { type Call, markedCall, notificationText, parseCallText } from "../extend/envelope.ts";
import { parseSignatureHeader, SIGNATURE_HEADER } from "../extend/signature.ts";
import { log } from "../log.ts";
import { claimKey, putClaim } from "../payloads.ts";
import type { CallRecord } from "../queues/call.ts";
import { bodyKey, type Claim } from "../queues/claim.ts";
import { utf8Length } from "../queues/limits.ts";
import { sendCallRecord, sendDeliveries } from "../queues/send.ts";
import { loadRules } from "../rules/store.ts";
import { type KeptBody, readSignedBody, type SignedBody } from "./body.ts";
import { remember, wasSeen } from "./dedupe.ts";

/** What the door answers a call it takes (docs/delivery.md, “The door”). */
export type IngressAnswer =
  | { status: "accepted"; id: string; notifications: number; deliveries: number }
  | { status: "duplicate"; id: string };

/**
 * POST /webhook: body limit → verify → parse → dedupe → match → enqueue → 202. A first attempt reads and
 * writes no storage on its way to the answer (beyond the cached rules): the call's record for the ledger
 * travels in the same sendBatch as its deliveries, and the consumer writes it. Only a call too large for queue
 * messages has part of it kept in R2 first (docs/delivery.md, "Large notifications").
 */
async function receiveCall(c: Context<AppEnv>): Promise<Response> {
  const started = Date.now();
  const { env } = c;
  const settings = c.var.settings;
  if (settings.webhookSecrets.length === 0) {
    throw new RelayError(
      "secret_not_configured",
      "EXTEND_WEBHOOK_SECRET is not set, so no call can be verified; the relay refuses all of them until it is.",
    );
  }
  const signature = parseSignatureHeader(c.req.header(SIGNATURE_HEADER) ?? null);
  const body = await readSignedBody(
    c.req.raw,
    settings.MAX_BODY_BYTES,
    typeof signature === "object" ? signature : undefined,
    settings.webhookSecrets,
    { bucket: env.PAYLOADS, key: bodyKey(), from: STREAM_BODY_BYTES },
  );
  const kept = { used: false };
  try {
    return await takeCall(c, signature, body, kept, started);
  } finally {
    // A body kept as it streamed that no claim names (refused, a duplicate, or small enough notifications).
    if (body.kept !== undefined && !kept.used) {
      const key = body.kept.key;
      c.executionCtx.waitUntil(
        env.PAYLOADS.delete(key).catch((error: unknown) =>
          log("warn", "payloads_delete_failed", { key, error: describe(error) }),
        ),
      );
    }
  }
}

async function takeCall(
  c: Context<AppEnv>,
  signature: ReturnType<typeof parseSignatureHeader>,
  body: SignedBody,
  kept: { used: boolean },
  started: number,
): Promise<Response> {
  const { env } = c;
  const settings = c.var.settings;
  if (signature === "missing") {
    throw new RelayError("signature_missing", `The ${SIGNATURE_HEADER} header is missing.`);
  }
  if (signature === "malformed") {
    throw new RelayError(
      "signature_malformed",
      `The ${SIGNATURE_HEADER} header must be "sha256=" followed by 64 hex digits.`,
    );
  }
  if (!body.verified) {
    throw new RelayError("signature_invalid", `The ${SIGNATURE_HEADER} header does not match the body.`);
  }

  const call = parseCallText(body.text);
  const { envelope } = call;
  const receivedAt = Date.now();
  const [seen, compiled] = await Promise.all([
    wasSeen(env.LEDGER, envelope.Id, envelope.Attempt),
    loadRules(env.RULES, settings.RULES_CACHE_SECONDS),
  ]);
  if (seen) {
    await recordDuplicate(env.DELIVERIES, envelope.Id, senderAttempt(call), receivedAt);
    log("info", "call", {
      id: envelope.Id,
      attempt: envelope.Attempt,
      outcome: "duplicate",
      durationMs: Date.now() - started,
    });
    return c.json({ status: "duplicate", id: envelope.Id } satisfies IngressAnswer, 200);
  }

  const routing = route(compiled, envelope.Notifications);
  const claimed = claimsNeeded(call, routing.fanouts, compiled);
  let claims: Claim[] | undefined;
  if (claimed.length > 0 && body.kept !== undefined) {
    claims = bodyClaims(call, claimed, body.bytes, body.kept);
  } else if (claimed.length > 0) {
    claims = await keep(
      env.PAYLOADS,
      envelope.Id,
      claimed.map((i) => [`n${i}`, notificationText(call, i)]),
    );
  }
  const planned = markedCall(call, claimed);
  const deliveries = planMessages(planned, routing.fanouts, compiled, receivedAt, claims);
  let messages = planCall(planned, routing, deliveries, receivedAt, { inline: true }, claims);
  if (messages === undefined) {
    // The call's own text does not fit its record: the ledger's copy is kept in R2 too.
    const [text] = await keep(env.PAYLOADS, envelope.Id, [["text", planned.text]]);
    messages = planCall(planned, routing, deliveries, receivedAt, { claim: text! }, claims)!;
  }
  // From here some messages may be in the queue, naming the kept body.
  kept.used = claims?.[0]?.key === body.kept?.key;
  try {
    // The call's record (its summary) goes last, once everything else is in, so that a call the ledger knows as
    // accepted was enqueued whole (else the sender's retry is taken as new).
    await sendDeliveries(env.DELIVERIES, messages);
  } catch (error) {
    // Messages of batches that did get in will be sent again on the sender's retry with the same delivery
    // ids, which receivers deduplicate on.
    log("error", "queue_send_failed", { id: envelope.Id, error: describe(error) });
    throw new RelayError("queue_unavailable", "The deliveries could not be enqueued; retry the call.");
  }
  remember(envelope.Id);
  const answer: IngressAnswer = {
    status: "accepted",
    id: envelope.Id,
    notifications: envelope.Notifications.length,
    deliveries: deliveries.length,
  };
  // The one line per call (its deliveries are in the ledger; the consumer logs only what is not a first success).
  log("info", "call", {
    id: envelope.Id,
    attempt: envelope.Attempt,
    outcome: "accepted",
    notifications: answer.notifications,
    deliveries: deliveries.map((m) => m.body.deliveryId),
    durationMs: Date.now() - started,
  });
  return c.json(answer, 202);
}

/** Puts texts of a call into PAYLOADS, a few at a time; 503 `payloads_unavailable` when R2 does not take them. */
async function keep(bucket: R2Bucket, callId: string, texts: [string, string][]): Promise<Claim[]> {
  const claims: Claim[] = [];
  try {
    for (let i = 0; i < texts.length; i += CLAIMS_AT_ONCE) {
      const some = texts.slice(i, i + CLAIMS_AT_ONCE);
      claims.push(...(await Promise.all(some.map(([name, text]) => putClaim(bucket, claimKey(callId, name), text)))));
    }
  } catch (error) {
    log("error", "payloads_put_failed", { id: callId, claims: texts.length, error: describe(error) });
    throw new RelayError(
      "payloads_unavailable",
      "The call's large notifications could not be kept in R2; nothing was enqueued, so retry the call.",
    );
  }
  return claims;
}

/**
 * The claims of notifications `claimed` (ascending) of a body kept whole: where each one's bytes are in it. The
 * text lacks only a byte order mark the decoder dropped, if the body began with one.
 */
function bodyClaims(call: Call, claimed: readonly number[], bytes: number, body: KeptBody): Claim[] {
  let offset = bytes - utf8Length(call.text);
  let at = 0;
  return claimed.map((index) => {
    const [start, end] = call.outline.elements[index]!;
    offset += utf8Length(call.text.slice(at, start));
    at = start;
    return { key: body.key, offset, bytes: utf8Length(call.text.slice(start, end)), sha256: body.sha256 };
  });
}

/**
 * Bodies declaring at least this many bytes go on to R2 as they stream in: one that large almost always has a
 * notification that cannot ride in a queue message (128 KB), and storing it while it arrives is what keeps a large
 * call's answer near the time its upload takes.
 */
const STREAM_BODY_BYTES = 1024 * 1024;

/** Claims put at once: Workers allow six open connections per invocation. */
const CLAIMS_AT_ONCE = 4;

/**
 * A duplicate's sender attempt, for the ledger. Should it not reach the queue, the call is on record anyway
 * (that is why it is a duplicate): only this attempt is missing from it, which is logged.
 */
async function recordDuplicate(queue: Queue<string>, id: string, attempt: string, at: number): Promise<void> {
  const record: CallRecord = { kind: "call", v: 2, id, at, attempt, outcome: "duplicate" };
  try {
    await sendCallRecord(queue, record);
  } catch (error) {
    log("error", "duplicate_not_recorded", { id, error: describe(error) });
  }
}

/** GET /webhook?echo=: the ASP.NET WebHooks registration handshake, the token back as the body. */
function echo(c: Context<AppEnv>): Response {
  const token = c.req.query("echo");
  if (token === undefined) {
    throw new RelayError("echo_missing", "GET /webhook is the registration handshake and needs ?echo=<token>.");
  }
  if (!/^[\x21-\x7E]{1,256}$/.test(token)) {
    throw new RelayError("echo_invalid", "The echo token must be 1 to 256 visible ASCII characters.");
  }
  return c.text(token, 200);
}

function methodNotAllowed(c: Context<AppEnv>): Response {
  return errorResponse(
    new RelayError(
      "method_not_allowed",
      `${c.req.method} is not supported on /webhook; use POST (or GET ?echo=).`,
      {},
      { Allow: "GET, HEAD, POST" },
    ),
  );
}

export const webhook = new Hono<AppEnv>().post("/", receiveCall).get("/", echo).all("/", methodNotAllowed);
