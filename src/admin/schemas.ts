import * as z from "zod";
import { ROLES } from "../auth/actor.ts";
import { ERRORS, type ErrorCode } from "../errors.ts";
import { envelopeSchema } from "../extend/envelope.ts";
import { ACTIONS, OUTCOMES } from "../ledger/activity-names.ts";
import { deliveryViewSchema, isoTime, pageSchema } from "../ledger/views.ts";
import { deadLetterSchema } from "../queues/dead-letter.ts";
import { rulesSchema } from "../rules/schema.ts";

/**
 * The admin API's answers and request bodies as Zod schemas (besides the ledger's, in src/ledger/views.ts): the
 * types the routes answer with are inferred from them, its OpenAPI document (src/admin/api.ts) is generated from
 * them, and the e2e suite checks every answer against them. Each has an `id`, its name in the document. Free of
 * Workers types, so that scripts and tests on Node can import them.
 */

const CODES = Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]];

export const errorSchema = z
  .looseObject({
    error: z.enum(CODES),
    message: z.string(),
  })
  .meta({ id: "Error", description: "A [code](operations.md#error-codes), a sentence, and details such as `issues`." });

export const issueSchema = z
  .strictObject({ path: z.string().describe("Such as `routes[2].to[0]`."), message: z.string() })
  .meta({ id: "Issue" });

// Rules

export const rulesDocumentSchema = rulesSchema.meta({
  id: "RulesDocument",
  description: "A [rules document](rules.md); `rules.schema.json` is its JSON Schema.",
});

export const rulesAnswerSchema = z
  .strictObject({
    status: z.enum(["stored", "valid"]),
    warnings: z.array(issueSchema).describe("Such as a secret the Worker lacks."),
    version: z.int().optional(),
    before: z.int().nullable().optional().describe("Stored: the version in force before."),
  })
  .meta({ id: "RulesAnswer" });
export type RulesAnswer = z.infer<typeof rulesAnswerSchema>;

const rulesVersionShape = {
  version: z.int(),
  savedAt: isoTime(),
  actor: z.string(),
  role: z.enum([...ROLES, "none"]),
  via: z.enum(["console", "api", "kv"]).describe("`kv`: found in KV, written around the relay."),
  restoredFrom: z.int().optional().describe("A restore: the version it brought back."),
  hash: z.string().describe("The first 12 hex digits of the text's SHA-256."),
};

export const rulesVersionSchema = z
  .strictObject({ ...rulesVersionShape, inForce: z.boolean() })
  .meta({ id: "RulesVersion" });
export const versionsPageSchema = pageSchema(rulesVersionSchema, "RulesVersionPage");
export type VersionsPage = z.infer<typeof versionsPageSchema>;

export const rulesVersionDocumentSchema = z
  .strictObject({ ...rulesVersionShape, document: z.unknown() })
  .meta({ id: "RulesVersionDocument" });
export type RulesVersionDocument = z.infer<typeof rulesVersionDocumentSchema>;

const envelope = envelopeSchema.meta({
  id: "Envelope",
  description: "A call as Extend Commerce sends it, such as a file of `fixtures/extend/`.",
});

export const dryRunRequestSchema = z
  .union([envelope, z.looseObject({ envelope, rules: z.unknown().optional() })])
  .meta({
    id: "DryRunRequest",
    description: "Give `rules` to try them before storing them.",
  });

export const routeVerdictSchema = z
  .strictObject({
    route: z.string(),
    matched: z.boolean(),
    reason: z.string().optional().describe("`disabled`, `action`, `warehouse`, `where` or `destinations_disabled`."),
    condition: z.string().optional().describe("With `where`: the condition that failed."),
    detail: z.string().optional(),
  })
  .meta({ id: "RouteVerdict" });

