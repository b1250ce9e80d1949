import * as z from "zod";
import { RelayError } from "../errors.ts";
import { issuesOf } from "../issues.ts";
import { parseJsonBody } from "../json.ts";

/**
 * The sender's envelope (docs/delivery.md). Unknown fields are kept at every level: the schema only checks,
 * and the parsers below hand on the parsed value itself, never a copy, so nothing the sender wrote is lost.
 */
export const MAX_NOTIFICATIONS = 1000;

const jsonObject = z.custom<Record<string, unknown>>(
  (value) => typeof value === "object" && value !== null && !Array.isArray(value),
  { error: "must be an object" },
);

export const notificationSchema = z.looseObject({
  Action: z.string({ error: "must be a string naming the event" }).min(1, "must not be empty"),
  Details: jsonObject,
});

export const envelopeSchema = z.looseObject({
  // Ids become part of delivery ids, headers and storage keys, so they are held to visible ASCII.
  Id: z
    .string({ error: "must be a string" })
    .regex(/^[\x21-\x7E]{1,200}$/, "must be 1 to 200 visible ASCII characters (Extend sends 32 hex digits)"),
  Attempt: z.unknown().optional(),
  Properties: z.unknown().optional(),
  Notifications: z
    .array(notificationSchema, { error: "must be an array of notifications" })
    .max(MAX_NOTIFICATIONS, `must hold at most ${MAX_NOTIFICATIONS} notifications`),
});

export type Notification = z.infer<typeof notificationSchema>;
export type Envelope = z.infer<typeof envelopeSchema>;

/** The envelope in a request body, or a 400 naming what is wrong with it. */
export function parseEnvelope(body: BufferSource): Envelope {
  return envelopeOf(parseJsonBody(body));
}

/** The envelope in an already parsed JSON value (the dry run's), or a 400 naming what is wrong with it. */
export function envelopeOf(value: unknown): Envelope {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RelayError("invalid_envelope", "The body must be a JSON object (an Extend Commerce envelope).", {
      issues: [
        { path: "(root)", message: `expected an object, got ${Array.isArray(value) ? "an array" : typeof value}` },
      ],
    });
  }
  const result = envelopeSchema.safeParse(value);
  if (!result.success) {
    const issues = issuesOf(result.error);
    throw new RelayError(
      "invalid_envelope",
      `The body is not an Extend Commerce envelope: ${issues.map((i) => `${i.path} ${i.message}`).join("; ")}.`,
      { issues },
    );
  }
  return value as Envelope;
}

/** The warehouse a notification concerns: `Details.Warehouse`, or `Details.Order.Warehouse` (PickingStarted). */
export function warehouseOf(notification: Notification): string | undefined {
  const details = notification.Details;
  const direct = details.Warehouse;
  if (typeof direct === "string") return direct;
  const order = details.Order;
  if (typeof order === "object" && order !== null) {
    const nested = (order as Record<string, unknown>).Warehouse;
    if (typeof nested === "string") return nested;
  }
  return undefined;
}
