import { Hono } from "hono";
import { batchMessages, fanOut, planMessages } from "../delivery/planner.ts";
import { describe, errorResponse, RelayError } from "../errors.ts";
import { parseEnvelope } from "../extend/envelope.ts";
import { parseSignatureHeader, SIGNATURE_HEADER, verifySignature } from "../extend/signature.ts";
import { log } from "../log.ts";
import { loadRules } from "../rules/store.ts";
import { type Env, settingsOf } from "../settings.ts";
import { readBody } from "./body.ts";
import { remember, wasSeen } from "./dedupe.ts";

export const webhook = new Hono<{ Bindings: Env }>();

/** POST /webhook (SPEC §2): verify → parse → dedupe → match → enqueue → 202. */
webhook.post("/", async (c) => {
  const { env } = c;
  const settings = settingsOf(env);
  if (settings.webhookSecrets.length === 0) {
    throw new RelayError(
      503,
      "secret_not_configured",
      "EXTEND_WEBHOOK_SECRET is not set, so no call can be verified; the relay refuses all of them until it is.",
    );
  }
  const body = await readBody(c.req.raw, settings.maxBodyBytes);
  const signature = parseSignatureHeader(c.req.header(SIGNATURE_HEADER) ?? null);
  if (signature === "missing") {
    throw new RelayError(401, "signature_missing", `The ${SIGNATURE_HEADER} header is missing.`);
  }
  if (signature === "malformed") {
    throw new RelayError(
      401,
      "signature_malformed",
      `The ${SIGNATURE_HEADER} header must be "sha256=" followed by 64 hex digits.`,
    );
  }
  if (!(await verifySignature(body, signature, settings.webhookSecrets))) {
    throw new RelayError(401, "signature_invalid", `The ${SIGNATURE_HEADER} header does not match the body.`);
  }

  const envelope = parseEnvelope(body);
  const receivedAt = Date.now();
  const [seen, compiled] = await Promise.all([
    wasSeen(env.STATE, envelope.Id, envelope.Attempt, settings.dedupTtlSeconds),
    loadRules(env.RULES, settings.rulesCacheSeconds),
  ]);
  if (seen) {
    log("info", "ingress", { id: envelope.Id, outcome: "duplicate" });
    return c.json({ status: "duplicate", id: envelope.Id }, 200);
  }

  const messages = planMessages(envelope, fanOut(compiled, envelope.Notifications), compiled, receivedAt);
  try {
    await Promise.all(
      batchMessages(messages).map((batch) =>
        env.DELIVERIES.sendBatch(batch.map((m) => ({ body: m.body, contentType: "json" as const }))),
      ),
    );
  } catch (error) {
    // Messages of batches that did get in will be sent again on the sender's retry with the same
    // delivery ids, which receivers deduplicate on.
    log("error", "queue_send_failed", { id: envelope.Id, error: describe(error) });
    throw new RelayError(503, "queue_unavailable", "The deliveries could not be enqueued; retry the call.");
  }
  // Remembered only once everything is enqueued, and off the response's path.
  c.executionCtx.waitUntil(remember(env.STATE, envelope.Id, settings.dedupTtlSeconds));
  log("info", "ingress", {
    id: envelope.Id,
    outcome: "accepted",
    notifications: envelope.Notifications.length,
    deliveries: messages.length,
  });
  return c.json(
    { status: "accepted", id: envelope.Id, notifications: envelope.Notifications.length, deliveries: messages.length },
    202,
  );
});

/** The ASP.NET WebHooks registration handshake: the token back as the body. */
webhook.get("/", (c) => {
  const echo = c.req.query("echo");
  if (echo === undefined) {
    throw new RelayError(400, "echo_missing", "GET /webhook is the registration handshake and needs ?echo=<token>.");
  }
  if (!/^[\x21-\x7E]{1,256}$/.test(echo)) {
    throw new RelayError(400, "echo_invalid", "The echo token must be 1 to 256 visible ASCII characters.");
  }
  return c.text(echo, 200);
});

webhook.all("/", (c) =>
  errorResponse(
    new RelayError(
      405,
      "method_not_allowed",
      `${c.req.method} is not supported on /webhook; use POST (or GET ?echo=).`,
      {},
      { Allow: "GET, HEAD, POST" },
    ),
  ),
);