export const dryRunSchema = z
  .strictObject({
    id: z.string(),
    notifications: z.array(
      z.strictObject({
        index: z.int(),
        action: z.string(),
        warehouse: z.string().nullable(),
        routes: z.array(z.string()).describe("The routes that matched it, as the trace names them."),
        destinations: z.array(z.string()),
        notMatched: z.array(routeVerdictSchema),
        keptInR2: z.literal(true).optional(),
      }),
    ),
    deliveries: z
      .array(
        z.strictObject({
          deliveryId: z.string(),
          destination: z.string(),
          routes: z.array(z.string()),
          notifications: z.int(),
          bytes: z.int(),
          coalesced: z
            .strictObject({
              key: z.tuple([z.string(), z.string(), z.string().nullable()]),
              windowSeconds: z.number(),
            })
            .optional(),
          keys: z.array(z.string()).optional(),
          transformed: z
            .union([z.strictObject({ output: z.unknown() }), z.strictObject({ error: z.string() })])
            .optional(),
        }),
      )
      .describe("The queue messages the door would send."),
    batches: z.int().describe("The `sendBatch` calls they would take."),
  })
  .meta({ id: "DryRun", description: "[An example](rules.md#dry-run-why-did-or-didnt-a-notification-go-somewhere)." });
export type DryRun = z.infer<typeof dryRunSchema>;

// Deliveries and dead letters

export const deliveryTraceSchema = deliveryViewSchema
  .extend({
    body: z.unknown().optional().describe("What the receiver gets at attempt 1, once attempted."),
    bodyUnavailable: z.string().optional().describe("Why `body` cannot be read now."),
  })
  .meta({ id: "DeliveryTrace" });
export type DeliveryTrace = z.infer<typeof deliveryTraceSchema>;

export const resendResultSchema = z
  .strictObject({
    replayed: z.array(z.string()),
    skipped: z.array(z.strictObject({ deliveryId: z.string(), reason: z.string() })),
  })
  .meta({ id: "Replayed" });
export type ResendResult = z.infer<typeof resendResultSchema>;

export const bulkReplaySchema = z
  .strictObject({
    ...resendResultSchema.shape,
    more: z.boolean(),
  })
  .meta({ id: "BulkReplay" });
export type BulkReplayAnswer = z.infer<typeof bulkReplaySchema>;

export const deadLetterRecordSchema = deadLetterSchema.meta({
  id: "DeadLetter",
  description: "`message` is what a replay sends; `raw` what a queue held that was not a delivery.",
});

export const deletedSchema = z.strictObject({ deleted: z.string() }).meta({ id: "Deleted" });

// Destinations

export const destinationStateSchema = z
  .strictObject({
    name: z.string(),
    enabled: z.boolean(),
    techContact: z.string().optional(),
    rateLimit: z.strictObject({ perSecond: z.int().optional(), perMinute: z.int().optional() }).optional(),
    concurrency: z.int().optional(),
    circuit: z.union([z.literal(false), z.strictObject({ failures: z.int(), cooldownSeconds: z.int() })]),
    state: z.enum(["active", "paused", "probing", "unknown"]).describe("`unknown`: its gate did not answer."),
    pausedBy: z.enum(["circuit", "hand"]).optional(),
    pausedAt: isoTime().optional(),
    probeAt: isoTime().optional().describe("When the circuit's probe goes."),
    cooldownSeconds: z.int().optional(),
    failures: z.int().describe("Failed attempts in a row."),
    failingSince: isoTime().optional(),
    held: z.int().describe("Deliveries held, to go in arrival order."),
    inFlight: z.int(),
    lastStatus: z.int().optional(),
    lastError: z.string().optional(),
    lastFailureAt: isoTime().optional(),
    lastSuccessAt: isoTime().optional(),
  })
  .meta({
    id: "Destination",
    description: "Its limits (from the rules) and its gate's state.",
  });
export type DestinationState = z.infer<typeof destinationStateSchema>;

export const destinationListSchema = z
  .strictObject({ destinations: z.array(destinationStateSchema) })
  .meta({ id: "DestinationList" });

export const redrivenSchema = z
  .strictObject({
    written: z.int(),
    waiting: z.int(),
    more: z.boolean().describe("Call again while true."),
    stopped: z.string().optional().describe("Why the round stopped early."),
  })
  .meta({ id: "Redriven" });

// Operators

export const actorSchema = z
  .strictObject({
    id: z.string().describe("An email (Access), a service token's name, `admin-token` or `viewer-token`."),
    role: z.enum(ROLES),
    via: z.enum(["console", "api"]),
  })
  .meta({ id: "Actor" });

