import * as z from "zod";

/** What alerts are about (docs/alerts.md). */
export const ALERT_TYPES = [
  "destination_failing",
  "destination_paused",
  "destination_recovered",
  "deliveries_dead",
  "destination_held_near_cap",
  "sender_silent",
] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

/** Where an alert goes: the destination's techContact, its alertWebhook, and the relay's ALERT_WEBHOOK. */
export const ALERT_CHANNELS = ["email", "destinationWebhook", "webhook"] as const;
export type AlertChannel = (typeof ALERT_CHANNELS)[number];

/** One alert: what happened, to which destination, since when, how often, and how the last attempt ended. */
export const alertSchema = z.object({
  /** Stable for the episode and type: a channel that gets the same alert twice can tell. */
  id: z.string(),
  type: z.enum(ALERT_TYPES),
  destination: z.string().optional(),
  /** Failed attempts in a row, dead letters, or minutes of silence: what `type` counts. */
  count: z.int(),
  firstAt: z.number(),
  lastAt: z.number(),
  lastStatus: z.int().optional(),
  lastError: z.string().optional(),
  /** destination_paused: `circuit` or `hand`; deliveries_dead: the last dead letter's reason. */
  reason: z.string().optional(),
  /** destination_paused by the circuit: when the probe goes out. */
  probeAt: z.number().optional(),
  /** Deliveries held when the alert was raised. */
  held: z.int().optional(),
  /** destination_paused by the failure ratio: the recent attempts, `count` of which failed. */
  attempts: z.int().optional(),
  /** destination_paused by hand: who paused it, and the activity log's row (docs/console.md). */
  actor: z.string().optional(),
  activity: z.int().optional(),
});
export type Alert = z.infer<typeof alertSchema>;

/** An alert on the alerts queue, with the channels still to reach (all when absent) and the tries so far. */
export const alertMessageSchema = z.object({
  kind: z.literal("alert"),
  alert: alertSchema,
  channels: z.array(z.enum(ALERT_CHANNELS)).optional(),
  tries: z.int().min(0).default(0),
});
export type AlertMessage = z.input<typeof alertMessageSchema>;
