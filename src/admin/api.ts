import * as z from "zod";
import { ERRORS, type ErrorCode } from "../errors.ts";
import {
  callPageSchema,
  callTraceSchema,
  deadLetterPageSchema,
  deliveryPageSchema,
  statsSchema,
} from "../ledger/views.ts";
import { PATHS, QUERIES } from "./query.ts";
import {
  activityPageSchema,
  activityRowSchema,
  actorSchema,
  alertsSchema,
  bulkReplaySchema,
  countSchema,
  deadLetterRecordSchema,
  deletedSchema,
  deliveryTraceSchema,
  destinationListSchema,
  destinationStateSchema,
  dryRunRequestSchema,
  dryRunSchema,
  endedSchema,
  errorSchema,
  hourlySchema,
  jobFilterSchema,
  jobSchema,
  jobsSchema,
  openApiSchema,
  redrivenSchema,
  resendResultSchema,
  rulesAnswerSchema,
  rulesDocumentSchema,
  rulesVersionDocumentSchema,
  sessionsSchema,
  versionsPageSchema,
} from "./schemas.ts";

/**
 * The admin API as data (docs/admin-api.md is generated from the OpenAPI document built from this): every route
 * with its summary, role, query, body, answer and the errors it may give. Each route of src/admin/ takes its
 * description and validators from here (src/admin/openapi.ts), test/admin/openapi.test.ts fails for a route of
 * the app the document lacks, and the e2e suite checks every answer it gets against `answerSchema`. Free of
 * Workers types, so that the docs script and the e2e suite on Node import it.
 */

/** The sections of docs/admin-api.md, in order (their names are cited by code comments). */
export const TAGS = {
  Rules: "The rules document, its history, and the dry run ([rules](rules.md)).",
  "The ledger: calls and deliveries":
    "What the [ledger](ledger.md) holds: every call answered 2xx (a few seconds after), its deliveries and attempts.",
  "Dead letters":
    "Deliveries with status `dead` ([delivery](delivery.md#dead-letters-and-replay)). URL-encode an id holding `/`, `?`, `#` or `%`.",
  Destinations: "Each destination's gate ([flow control](flow-control.md)).",
  Operators: "Who is asking, the activity log and the console's sessions ([console](console.md#the-activity-log)).",
} as const;
export type Tag = keyof typeof TAGS;

export interface Operation {
  tag: Tag;
  summary: string;
  description?: string;
  /** Who may call it (src/auth/routes.ts holds the same; test/admin/openapi.test.ts checks they agree). */
  role: "viewer" | "operator";
  query?: z.ZodObject;
  path?: z.ZodObject;
  /** The request body: the route reads and checks it itself (size, encoding and depth as the door does). */
  body?: z.ZodType;
  /** The success answer. */
  ok: { status: 200 | 202; schema: z.ZodType };
  /** The errors of this route, besides those of every route (SHARED_ERRORS). */
  errors?: ErrorCode[];
}

/** Errors any route may answer: from the sign-in (docs/admin-api.md's head), and a bug. */
export const SHARED_ERRORS = [
  "client_unknown",
  "unauthorized",
  "access_denied",
  "too_many_attempts",
  "internal_error",
  "admin_disabled",
  "misconfigured",
  "access_unavailable",
] as const satisfies ErrorCode[];
/** Errors any change may answer besides: a viewer asked, or its activity row could not be written. */
export const CHANGE_ERRORS = ["forbidden", "activity_unavailable"] as const satisfies ErrorCode[];

/** Errors any route that reads a body may answer besides: it is read as the door reads the sender's. */
export const BODY_ERRORS = [
  "invalid_encoding",
  "invalid_json",
  "nesting_too_deep",
  "body_too_large",
] as const satisfies ErrorCode[];
const RULES_READ_ERRORS: ErrorCode[] = ["rules_unavailable", "stored_rules_invalid"];
const ok = <S extends z.ZodType>(schema: S, status: 200 | 202 = 200) => ({ status, schema });

