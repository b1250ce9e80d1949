import * as z from "zod";
import { RelayError } from "../errors.ts";
import { issuesOf } from "../issues.ts";

/**
 * The sender's envelope. Unknown fields are kept at every level (`looseObject`; `Details` is never
 * narrowed) so they reach downstream systems unchanged.
 */
export const MAX_NOTIFICATIONS = 1000;
/** Extend's payloads nest about five levels; anything past this is refused before parsing. */
export const MAX_DEPTH = 64;

const jsonObject = z.custom<Record<string, unknown>>(
  (value) => typeof value === "object" && value !== null && !Array.isArray(value),
  { error: "must be an object" },
);

export const notificationSchema = z.looseObject({
  Action: z.string({ error: "must be a string naming the event" }).min(1, "must not be empty"),
  Details: jsonObject,
});

export const envelopeSchema = z.looseObject({
  // Ids become part of delivery ids, headers and KV keys, so they are held to visible ASCII.
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

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** The envelope in `body`, or a 400 naming what is wrong with it. */
export function parseEnvelope(body: BufferSource): Envelope {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new RelayError(400, "invalid_encoding", "The body is not valid UTF-8.");
  }
  if (exceedsDepth(text, MAX_DEPTH)) {
    throw new RelayError(400, "nesting_too_deep", `The body nests objects or arrays more than ${MAX_DEPTH} levels deep.`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new RelayError(400, "invalid_json", `The body is not JSON: ${(error as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new RelayError(400, "invalid_envelope", "The body must be a JSON object (an Extend Commerce envelope).", {
      issues: [{ path: "(root)", message: `expected an object, got ${Array.isArray(value) ? "an array" : typeof value}` }],
    });
  }
  const result = envelopeSchema.safeParse(value);
  if (!result.success) {
    const issues = issuesOf(result.error);
    throw new RelayError(
      400,
      "invalid_envelope",
      `The body is not an Extend Commerce envelope: ${issues.map((i) => `${i.path} ${i.message}`).join("; ")}.`,
      { issues },
    );
  }
  return result.data;
}

/** True when brackets outside strings nest deeper than `limit` (one pass, stops early). */
function exceedsDepth(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (inString) {
      if (code === 92) i++; // backslash: skip the escaped character
      else if (code === 34) inString = false;
    } else if (code === 34) inString = true;
    else if (code === 123 || code === 91) {
      if (++depth > limit) return true;
    } else if (code === 125 || code === 93) depth--;
  }
  return false;
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
