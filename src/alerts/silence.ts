import type { Env } from "../env.ts";
import { SENDER_SILENT_KEY } from "../kv-keys.ts";
import { lastCallAt } from "../ledger/calls.ts";
import { log } from "../log.ts";
import { sendAlert } from "../queues/send.ts";

/**
 * sender_silent (docs/alerts.md), from the Cron Trigger: when the newest call in the ledger is older than
 * SENDER_SILENCE_MINUTES, one alert for that silence (remembered in KV by the time of that call). An empty
 * ledger is not a silence: there is nothing to compare with.
 */
export async function checkSenderSilence(env: Env, minutes: number, now = Date.now()): Promise<boolean> {
  if (minutes === 0) return false;
  const last = await lastCallAt(env.LEDGER);
  if (last === null || now - last < minutes * 60_000) return false;
  const episode = await env.RULES.get<{ lastCallAt: number }>(SENDER_SILENT_KEY, "json");
  if (episode?.lastCallAt === last) return false;
  const silentFor = Math.floor((now - last) / 60_000);
  await sendAlert(env.ALERTS, {
    kind: "alert",
    alert: { id: `sender_silent:${last}`, type: "sender_silent", count: silentFor, firstAt: last, lastAt: now },
    tries: 0,
  });
  await env.RULES.put(SENDER_SILENT_KEY, JSON.stringify({ lastCallAt: last, alertedAt: now }));
  log("warn", "alert_raised", { type: "sender_silent", minutes: silentFor });
  return true;
}
