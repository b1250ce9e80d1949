import { consumeAlerts } from "./alerts/consumer.ts";
import { checkSenderSilence } from "./alerts/silence.ts";
import { createApp } from "./app.ts";
import { consumeDeadLetters } from "./dead-letters/consumer.ts";
import { consumeDeliveries } from "./delivery/consumer.ts";
import type { Env } from "./env.ts";
import { describe } from "./errors.ts";
import { pruneActivity } from "./ledger/activity.ts";
import { pruneAlertsSent } from "./ledger/alerts.ts";
import { consumeLedger } from "./ledger/consumer.ts";
import { pruneLedger } from "./ledger/retention.ts";
import { pruneSessions } from "./ledger/sessions.ts";
import { redrive } from "./ledger/waiting.ts";
import { log } from "./log.ts";
import { consumeJobs } from "./ops/jobs.ts";
import { QUEUES } from "./queues/names.ts";
import { parseSettings, type Settings } from "./settings.ts";

export { ClientLimiter } from "./auth/limiter.ts";
export { DestinationGate } from "./gate/gate.ts";

const app = createApp();

export default {
  fetch: app.fetch,
  /** Each queue by its exact name (src/queues/names.ts); a queue this Worker does not know is an error, not a guess. */
  async queue(batch, env) {
    switch (batch.queue) {
      case QUEUES.deliveries:
        return consumeDeliveries(batch, env);
      case QUEUES.deadLetters:
        return consumeDeadLetters(batch, env, "deadLetters");
      case QUEUES.deadLettersFailed:
        return consumeDeadLetters(batch, env, "backstop");
      case QUEUES.ledger:
        return consumeLedger(batch, env, "ledger");
      case QUEUES.ledgerFailed:
        return consumeLedger(batch, env, "failed");
      case QUEUES.alerts:
        return consumeAlerts(batch, env);
      case QUEUES.jobs:
        return consumeJobs(batch, env);
      default:
        throw new Error(
          `extend-relay has no consumer for queue "${batch.queue}" (src/queues/names.ts lists the queues).`,
        );
    }
  },
  /**
   * The Cron Trigger: ledger records waiting for D1 written, the sender_silent check, then ledger retention. A bad retention var skips retention
   * (keeping too much is safe, too little is not).
   */
  async scheduled(_controller, env) {
    const { settings, problems } = parseSettings(env);
    try {
      await redrive(env.LEDGER, env.PAYLOADS);
    } catch (error) {
      log("error", "ledger_redrive_failed", { error: describe(error) });
    }
    try {
      await checkSenderSilence(env, settings.SENDER_SILENCE_MINUTES);
    } catch (error) {
      log("error", "sender_silence_check_failed", { error: describe(error) });
    }
    try {
      await pruneOperators(
        env.LEDGER,
        settings,
        Date.now(),
        !problems.some((p) => p.startsWith("ACTIVITY_RETENTION_DAYS")),
      );
    } catch (error) {
      log("error", "activity_retention_failed", { error: describe(error) });
    }
    const bad = problems.filter(
      (p) => p.startsWith("LEDGER_RETENTION_DAYS") || p.startsWith("DEAD_LETTER_TTL_SECONDS"),
    );
    if (bad.length > 0) {
      log("error", "retention_skipped", { problems: bad });
      return;
    }
    try {
      const pruned = await pruneLedger(env.LEDGER, env.PAYLOADS, {
        retentionDays: settings.LEDGER_RETENTION_DAYS,
        deadLetterTtlSeconds: settings.DEAD_LETTER_TTL_SECONDS,
        now: Date.now(),
      });
      if (pruned.deliveries + pruned.calls + pruned.objects > 0) log("info", "retention", { ...pruned });
    } catch (error) {
      log("error", "retention_failed", { error: describe(error) });
    }
  },
} satisfies ExportedHandler<Env>;

/**
 * The operators' side of retention (docs/console.md): ended console sessions go, and activity rows older than
 * ACTIVITY_RETENTION_DAYS (skipped, like ledger retention, while that var is bad: keeping is safe).
 */
async function pruneOperators(db: D1Database, settings: Settings, now: number, activity: boolean): Promise<void> {
  const sessions = await pruneSessions(db, now, settings.CONSOLE_IDLE_MINUTES * 60_000);
  const before = now - settings.ACTIVITY_RETENTION_DAYS * 86_400_000;
  const rows = activity ? (await pruneActivity(db, before)) + (await pruneAlertsSent(db, before)) : 0;
  if (sessions + rows > 0) log("info", "retention_operators", { sessions, activity: rows });
}
