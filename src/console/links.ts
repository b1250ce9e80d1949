import type { Alert } from "../queues/alert.ts";

/** Addresses into the console that other parts of the relay hand out (alerts link to them). */

/** The anchor of a destination's card on /console/destinations. */
export const destinationAnchor = (name: string): string => `destination-${name}`;

/** A destination's own page: its state, actions, pictures and latest alerts. */
export const destinationPath = (name: string): string => `/console/destinations/${encodeURIComponent(name)}`;

/** The console page an alert points to, under the relay's public URL; none without PUBLIC_URL. */
export function alertLink(
  alert: Pick<Alert, "type" | "destination">,
  publicUrl: string | undefined,
): string | undefined {
  if (publicUrl === undefined) return undefined;
  const d = encodeURIComponent(alert.destination ?? "");
  if (alert.type === "sender_silent") return `${publicUrl}/console`;
  if (alert.type === "deliveries_dead") return `${publicUrl}/console/dead-letters?destination=${d}`;
  return `${publicUrl}${destinationPath(alert.destination ?? "")}`;
}

/** The activity log's row an alert names (who paused a destination by hand), under the public URL. */
export function activityLink(alert: Pick<Alert, "activity">, publicUrl: string | undefined): string | undefined {
  return publicUrl === undefined || alert.activity === undefined
    ? undefined
    : `${publicUrl}/console/activity/${alert.activity}`;
}
