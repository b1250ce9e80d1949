import * as z from "zod";
import { RelayError } from "../errors.ts";
import { issuesOf } from "../issues.ts";
import { notUtf8, type Outline, outlineOf, type ParsedJson, parseJsonBody, parseJsonText } from "../json.ts";
import { claimMark } from "../queues/claim.ts";

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

/**
 * A sender's call: the envelope as parsed (for checking and routing), and its text with the outline of where
 * each top-level member and each notification is, so that deliveries carry the sender's own text.
 */
export interface Call {
  envelope: Envelope;
  text: string;
  outline: Outline;
}

/** The call in a request body, or a 400 naming what is wrong with it. */
export function parseCall(body: BufferSource): Call {
  return callOf(parseJsonBody(body, NOTIFICATIONS));
}

/** The call in a body already decoded (undefined: it was not UTF-8), or a 400 naming what is wrong with it. */
export function parseCallText(text: string | undefined): Call {
  if (text === undefined) throw notUtf8();
  return callOf(parseJsonText(text, NOTIFICATIONS));
}

/** The member whose elements parseJsonBody must locate for callOf. */
export const NOTIFICATIONS = "Notifications";

/** The call in JSON parsed with the outline of its Notifications, or a 400 naming what is wrong with it. */
export function callOf({ value, text, outline }: ParsedJson): Call {
  const envelope = envelopeOf(value);
  if (outline.elements.length !== envelope.Notifications.length) {
    // Only text that JSON.parse reads differently from the outline could get here; it is not the sender's JSON.
    throw new RelayError("invalid_json", "The body's Notifications could not be located in its text.");
  }
  return { envelope, text, outline };
}

/**
 * A call as the ledger keeps its text (src/ledger/), for rebuilding its deliveries: parsed and checked when it is
 * JSON; only outlined when a notification kept in R2 stands in it as its mark (src/queues/claim.ts), since the
 * outline is all bodyAround needs. Throws when it is not the text of an envelope.
 */
export function storedCall(text: string): Pick<Call, "text" | "outline"> {
  if (!text.includes("\u0000")) return parseCall(new TextEncoder().encode(text));
  const outline = outlineOf(text, NOTIFICATIONS);
  if (outline === "too deep" || outline.members.length === 0) throw new Error("the stored text is not an envelope");
  return { text, outline };
}

/**
 * The call with each notification at `claimed` (ascending) replaced in its text by the mark of its claim, in that
 * order (src/queues/claim.ts): what its messages and its record carry when those notifications are kept in R2.
 */
export function markedCall(call: Call, claimed: readonly number[]): Call {
  if (claimed.length === 0) return call;
  let text = "";
  let from = 0;
  claimed.forEach((index, k) => {
    const [start, end] = call.outline.elements[index]!;
    text += call.text.slice(from, start) + claimMark(k);
    from = end;
  });
  text += call.text.slice(from);
  const outline = outlineOf(text, NOTIFICATIONS);
  if (outline === "too deep") throw new Error("a marked call cannot nest deeper than its call");
  return { envelope: call.envelope, text, outline };
}

/** The text of notification `index` as the sender wrote it. */
export function notificationText(call: Pick<Call, "text" | "outline">, index: number): string {
  const [start, end] = call.outline.elements[index]!;
  return call.text.slice(start, end);
}

/**
 * The body a destination receives for the notifications at `indices`, as the text before and after the
 * `Attempt` value: the sender's members in the sender's order and words, `Attempt` set by the relay at each
 * attempt, and `Notifications` holding only those notifications (docs/delivery.md, “What a receiver gets”).
 * Members the sender wrote twice keep only their last `Attempt` and `Notifications`, which are what a JSON
 * reader takes; every other member is passed on as written.
 */
export function bodyAround(
  call: Pick<Call, "text" | "outline">,
  indices: readonly number[],
): { head: string; tail: string } {
  const members = call.outline.members;
  const last = (key: string) => members.findLastIndex((m) => m.key === key);
  const attempt = last("Attempt");
  const notifications = last("Notifications");
  const parts: string[] = [];
  let attemptPart = -1;
  members.forEach((member, i) => {
    if (member.key === "Attempt" && i !== attempt) return;
    if (member.key === "Notifications" && i !== notifications) return;
    if (i === notifications) {
      if (attempt < 0) attemptPart = parts.push("") - 1;
      parts.push(`"Notifications":[${indices.map((index) => notificationText(call, index)).join(",")}]`);
    } else if (i === attempt) attemptPart = parts.push("") - 1;
    else parts.push(call.text.slice(member.start, member.end));
  });
  return {
    head: `{${[...parts.slice(0, attemptPart), ""].join(",")}"Attempt":`,
    tail: `${["", ...parts.slice(attemptPart + 1)].join(",")}}`,
  };
}

/** The envelope in an already parsed JSON value, or a 400 naming what is wrong with it. */
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

/** Where a notification's business key may be, in order; the first that is a string or a number wins. */
const KEY_PATHS: readonly (readonly string[])[] = [
  ["OrderNumber"],
  ["ProductNumber"],
  ["CustomerNumber"],
  ["InvoiceNumber"],
  ["OfferNumber"],
  ["PriceListName"],
  ["Order", "OrderNumber"],
];

/**
 * The business key of a notification: the order, product, customer, invoice or offer number, or the price
 * list's name (`Details.Order.OrderNumber` for PickingStarted), as a string; undefined when it has none.
 * "Where did order 3339977 go?" is a search for this key (docs/ledger.md).
 */
export function keyOf(notification: Notification): string | undefined {
  for (const path of KEY_PATHS) {
    let value: unknown = notification.Details;
    for (const key of path) {
      value =
        typeof value === "object" && value !== null && Object.hasOwn(value, key)
          ? (value as Record<string, unknown>)[key]
          : undefined;
    }
    if (typeof value === "string" && value !== "") return value.slice(0, 200);
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
  }
  return undefined;
}