export const activityRowSchema = z
  .strictObject({
    id: z.int(),
    at: isoTime(),
    actor: z.string(),
    role: z.enum([...ROLES, "none"]),
    via: z.enum(["console", "api"]),
    action: z.enum(ACTIONS),
    target: z.string().optional(),
    detail: z.record(z.string(), z.unknown()).optional(),
    ip: z.string().optional(),
    outcome: z.enum(OUTCOMES).describe("`failed`: the change failed after its row (`detail.row`)."),
  })
  .meta({ id: "ActivityRow" });
export type ActivityRowView = z.infer<typeof activityRowSchema>;

export const activityPageSchema = pageSchema(activityRowSchema, "ActivityPage");
export type ActivityPage = z.infer<typeof activityPageSchema>;

export const sessionsSchema = z
  .strictObject({
    sessions: z.array(
      z.strictObject({
        actor: z.string(),
        role: z.enum(ROLES),
        createdAt: z.number(),
        lastSeenAt: z.number(),
        expiresAt: z.number(),
      }),
    ),
  })
  .meta({ id: "Sessions", description: "Times in ms since 1970." });

export const endedSchema = z.strictObject({ ended: z.int() }).meta({ id: "Ended" });

export const openApiSchema = z
  .looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.record(z.string(), z.unknown()) })
  .meta({ id: "OpenAPI", description: "This document." });

// Pictures, alerts and bulk actions (the console's tools, in the API too)

export const hourFiguresSchema = z
  .strictObject({
    hour: isoTime().describe("The hour's start."),
    delivered: z.int(),
    retried: z.int(),
    dead: z.int(),
    p95Ms: z
      .int()
      .nullable()
      .describe("The bound of the latency bucket holding the hour's 95th percentile (ms); null without answers."),
  })
  .meta({ id: "HourFigures" });

export const hourlySchema = z
  .strictObject({
    range: z.enum(["24h", "7d"]),
    destinations: z
      .record(z.string(), z.array(hourFiguresSchema))
      .describe("Per destination, every hour, oldest first."),
  })
  .meta({ id: "Hourly" });
export type HourlyAnswer = z.infer<typeof hourlySchema>;

export const alertSentSchema = z
  .strictObject({
    id: z.int(),
    at: isoTime(),
    alert: z.string().describe("The alert's id: the same for each of its channels."),
    type: z.string(),
    destination: z.string().optional(),
    channel: z.enum(["email", "destinationWebhook", "webhook"]),
    recipient: z.string().describe("An email address, or the name of the webhook's setting (never its URL)."),
    outcome: z.enum(["sent", "failed"]),
    error: z.string().optional(),
    subject: z.string(),
    text: z.string(),
  })
  .meta({ id: "AlertSent" });

export const alertsSchema = z.strictObject({ items: z.array(alertSentSchema) }).meta({ id: "Alerts" });

export const jobFilterSchema = z
  .strictObject({
    destination: z.string().min(1).max(200).optional(),
    status: z.enum(["pending", "retrying", "held", "delivered", "superseded", "dead"]).optional(),
    since: isoTime().optional().describe("Calls accepted from (inclusive)."),
    until: isoTime().optional().describe("Calls accepted until (exclusive)."),
  })
  .meta({ id: "JobFilter", description: "Which deliveries: all four are optional, and each narrows." });

export const jobSchema = z
  .strictObject({
    id: z.int(),
    kind: z.enum(["replay", "delete"]),
    filter: z.strictObject({
      destination: z.string().optional(),
      status: z.string().optional(),
      since: z.number().optional(),
      until: z.number().optional(),
    }),
    total: z.int().describe("What matched when it started."),
    done: z.int(),
    skipped: z.int().describe("Not replayable, or gone meanwhile."),
    state: z.enum(["running", "done", "failed"]),
    error: z.string().optional(),
    actor: z.string(),
    activity: z.int().optional().describe("Its row in the activity log."),
    createdAt: isoTime(),
    updatedAt: isoTime(),
  })
  .meta({ id: "Job" });

export const jobsSchema = z.strictObject({ items: z.array(jobSchema) }).meta({ id: "Jobs" });

export const countSchema = z.strictObject({ count: z.int() }).meta({ id: "Count" });
