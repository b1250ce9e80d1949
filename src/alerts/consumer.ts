import { activityLink, alertLink } from "../console/links.ts";
import type { Env } from "../env.ts";
import { describe } from "../errors.ts";
import { insertAlertsSent } from "../ledger/alerts.ts";
import { log } from "../log.ts";
import { ALERT_CHANNELS, type Alert, type AlertChannel, alertMessageSchema } from "../queues/alert.ts";
import { decodeMessage } from "../queues/codec.ts";
import { sendAlert } from "../queues/send.ts";
import { currentDestinations, destinationOf } from "../rules/destinations.ts";
import { sendProblem } from "../rules/hosts.ts";
import { type Destination, urlProblem } from "../rules/schema.ts";
import { secretValue } from "../secrets.ts";
import { consumerSettings, hostPolicy, type Settings } from "../settings.ts";
import { alertText } from "./text.ts";

/** An alert a channel keeps refusing is tried this often (30 s doubling, at most 1 h apart: about 5 h) and then given up. */
export const ALERT_TRIES = 12;
const WEBHOOK_TIMEOUT_MS = 10_000;

/**
 * The alerts queue's consumer (docs/alerts.md): each alert goes to the destination's `techContact` by email
 * (Cloudflare Email Service, binding ALERTS_EMAIL, sender ALERT_EMAIL_FROM), to its `alertWebhook` and to the
 * relay's ALERT_WEBHOOK. A channel that fails is tried again on its own later (logged); the others are not
 * sent twice. Nothing here touches a delivery.
 */
export async function consumeAlerts(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const settings = consumerSettings(env);
  let destinations: Record<string, Destination> | undefined;
  try {
    destinations = await currentDestinations(env, settings);
  } catch {
    destinations = undefined;
  }
  await Promise.all(batch.messages.map((message) => deliverAlert(message, env, settings, destinations)));
}

type Sent = "sent" | "skipped" | { failed: string; retry: boolean };

async function deliverAlert(
  message: Message<unknown>,
  env: Env,
  settings: Settings,
  destinations: Record<string, Destination> | undefined,
): Promise<void> {
  const parsed = alertMessageSchema.safeParse(decodeMessage(message.body));
  if (!parsed.success) {
    log("error", "alert_unreadable", { messageId: message.id });
    message.ack();
    return;
  }
  const { alert, tries } = parsed.data;
  const channels = parsed.data.channels ?? [...ALERT_CHANNELS];
  const destination =
    alert.destination === undefined || destinations === undefined
      ? undefined
      : destinationOf(destinations, alert.destination);
  const text = alertText(alert, alertLink(alert, settings.PUBLIC_URL));
  const results = await Promise.all(
    channels.map(async (channel) => {
      let result: Sent;
      try {
        result = await sendTo(channel, alert, text, env, settings, destination, destinations === undefined);
      } catch (error) {
        result = { failed: describe(error), retry: true };
      }
      return [channel, result] as const;
    }),
  );
  const failed = results.filter(([, r]) => typeof r === "object" && r.retry).map(([c]) => c);
  for (const [channel, result] of results) {
    if (typeof result === "object") {
      log(result.retry ? "warn" : "error", "alert_send_failed", {
        type: alert.type,
        destination: alert.destination,
        channel,
        tries: tries + 1,
        error: result.failed,
      });
    }
  }
  const sent = results.filter(([, r]) => r === "sent").map(([c]) => c);
  if (sent.length > 0) log("info", "alert_sent", { type: alert.type, destination: alert.destination, channels: sent });
  await logAlert(env, alert, text, results, destination);
  if (failed.length === 0) {
    message.ack();
    return;
  }
  if (tries + 1 >= ALERT_TRIES) {
    log("error", "alert_given_up", {
      type: alert.type,
      destination: alert.destination,
      channels: failed,
      tries: tries + 1,
    });
    message.ack();
    return;
  }
  const delaySeconds = Math.min(3600, 30 * 2 ** tries);
  try {
    await sendAlert(env.ALERTS, { kind: "alert", alert, channels: failed, tries: tries + 1 }, delaySeconds);
    message.ack();
  } catch {
    message.retry({ delaySeconds });
  }
}

