import type { Alert } from "../queues/alert.ts";
import { DEAD_LETTER_REASONS, type DeadLetterReason } from "../queues/dead-letter.ts";

/**
 * What each alert says (docs/alerts.md shows them, generated from here): what failed, since when, how many,
 * the last status and error, and what to do. One text serves Slack / Teams (`text`), the email body and the
 * log; `subject` is the email's subject.
 */

export interface AlertText {
  subject: string;
  text: string;
}

/** `consoleUrl`: the console page to open, when PUBLIC_URL is set. */
export function alertText(alert: Alert, consoleUrl: string | undefined): AlertText {
  const d = alert.destination ?? "";
  const last = lastTry(alert);
  const link = consoleUrl === undefined ? "" : `\nOpen: ${consoleUrl}`;
  switch (alert.type) {
    case "destination_failing":
      return {
        subject: `extend-relay: deliveries to ${d} are failing`,
        text:
          `Deliveries to ${d} are failing: ${alert.count} attempts in a row since ${time(alert.firstAt)}, ${last}.\n` +
          `Nothing is lost: each delivery is retried with backoff${alert.reason === "no_circuit" ? "" : `, and if the failures go on the relay pauses ${d} and holds its deliveries in order`}.\n` +
          `What to do: check that ${d}'s receiver is up and answers 2xx; the last error says how it fails.${link}`,
      };
    case "destination_paused":
      if (alert.reason === "hand") {
        return {
          subject: `extend-relay: ${d} was paused by hand${alert.actor === undefined ? "" : ` by ${alert.actor}`}`,
          text:
            `${d} was paused by hand${alert.actor === undefined ? "" : ` by ${alert.actor}`} at ${time(alert.firstAt)}${alert.activity === undefined ? "" : ` (activity #${alert.activity})`}. Its deliveries are held in arrival order and none is attempted` +
            `${held(alert)}.\n` +
            `What to do: resume it when its receiver is ready (console: Destinations, or POST /admin/destinations/${d}/resume); the held deliveries then go out in order.${link}`,
        };
      }
      return {
        subject: `extend-relay: ${d} is paused after ${alert.count} failed ${plural(alert.count, "attempt", "attempts")}`,
        text:
          (alert.reason === "failure_ratio"
            ? `${d} is paused: ${alert.count} of its last ${alert.attempts ?? alert.count} attempts failed since ${time(alert.firstAt)} (it keeps failing between successes), ${last}.\n`
            : `${d} is paused: ${alert.count} ${plural(alert.count, "attempt", "attempts")} in a row failed since ${time(alert.firstAt)}, ${last}.\n`) +
          `Its deliveries are held in arrival order and none is attempted${held(alert)}. ` +
          `One probe delivery goes out at ${time(alert.probeAt ?? alert.lastAt)}; if it succeeds, ${d} resumes and the held deliveries go out in order, else the pause doubles (up to an hour).\n` +
          `What to do: fix the receiver; to resume at once, use the console (Destinations) or POST /admin/destinations/${d}/resume.${link}`,
      };
    case "destination_recovered":
      return {
        subject: `extend-relay: ${d} has recovered`,
        text:
          `${d} has recovered: a delivery succeeded at ${time(alert.lastAt)}` +
          `${alert.count > 0 ? ` after ${alert.count} failed ${plural(alert.count, "attempt", "attempts")} in a row` : ""} (trouble since ${time(alert.firstAt)}, ${duration(alert.lastAt - alert.firstAt)}).\n` +
          `${alert.held ? `${alert.held} held ${plural(alert.held, "delivery is", "deliveries are")} going out in arrival order.` : "Deliveries go out as usual."} Nothing was lost.${link}`,
      };
    case "deliveries_dead":
      return {
        subject: `extend-relay: ${alert.count} ${plural(alert.count, "delivery", "deliveries")} to ${d} became dead letters`,
        text:
          `${alert.count} ${plural(alert.count, "delivery", "deliveries")} to ${d} became dead letters between ${time(alert.firstAt)} and ${time(alert.lastAt)}` +
          `; the last: ${[alert.reason ?? "unknown reason", ...answer(alert)].join(", ")}.\n` +
          `${reasonText(alert.reason)}They are kept in the ledger and can be replayed. What to do: fix the cause, then replay them (console: Dead letters, or POST /admin/dead-letters/replay?destination=${d}).${link}`,
      };
    case "destination_held_near_cap":
      return {
        subject: `extend-relay: ${d} holds ${alert.count} deliveries, near its cap`,
        text:
          `${d}'s gate holds ${alert.count} deliveries back (since ${time(alert.firstAt)}), near its cap of ${alert.reason ?? "MAX_HELD_PER_DESTINATION"}. ` +
          `Past the cap, new deliveries to ${d} become dead letters (held_limit) instead of waiting; they can be replayed.\n` +
          `What to do: resume ${d} if it is paused, or fix what keeps it from taking deliveries (console: Destinations); raise MAX_HELD_PER_DESTINATION if it is simply slow.${link}`,
      };
    case "sender_silent":
      return {
        subject: `extend-relay: no call from Extend Commerce for ${alert.count} minutes`,
        text:
          `Extend Commerce has sent no call for ${alert.count} minutes (the last arrived at ${time(alert.firstAt)}).\n` +
          `What to do: check the webhook in Extend Commerce (its Callback URL must be this relay's /webhook) and whether Extend is running; calls it gave up on are not resent by it.${link}`,
      };
  }
}

/** How the last attempt ended: its HTTP status, its error. */
function answer(alert: Alert): string[] {
  return [
    ...(alert.lastStatus !== undefined ? [`HTTP ${alert.lastStatus}`] : []),
    ...(alert.lastError !== undefined ? [alert.lastError] : []),
  ];
}

function lastTry(alert: Alert): string {
  const parts = answer(alert);
  return parts.length === 0 ? "the last without an answer" : `the last: ${parts.join(", ")}`;
}

/** What a dead-letter reason means (docs/operations.md's table), as a sentence of the alert. */
function reasonText(reason: string | undefined): string {
  return reason !== undefined && Object.hasOwn(DEAD_LETTER_REASONS, reason)
    ? `${DEAD_LETTER_REASONS[reason as DeadLetterReason].replaceAll("`", "")} `
    : "";
}

const held = (alert: Alert) => (alert.held ? ` (${alert.held} held so far)` : "");

const plural = (n: number, one: string, many: string) => (n === 1 ? one : many);

/** A time as the alert shows it: UTC, to the second. */
export function time(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function duration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return "under a minute";
  if (minutes < 120) return `${minutes} min`;
  return `${Math.round(minutes / 60)} h`;
}
