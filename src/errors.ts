import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * Every error code the relay answers with, its HTTP status, and what it means to the person who gets it.
 * This is the one list: `RelayError` takes its status from here, and docs/operations.md's table of codes is
 * checked against it by test/scripts/docs.test.ts.
 */
export const ERRORS = {
  // The door (POST /webhook)
  misconfigured: {
    status: 503,
    hint: "A var has a bad value; the message names it. Fix it in `wrangler.toml` and deploy again (see “A bad deploy”).",
  },
  secret_not_configured: {
    status: 503,
    hint: "`EXTEND_WEBHOOK_SECRET` is not set; every call is refused until it is (`wrangler secret put`).",
  },
  body_too_large: { status: 413, hint: "The body exceeds `MAX_BODY_BYTES` (default 10 MiB), also for chunked bodies." },
  signature_missing: {
    status: 401,
    hint: "No `ms-signature` header. The caller is not Extend Commerce, or a proxy strips the header.",
  },
  signature_malformed: { status: 401, hint: "The `ms-signature` header is not `sha256=` followed by 64 hex digits." },
  signature_invalid: {
    status: 401,
    hint: "The HMAC does not match: the secret in Extend Commerce differs from `EXTEND_WEBHOOK_SECRET` (or `_PREVIOUS`), or the body was changed on the way.",
  },
  invalid_encoding: { status: 400, hint: "The body is not UTF-8." },
  invalid_json: { status: 400, hint: "The body is not JSON; the message quotes the parser." },
  nesting_too_deep: {
    status: 400,
    hint: "The body nests objects or arrays more than 64 levels deep (admin request bodies too).",
  },
  invalid_envelope: {
    status: 400,
    hint: "The body is not an Extend Commerce envelope (`Id`, `Notifications[].Action`, `Details`); `issues` lists the paths.",
  },
  envelope_too_large: {
    status: 413,
    hint: "The call's members besides its notifications (`Id`, `Properties` and the like) need more than a queue message holds (126,000 bytes as JSON); no notification is ever refused for its own size.",
  },
  payloads_unavailable: {
    status: 503,
    hint: "A call with notifications too large for a queue message could not have them kept in R2 (`PAYLOADS`); nothing was enqueued, so the sender's retry goes through.",
  },
  rules_unavailable: { status: 503, hint: "The rules could not be read from KV; transient, the sender retries." },
  stored_rules_invalid: {
    status: 503,
    hint: "The document in KV does not validate (written around the CLI and the admin API); nothing is routed and the sender retries. `npm run rules -- pull --remote` shows it; push a valid one.",
  },
  queue_unavailable: {
    status: 503,
    hint: "The deliveries could not be enqueued; nothing was remembered, so the sender's retry goes through.",
  },
  echo_missing: { status: 400, hint: "`GET /webhook` is the registration handshake and needs `?echo=<token>`." },
  echo_invalid: { status: 400, hint: "The echo token must be 1 to 256 visible ASCII characters." },
  method_not_allowed: { status: 405, hint: "Only `POST` (and `GET ?echo=`) on `/webhook`." },
  // The admin API
  admin_disabled: {
    status: 503,
    hint: "No way in is configured (neither `ADMIN_TOKEN`, `VIEWER_TOKEN` nor Cloudflare Access), so the admin API is off.",
  },
  unauthorized: {
    status: 401,
    hint: "Missing or wrong `Authorization: Bearer <ADMIN_TOKEN or VIEWER_TOKEN>` (or no Access assertion); the answer carries a `WWW-Authenticate` challenge.",
  },
  rules_not_found: {
    status: 404,
    hint: "KV holds no rules document yet (every call is then accepted with 0 deliveries).",
  },
  rules_invalid: {
    status: 422,
    hint: "The rules document sent (`PUT`, `validate`, or a dry run's `rules`) is invalid and nothing was stored; `issues` names each path.",
  },
  invalid_query: {
    status: 400,
    hint: "A query parameter is out of range or not one this API issued; the message names it.",
  },
  dead_letter_not_found: { status: 404, hint: "No dead letter with that delivery id (replayed, deleted, or expired)." },
  call_not_found: {
    status: 404,
    hint: "The ledger has no call with that Id: never accepted (refused calls are not recorded), not yet written (a second or so after the answer), or past `LEDGER_RETENTION_DAYS`.",
  },
  delivery_not_found: {
    status: 404,
    hint: "The ledger has no delivery with that id (never planned, or past `LEDGER_RETENTION_DAYS`).",
  },
  delivery_not_replayable: {
    status: 409,
    hint: "The delivery has no stored message yet: it is pending, on its way to its first attempt. Wait for it.",
  },
  not_replayable: { status: 409, hint: "The record holds no readable delivery message; read it, then delete it." },
  dead_letter_unreadable: {
    status: 409,
    hint: "The stored record is not one this relay can read (the ledger edited by hand or by another version); the message says what is wrong. Delete it.",
  },
  destination_not_found: {
    status: 404,
    hint: "The rules have no destination with that name (`GET /admin/destinations` lists them).",
  },
  gate_unavailable: {
    status: 503,
    hint: "The destination's gate (its Durable Object) could not be reached; transient, try again.",
  },
  not_paused_by_circuit: {
    status: 409,
    hint: "Only a destination its circuit breaker paused has a probe to send now; one paused by hand is resumed instead.",
  },
  job_not_found: { status: 404, hint: "No bulk action with that id (`GET /admin/jobs` lists the latest)." },
  // Operators: who is asking, and what they may do (docs/console.md)
  access_denied: {
    status: 401,
    hint: "A Cloudflare Access assertion (`Cf-Access-Jwt-Assertion`) came but is invalid: expired, for another application or team, or not signed by the team's keys. It is never replaced by a token or a cookie. Sign in through Access again.",
  },
  access_unavailable: {
    status: 503,
    hint: "Cloudflare Access's signing keys (`<ACCESS_TEAM_DOMAIN>/cdn-cgi/access/certs`) could not be fetched; transient, try again.",
  },
  forbidden: {
    status: 403,
    hint: "A viewer (`VIEWER_TOKEN`, or an Access user not in `OPERATORS`) asked for a change; only an operator may make it. The refusal is in the activity log.",
  },
  too_many_attempts: {
    status: 429,
    hint: "This client (IPv4 address, or IPv6 /64) had 10 failed sign-ins or wrong bearers in 10 minutes; `Retry-After` says when it may try again.",
  },
  client_unknown: {
    status: 400,
    hint: "The request has no client address (`CF-Connecting-IP`), so its attempts cannot be counted; the relay checks no credential without one. Cloudflare sets it on every request from the internet.",
  },
  session_ended: {
    status: 401,
    hint: "The console session has ended (signed out, idle, expired, or its token changed); sign in again.",
  },
  activity_unavailable: {
    status: 503,
    hint: "The activity log could not be written, so the change was not made (no row, no change); transient, try again.",
  },
  rules_version_not_found: {
    status: 404,
    hint: "The rules history has no such version (`GET /admin/rules/versions` lists them).",
  },
  // Anywhere
  not_found: { status: 404, hint: "No such path." },
  internal_error: { status: 500, hint: "A bug; the log line `unhandled` has the details." },
} as const satisfies Record<string, { status: ContentfulStatusCode; hint: string }>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * An error the relay answers with: a stable code from ERRORS (which fixes the HTTP status) and a sentence a
 * person can act on. The body is `{"error": code, "message": sentence, ...details}` and never holds a secret.
 */
export class RelayError extends Error {
  readonly code: ErrorCode;
  readonly status: ContentfulStatusCode;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "RelayError";
    this.code = code;
    this.status = ERRORS[code].status;
    this.details = details;
    this.headers = headers;
  }

  toJSON(): { error: ErrorCode; message: string } & Record<string, unknown> {
    return { error: this.code, message: this.message, ...this.details };
  }
}

/** The JSON body every error response has. */
export type ErrorBody = ReturnType<RelayError["toJSON"]>;

export function errorResponse(error: RelayError): Response {
  return Response.json(error.toJSON(), { status: error.status, headers: error.headers });
}

/** A short, secret-free description of an unexpected failure, for logs. */
export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 500);
  return String(error).slice(0, 500);
}