async function sendTo(
  channel: AlertChannel,
  alert: Alert,
  text: { subject: string; text: string },
  env: Env,
  settings: Settings,
  destination: Destination | undefined,
  rulesUnreadable: boolean,
): Promise<Sent> {
  if (channel === "webhook") {
    const url = secretValue(env, "ALERT_WEBHOOK");
    return url === undefined ? "skipped" : post(url, "ALERT_WEBHOOK", alert, text.text, settings);
  }
  // The destination's own channels need the rules: should they be unreadable, try again later.
  if (rulesUnreadable && alert.destination !== undefined) return { failed: "the rules could not be read", retry: true };
  if (channel === "email") {
    const to = destination?.techContact;
    if (to === undefined || env.ALERTS_EMAIL === undefined || settings.ALERT_EMAIL_FROM === undefined) return "skipped";
    await env.ALERTS_EMAIL.send({ from: settings.ALERT_EMAIL_FROM, to, subject: text.subject, text: text.text });
    return "sent";
  }
  const hook = destination?.alertWebhook;
  if (hook === undefined) return "skipped";
  const url = typeof hook === "string" ? hook : secretValue(env, hook.secret);
  if (url === undefined) return { failed: `secret ${(hook as { secret: string }).secret} is not set`, retry: false };
  // The rules name this webhook: it may go only where the relay's configuration allows (src/rules/hosts.ts).
  const refused = URL.canParse(url)
    ? sendProblem(hostPolicy(settings), new URL(url).hostname, typeof hook === "string" ? undefined : hook.secret)
    : undefined;
  if (refused !== undefined) return { failed: `alertWebhook not sent: ${refused}`, retry: false };
  return post(url, typeof hook === "string" ? "alertWebhook" : hook.secret, alert, text.text, settings);
}

/** Who a channel's alert goes to, as the alerts page shows it: an email address, or the name of a webhook's setting. */
function recipientOf(channel: AlertChannel, destination: Destination | undefined): string {
  if (channel === "webhook") return "ALERT_WEBHOOK";
  if (channel === "email") return destination?.techContact ?? "(no techContact)";
  const hook = destination?.alertWebhook;
  if (hook === undefined) return "(no alertWebhook)";
  return typeof hook === "string" ? `alertWebhook (${URL.canParse(hook) ? new URL(hook).host : "?"})` : hook.secret;
}

/** The alerts log (src/ledger/alerts.ts): what went to whom; best effort, an alert is never held up by it. */
async function logAlert(
  env: Env,
  alert: Alert,
  text: { subject: string; text: string },
  results: readonly (readonly [AlertChannel, Sent])[],
  destination: Destination | undefined,
): Promise<void> {
  const rows = results.flatMap(([channel, result]) =>
    result === "skipped"
      ? []
      : [
          {
            alert: alert.id,
            type: alert.type,
            ...(alert.destination !== undefined && { destination: alert.destination }),
            channel,
            recipient: recipientOf(channel, destination),
            outcome: result === "sent" ? ("sent" as const) : ("failed" as const),
            ...(typeof result === "object" && { error: result.failed }),
            subject: text.subject,
            text: text.text,
          },
        ],
  );
  try {
    await insertAlertsSent(env.LEDGER, rows, Date.now());
  } catch (error) {
    log("warn", "alert_log_failed", { type: alert.type, destination: alert.destination, error: describe(error) });
  }
}

/** Posts the alert as JSON with `text` first (Slack, Teams), then its fields. `name` names the URL, never shows it. */
async function post(url: string, name: string, alert: Alert, text: string, settings: Settings): Promise<Sent> {
  const problem = urlProblem(url);
  if (problem !== undefined) return { failed: `${name} ${problem}`, retry: false };
  const link = alertLink(alert, settings.PUBLIC_URL);
  const body = {
    text,
    type: alert.type,
    ...(alert.destination !== undefined && { destination: alert.destination }),
    count: alert.count,
    ...(alert.lastStatus !== undefined && { lastStatus: alert.lastStatus }),
    ...(alert.lastError !== undefined && { lastError: alert.lastError }),
    firstAt: new Date(alert.firstAt).toISOString(),
    lastAt: new Date(alert.lastAt).toISOString(),
    ...(link !== undefined && { consoleUrl: link }),
    ...(alert.actor !== undefined && { actor: alert.actor }),
    ...(activityLink(alert, settings.PUBLIC_URL) !== undefined && {
      activityUrl: activityLink(alert, settings.PUBLIC_URL),
    }),
    ...(alert.reason !== undefined && { reason: alert.reason }),
    ...(alert.probeAt !== undefined && { probeAt: new Date(alert.probeAt).toISOString() }),
    ...(alert.held !== undefined && { held: alert.held }),
    id: alert.id,
  };
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "extend-relay-alerts" },
      body: JSON.stringify(body),
      redirect: "manual",
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    });
    await response.body?.cancel().catch(() => {});
    if (response.ok) return "sent";
    return { failed: `${name} answered HTTP ${response.status}`, retry: true };
  } catch (error) {
    // The runtime's message may quote the URL: only its kind is logged.
    const kind = error instanceof Error ? error.name : "error";
    return { failed: `${name} could not be reached (${kind})`, retry: true };
  }
}
