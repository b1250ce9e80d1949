import * as z from "zod";
import type { DeliveryMessage } from "./delivery/message.ts";
import { RelayError } from "./errors.ts";
import { LOG_LEVELS, type LogLevel, log, setLogLevel } from "./log.ts";

/** The Worker's bindings (wrangler.toml) and secrets. Destination secrets are named by the rules. */
export interface Env {
  RULES: KVNamespace;
  STATE: KVNamespace;
  DELIVERIES: Queue<DeliveryMessage>;
  DEAD_LETTERS: Queue<unknown>;
  EXTEND_WEBHOOK_SECRET?: string;
  EXTEND_WEBHOOK_SECRET_PREVIOUS?: string;
  ADMIN_TOKEN?: string;
  MAX_BODY_BYTES?: string;
  RULES_CACHE_SECONDS?: string;
  DEDUP_TTL_SECONDS?: string;
  DEAD_LETTER_TTL_SECONDS?: string;
  RETRY_SCHEDULE?: string;
  LOG_LEVEL?: string;
}

const DAY = 86_400;

/** About 10 s, 30 s, 2 m, 5 m, 15 m, 30 m, 1 h, 2 h, 4 h, 8 h, 12 h, then 24 h (SPEC §4). */
export const DEFAULT_RETRY_SCHEDULE = [10, 30, 120, 300, 900, 1800, 3600, 7200, 14_400, 28_800, 43_200, DAY];

/**
 * An integer var: absent or empty means the default; anything else must be a whole number in range
 * (or 0, where 0 means "off").
 */
function integerVar(fallback: number, min: number, max: number, { zeroIsOff = false } = {}) {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === "") return fallback;
      const value = Number(raw.trim());
      const inRange = value >= min && value <= max;
      if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || !(inRange || (zeroIsOff && value === 0))) {
        const range = `a whole number from ${min} to ${max}`;
        ctx.addIssue({ code: "custom", message: `must be ${zeroIsOff ? `0 (off) or ${range}` : range}, got "${raw}"` });
        return z.NEVER;
      }
      return value;
    });
}

const retryScheduleVar = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw.trim() === "") return DEFAULT_RETRY_SCHEDULE;
    const parts = raw.split(",").map((part) => part.trim());
    const delays = parts.map(Number);
    if (parts.some((part, i) => !/^\d+$/.test(part) || delays[i]! > DAY)) {
      ctx.addIssue({
        code: "custom",
        message: `must be comma-separated whole seconds from 0 to ${DAY} (Queues' longest delay), got "${raw}"`,
      });
      return z.NEVER;
    }
    return delays;
  });

const varsSchema = z.object({
  // Workers accept request bodies up to 100 MB; Extend Commerce sends a few KB.
  MAX_BODY_BYTES: integerVar(1_048_576, 1024, 100 * 1_048_576),
  RULES_CACHE_SECONDS: integerVar(30, 0, 3600),
  // KV keeps a key at least 60 s; 0 keeps accepted Ids in isolate memory only (no STATE reads or writes).
  DEDUP_TTL_SECONDS: integerVar(DAY, 60, 30 * DAY, { zeroIsOff: true }),
  DEAD_LETTER_TTL_SECONDS: integerVar(14 * DAY, 60, 365 * DAY),
  RETRY_SCHEDULE: retryScheduleVar,
  // info: every event; warn: only refusals, retries and dead letters; error: only failures of the relay.
  LOG_LEVEL: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const value = raw === undefined || raw.trim() === "" ? "info" : raw.trim();
      if (!(LOG_LEVELS as readonly string[]).includes(value)) {
        ctx.addIssue({ code: "custom", message: `must be one of ${LOG_LEVELS.join(", ")}, got "${raw}"` });
        return z.NEVER;
      }
      return value as LogLevel;
    }),
});

export interface Settings {
  maxBodyBytes: number;
  rulesCacheSeconds: number;
  dedupTtlSeconds: number;
  deadLetterTtlSeconds: number;
  retrySchedule: readonly number[];
  logLevel: LogLevel;
  /** Current secret first, then the previous one during a rotation; empty when none is set. */
  webhookSecrets: readonly string[];
}

const parsed = new WeakMap<object, Settings | RelayError>();

/**
 * The settings, parsed and validated once per `env` object. A bad var is logged once, loudly, and every
 * request that needs settings gets 503 `misconfigured` naming it: never a silent default.
 */
export function settingsOf(env: Env): Settings {
  let result = parsed.get(env);
  if (result === undefined) {
    result = parseSettings(env);
    parsed.set(env, result);
    if (result instanceof RelayError) log("error", "settings_invalid", { problems: result.details.problems });
    else setLogLevel(result.logLevel);
  }
  if (result instanceof RelayError) throw result;
  return result;
}

export function parseSettings(env: Env): Settings | RelayError {
  const vars = varsSchema.safeParse({
    MAX_BODY_BYTES: env.MAX_BODY_BYTES,
    RULES_CACHE_SECONDS: env.RULES_CACHE_SECONDS,
    DEDUP_TTL_SECONDS: env.DEDUP_TTL_SECONDS,
    DEAD_LETTER_TTL_SECONDS: env.DEAD_LETTER_TTL_SECONDS,
    RETRY_SCHEDULE: env.RETRY_SCHEDULE,
    LOG_LEVEL: env.LOG_LEVEL,
  });
  if (!vars.success) {
    const problems = vars.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`);
    return new RelayError(503, "misconfigured", `The relay is misconfigured: ${problems.join("; ")}.`, { problems });
  }
  const v = vars.data;
  return {
    maxBodyBytes: v.MAX_BODY_BYTES,
    rulesCacheSeconds: v.RULES_CACHE_SECONDS,
    dedupTtlSeconds: v.DEDUP_TTL_SECONDS,
    deadLetterTtlSeconds: v.DEAD_LETTER_TTL_SECONDS,
    retrySchedule: v.RETRY_SCHEDULE,
    logLevel: v.LOG_LEVEL,
    webhookSecrets: [env.EXTEND_WEBHOOK_SECRET, env.EXTEND_WEBHOOK_SECRET_PREVIOUS].filter(
      (secret): secret is string => typeof secret === "string" && secret !== "",
    ),
  };
}

/** A secret the rules name (destination signing or header), or undefined when the environment lacks it. */
export function secretOf(env: Env, name: string): string | undefined {
  const value = (env as unknown as Record<string, unknown>)[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}