export const API = {
  "GET /admin/rules": {
    tag: "Rules",
    summary: "The stored rules document.",
    role: "viewer",
    ok: ok(rulesDocumentSchema),
    errors: ["rules_not_found"],
  },
  "PUT /admin/rules": {
    tag: "Rules",
    summary: "Validates a rules document ([rules](rules.md#validation)), keeps it in the history and stores it.",
    description: "Other isolates follow within `RULES_CACHE_SECONDS`.",
    role: "operator",
    body: rulesDocumentSchema,
    ok: ok(rulesAnswerSchema),
    errors: [...BODY_ERRORS, "rules_invalid"],
  },
  "POST /admin/rules/validate": {
    tag: "Rules",
    summary: "The same checks; nothing is stored.",
    role: "viewer",
    body: rulesDocumentSchema,
    ok: ok(rulesAnswerSchema),
    errors: [...BODY_ERRORS, "rules_invalid"],
  },
  "GET /admin/rules/versions": {
    tag: "Rules",
    summary: "The rules history, newest first: every document stored, numbered from 1.",
    role: "viewer",
    query: QUERIES.versions,
    ok: ok(versionsPageSchema),
    errors: ["invalid_query"],
  },
  "GET /admin/rules/versions/:version": {
    tag: "Rules",
    summary: "One version, with its document.",
    role: "viewer",
    path: PATHS.version,
    ok: ok(rulesVersionDocumentSchema),
    errors: ["invalid_query", "rules_version_not_found"],
  },
  "POST /admin/rules/versions/:version/restore": {
    tag: "Rules",
    summary: "Stores that version's document again, as a new version checked like a save.",
    role: "operator",
    path: PATHS.version,
    ok: ok(rulesAnswerSchema),
    errors: ["invalid_query", "rules_version_not_found", "rules_invalid"],
  },
  "POST /admin/route": {
    tag: "Rules",
    summary: "The dry run: how a call would be routed and the deliveries it would make; nothing is enqueued.",
    role: "viewer",
    body: dryRunRequestSchema,
    ok: ok(dryRunSchema),
    errors: [...BODY_ERRORS, "invalid_envelope", "envelope_too_large", "rules_invalid", ...RULES_READ_ERRORS],
  },
  "GET /admin/calls": {
    tag: "The ledger: calls and deliveries",
    summary: "Calls, newest first.",
    role: "viewer",
    query: QUERIES.calls,
    ok: ok(callPageSchema),
    errors: ["invalid_query"],
  },
  "GET /admin/calls/:id": {
    tag: "The ledger: calls and deliveries",
    summary: "One call: its notifications, deliveries and every attempt.",
    role: "viewer",
    ok: ok(callTraceSchema),
    errors: ["call_not_found"],
  },
  "GET /admin/deliveries": {
    tag: "The ledger: calls and deliveries",
    summary: "Deliveries, newest first, without their attempts.",
    role: "viewer",
    query: QUERIES.deliveries,
    ok: ok(deliveryPageSchema),
    errors: ["invalid_query"],
  },
  "GET /admin/deliveries/:id": {
    tag: "The ledger: calls and deliveries",
    summary: "One delivery, with its attempts and the body it sends.",
    role: "viewer",
    ok: ok(deliveryTraceSchema),
    errors: ["delivery_not_found"],
  },
  "POST /admin/deliveries/:id/replay": {
    tag: "The ledger: calls and deliveries",
    summary: "Sends a delivery again, whatever its status: same delivery id, a new run.",
    role: "operator",
    ok: ok(resendResultSchema, 202),
    errors: ["delivery_not_found", "delivery_not_replayable", "not_replayable", "queue_unavailable"],
  },
  "GET /admin/deliveries/count": {
    tag: "The ledger: calls and deliveries",
    summary: "How many deliveries match a filter: a bulk action's preview.",
    role: "viewer",
    query: QUERIES.count,
    ok: ok(countSchema),
    errors: ["invalid_query"],
  },
  "POST /admin/deliveries/replay": {
    tag: "The ledger: calls and deliveries",
    summary: "Replays every delivery matching a filter, in the background: a job of chunks of 100.",
    description: "Its progress: `GET /admin/jobs/{id}`. One activity row, `deliveries.bulk_replay`.",
    role: "operator",
    body: jobFilterSchema,
    ok: ok(jobSchema, 202),
    errors: [...BODY_ERRORS, "invalid_query", "queue_unavailable"],
  },
  "GET /admin/jobs": {
    tag: "The ledger: calls and deliveries",
    summary: "The latest bulk actions, newest first.",
    role: "viewer",
    query: QUERIES.jobs,
    ok: ok(jobsSchema),
    errors: ["invalid_query"],
  },
  "GET /admin/jobs/:id": {
    tag: "The ledger: calls and deliveries",
    summary: "One bulk action: what it does, how far it got.",
    role: "viewer",
    ok: ok(jobSchema),
    errors: ["job_not_found"],
  },
  "GET /admin/stats/hourly": {
    tag: "The ledger: calls and deliveries",
    summary: "Per destination and hour: attempts delivered, retried and dead, and their p95 latency.",
    role: "viewer",
    query: QUERIES.hourly,
    ok: ok(hourlySchema),
    errors: ["invalid_query"],
  },
  "GET /admin/stats": {
    tag: "The ledger: calls and deliveries",
    summary: "Per destination and Action, over the calls since `?since=` (default: 24 hours ago).",
    role: "viewer",
    query: QUERIES.stats,
    ok: ok(statsSchema),
    errors: ["invalid_query"],
  },
  "POST /admin/ledger/redrive": {
    tag: "The ledger: calls and deliveries",
    summary: "Writes ledger records waiting in R2 for D1, one bounded round.",
    role: "operator",
    ok: ok(redrivenSchema),
  },
  "GET /admin/dead-letters": {
    tag: "Dead letters",
    summary: "Dead letters, newest first (by when they died).",
    role: "viewer",
    query: QUERIES.deadLetters,
    ok: ok(deadLetterPageSchema),
    errors: ["invalid_query"],
  },
  "POST /admin/dead-letters/replay": {
    tag: "Dead letters",
    summary: "Replays dead letters, at most 100 per call, oldest first: call again while `more`.",
    description: "Those holding no message are never picked; 503 only when none could be enqueued.",
    role: "operator",
    query: QUERIES.bulkReplay,
    ok: ok(bulkReplaySchema, 202),
    errors: ["invalid_query", "queue_unavailable"],
  },
  "POST /admin/dead-letters/delete": {
    tag: "Dead letters",
    summary: "Deletes every dead letter matching a filter, in the background: a job of chunks of 100.",
    description: "`status` is `dead` whether given or not. One activity row, `dead_letters.bulk_delete`.",
    role: "operator",
    body: jobFilterSchema,
    ok: ok(jobSchema, 202),
    errors: [...BODY_ERRORS, "invalid_query", "queue_unavailable"],
  },
  "GET /admin/dead-letters/:id": {
    tag: "Dead letters",
    summary: "A dead letter's whole record, with its delivery message.",
    role: "viewer",
    ok: ok(deadLetterRecordSchema),
    errors: ["dead_letter_not_found", "dead_letter_unreadable"],
  },
  "POST /admin/dead-letters/:id/replay": {
    tag: "Dead letters",
    summary: "Sends a dead letter again: same delivery id, a new run.",
    role: "operator",
    ok: ok(resendResultSchema, 202),
    errors: ["dead_letter_not_found", "not_replayable", "dead_letter_unreadable", "queue_unavailable"],
  },
  "DELETE /admin/dead-letters/:id": {
    tag: "Dead letters",
    summary: "Drops a dead letter and its attempts, readable or not.",
    role: "operator",
    ok: ok(deletedSchema),
    errors: ["dead_letter_not_found"],
  },
  "GET /admin/destinations": {
    tag: "Destinations",
    summary: "Every destination of the rules, with its gate's state.",
    role: "viewer",
    ok: ok(destinationListSchema),
    errors: RULES_READ_ERRORS,
  },
  "GET /admin/destinations/:name": {
    tag: "Destinations",
    summary: "One destination.",
    role: "viewer",
    ok: ok(destinationStateSchema),
    errors: ["destination_not_found", ...RULES_READ_ERRORS],
  },
  "POST /admin/destinations/:name/pause": {
    tag: "Destinations",
    summary: "Pauses a destination by hand: its deliveries are held, in order, until it is resumed.",
    role: "operator",
    ok: ok(destinationStateSchema),
    errors: ["destination_not_found", "gate_unavailable", ...RULES_READ_ERRORS],
  },
  "POST /admin/destinations/:name/resume": {
    tag: "Destinations",
    summary: "Resumes a destination: what it holds goes out in order.",
    role: "operator",
    ok: ok(destinationStateSchema),
    errors: ["destination_not_found", "gate_unavailable", ...RULES_READ_ERRORS],
  },
  "POST /admin/destinations/:name/probe": {
    tag: "Destinations",
    summary: "Sends the probe of a destination its circuit breaker paused now, not at the end of its cool-down.",
    role: "operator",
    ok: ok(destinationStateSchema),
    errors: ["destination_not_found", "gate_unavailable", "not_paused_by_circuit", ...RULES_READ_ERRORS],
  },
  "GET /admin/alerts": {
    tag: "Destinations",
    summary: "The alerts sent (or that a channel refused), newest first: what, to whom, when.",
    role: "viewer",
    query: QUERIES.alerts,
    ok: ok(alertsSchema),
    errors: ["invalid_query"],
  },
  "GET /admin/whoami": {
    tag: "Operators",
    summary: "The caller's actor.",
    role: "viewer",
    ok: ok(actorSchema),
  },
  "GET /admin/activity": {
    tag: "Operators",
    summary: "The activity log, newest first.",
    role: "viewer",
    query: QUERIES.activity,
    ok: ok(activityPageSchema),
    errors: ["invalid_query"],
  },
  "GET /admin/activity/:id": {
    tag: "Operators",
    summary: "One row of the activity log.",
    role: "viewer",
    ok: ok(activityRowSchema),
    errors: ["not_found"],
  },
  "GET /admin/sessions": {
    tag: "Operators",
    summary: "The console's live sessions.",
    role: "viewer",
    ok: ok(sessionsSchema),
  },
  "POST /admin/sessions/end-all": {
    tag: "Operators",
    summary: "Ends every console session at once.",
    role: "operator",
    ok: ok(endedSchema),
  },
  "GET /admin/openapi.json": {
    tag: "Operators",
    summary: "This API's OpenAPI 3.1 document.",
    role: "viewer",
    ok: ok(openApiSchema),
  },
} as const satisfies Record<string, Operation>;

