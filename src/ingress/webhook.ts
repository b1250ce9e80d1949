import { type Context, Hono } from "hono";
import { batchMessages, fanOut, planMessages } from "../delivery/planner.ts";
import type { AppEnv } from "../env.ts";
import { describe, errorResponse, RelayError } from "../errors.ts";
import { parseCall } from "../extend/envelope.ts";
import { parseSignatureHeader, SIGNATURE_HEADER, verifySignature } from "../extend/signature.ts";
import { readBody } from "../json.ts";
import { log } from "../log.ts";
import { loadRules } from "../rules/store.ts";
import { remember, wasSeen } from "./dedupe.ts";

/** What the door answers a call it takes (docs/delivery.md, “The door”). */
export type IngressAnswer =
  | { status: "accepted"; id: string; notifications: number; deliveries: number }
  | { status: "duplicate"; id: string };

/** POST /webhook: body limit → verify → parse → dedupe → match → enqueue → 202. */
async function receiveCall(c: Context<AppEnv>): Promise<Response> {
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
    wasSeen(env.STATE, envelope.Id, envelope.Attempt, settings.DEDUP_TTL_SECONDS),
    loadRules(env.RULES, settings.RULES_CACHE_SECONDS),
  ]);
  if (seen) {
    log("info", "ingress", { id: envelope.Id, outcome: "duplicate" });
    return c.json({ status: "duplicate", id: envelope.Id } satisfies IngressAnswer, 200);
  }

  const messages = planMessages(call, fanOut(compiled, envelope.Notifications), compiled, receivedAt);
  try {
    await Promise.all(
      batchMessages(messages).map((batch) =>
        env.DELIVERIES.sendBatch(batch.map((m) => ({ body: m.text, contentType: "text" as const }))),
      ),
    );
  } catch (error) {
    // Messages of batches that did get in will be sent again on the sender's retry with the same
    // delivery ids, which receivers deduplicate on.
    log("error", "queue_send_failed", { id: envelope.Id, error: describe(error) });
    throw new RelayError("queue_unavailable", "The deliveries could not be enqueued; retry the call.");
  }
  // Remembered only once everything is enqueued, and off the response's path.
  c.executionCtx.waitUntil(remember(env.STATE, envelope.Id, settings.DEDUP_TTL_SECONDS));
  const answer: IngressAnswer = {
    status: "accepted",
    id: envelope.Id,
    notifications: envelope.Notifications.length,
    deliveries: messages.length,
  };
  log("info", "ingress", {
    id: envelope.Id,
    outcome: "accepted",
    notifications: answer.notifications,
    deliveries: answer.deliveries,
  });
  return c.json(answer, 202);
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
