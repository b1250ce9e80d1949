import { type Context, Hono } from "hono";
import { planCall, planMessages, route, senderAttempt } from "../delivery/planner.ts";
import type { AppEnv } from "../env.ts";
import { describe, errorResponse, RelayError } from "../errors.ts";
import { parseCall } from "../extend/envelope.ts";
import { parseSignatureHeader, SIGNATURE_HEADER, verifySignature } from "../extend/signature.ts";
import { readBody } from "../json.ts";
import { log } from "../log.ts";
import type { CallRecord } from "../queues/call.ts";
import { sendCallRecord, sendDeliveries } from "../queues/send.ts";
import { loadRules } from "../rules/store.ts";
import { remember, wasSeen } from "./dedupe.ts";

/** What the door answers a call it takes (docs/delivery.md, “The door”). */
export type IngressAnswer =
  | { status: "accepted"; id: string; notifications: number; deliveries: number }
  | { status: "duplicate"; id: string };

/**
 * POST /webhook: body limit → verify → parse → dedupe → match → enqueue → 202. A first attempt reads and
 * writes no storage on its way to the answer (beyond the cached rules): the call's record for the ledger
 * travels in the same sendBatch as its deliveries, and the consumer writes it.
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
  const body = await readBody(c.req.raw, settings.MAX_BODY_BYTES);
  const signature = parseSignatureHeader(c.req.header(SIGNATURE_HEADER) ?? null);
  if (signature === "missing") {
    throw new RelayError("signature_missing", `The ${SIGNATURE_HEADER} header is missing.`);
  }
  if (signature === "malformed") {
    throw new RelayError(
      "signature_malformed",
      `The ${SIGNATURE_HEADER} header must be "sha256=" followed by 64 hex digits.`,
    );
  }
  if (!(await verifySignature(body, signature, settings.webhookSecrets))) {
    throw new RelayError("signature_invalid", `The ${SIGNATURE_HEADER} header does not match the body.`);
  }

  const call = parseCall(body);
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
  const deliveries = planMessages(call, routing.fanouts, compiled, receivedAt);
  try {
    // The call's record (its summary) goes last, once everything else is in, so that a call the ledger knows as
    // accepted was enqueued whole (else the sender's retry is taken as new).
    await sendDeliveries(env.DELIVERIES, planCall(call, routing, deliveries, receivedAt));
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