export type ApiKey = keyof typeof API;
export const API_KEYS = Object.keys(API) as ApiKey[];

/** Every error `key` may answer, by HTTP status (its own, then those of every route or change). */
export function errorsOf(key: ApiKey): Map<number, ErrorCode[]> {
  const operation: Operation = API[key];
  const codes = [
    ...(operation.errors ?? []),
    ...SHARED_ERRORS,
    ...(operation.role === "operator" ? CHANGE_ERRORS : []),
  ];
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return new Map([...byStatus].sort(([a], [b]) => a - b));
}

/** The route of the API that answers `method` on `path` (a path as requested, `/admin/…`, no query). */
export function routeOf(method: string, path: string): ApiKey | undefined {
  const segments = path.split("/");
  const matches = API_KEYS.filter((key) => {
    const [m, pattern] = key.split(" ") as [string, string];
    const parts = pattern.split("/");
    return (
      m === method.toUpperCase() &&
      parts.length === segments.length &&
      parts.every((part, i) => part === segments[i] || (part.startsWith(":") && segments[i] !== ""))
    );
  });
  // A route without parameters wins (POST /admin/dead-letters/replay is no dead letter's id).
  return matches.sort((a, b) => a.split(":").length - b.split(":").length)[0];
}

/**
 * The schema an answer of `key` with HTTP `status` must match: its success schema, or the error envelope with
 * one of the codes it declares for that status. Undefined for a status the route does not declare.
 */
export function answerSchema(key: ApiKey, status: number): z.ZodType | undefined {
  const operation: Operation = API[key];
  if (status === operation.ok.status) return operation.ok.schema;
  const codes = errorsOf(key).get(status);
  if (codes === undefined) return undefined;
  return errorSchema.extend({ error: z.enum(codes as [ErrorCode, ...ErrorCode[]]) });
}

/**
 * What is wrong with an answer (`status`, JSON `body`) to `method` on `path` (`/admin/…`), or undefined when the
 * document describes it: a route of the table, a status it declares, and a body its schema for that status accepts
 * (an error's code one the route declares for it). The e2e suite checks every answer it gets with this.
 */
export function answerProblem(method: string, path: string, status: number, body: unknown): string | undefined {
  const what = `${method.toUpperCase()} ${path} answered ${status}`;
  const key = routeOf(method, path);
  if (key === undefined) return `${what}, but no route of the admin API's document (src/admin/api.ts) matches`;
  const schema = answerSchema(key, status);
  if (schema === undefined) return `${what}, a status that ${key} does not describe (src/admin/api.ts)`;
  const checked = schema.safeParse(body);
  if (checked.success) return undefined;
  return `${what} with a body that does not match ${key}'s schema for ${status} (src/admin/api.ts):\n${z.prettifyError(checked.error)}`;
}
