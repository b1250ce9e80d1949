import * as z from "zod";
import { RelayError } from "./errors.ts";
import { LOG_LEVELS, type LogLevel, log, setLogLevel } from "./log.ts";

/**
 * The relay's vars (wrangler.toml `[vars]`): the one description of each, its default and its range. The
 * settings type, the defaults, the errors and docs/operations.md's table of vars all come from VARS (the
 * table is checked by test/scripts/docs.test.ts). An absent or empty var means its default.
 */

const DAY = 86_400;
const MiB = 1_048_576;

/** About 10 s, 30 s, 2 m, 5 m, 15 m, 30 m, 1 h, 2 h, 4 h, 8 h, 12 h, then 24 h (docs/delivery.md). */
export const DEFAULT_RETRY_SCHEDULE: readonly number[] = [
  10,
  30,
  120,
  300,
  900,
  1800,
  3600,
  7200,
  14_400,
  28_800,
  43_200,
  DAY,
];

interface VarMeta {
  description: string;
  /** The default as docs/operations.md writes it. */
  default: string;
}

function integerVar(
  fallback: number,
  min: number,
  max: number,
  description: string,
  { zeroIsOff = false }: { zeroIsOff?: boolean } = {},
) {
  const range = `a whole number from ${min} to ${max}`;
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === "") return fallback;
      const text = raw.trim();
      const value = Number(text);
      const inRange = value >= min && value <= max;
      if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || !(inRange || (zeroIsOff && value === 0))) {
        ctx.addIssue({ code: "custom", message: `must be ${zeroIsOff ? `0 (off) or ${range}` : range}, got "${raw}"` });
        return z.NEVER;
      }
      return value;
    })
    .meta({ description, default: String(fallback) } satisfies VarMeta);
}

const VARS = {
  MAX_BODY_BYTES: integerVar(
    10 * MiB,
    1024,
    100 * MiB,
    "Largest sender body in bytes (1024 … 100 MiB); bigger → 413 `body_too_large`, also for chunked bodies. Extend Commerce sends a few KB; notifications too large for a queue message are kept in R2.",
  ),
  MAX_HELD_PER_DESTINATION: integerVar(
    100_000,
    100,
    10_000_000,
    "Most deliveries a destination's gate holds back (100 … 10,000,000): at 80 % it alerts `destination_held_near_cap`; past it a delivery becomes a dead letter `held_limit` instead of being held.",
  ),
  RULES_CACHE_SECONDS: integerVar(
    30,
    0,
    3600,
    "How long an isolate keeps the compiled rules (0 … 3600 s); a change is live everywhere within this plus KV's propagation.",
  ),
  LEDGER_RETENTION_DAYS: integerVar(
    14,
    1,
    90,
    "How long the ledger keeps calls, deliveries and attempts (1 … 90 days); a Cron Trigger removes older ones.",
  ),
  DEAD_LETTER_TTL_SECONDS: integerVar(14 * DAY, 60, 365 * DAY, "How long dead letters are kept (60 s … 365 days)."),
  RETRY_SCHEDULE: z
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
      return delays as readonly number[];
    })
    .meta({
      description:
        "Seconds to wait after each failed attempt, comma-separated, each 0 … 86400 (the last repeats). Empty: 10, 30, 120, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400.",
      default: "",
    } satisfies VarMeta),
  ALERT_COOLDOWN_MINUTES: integerVar(
    60,
    1,
    1440,
    "At most one `deliveries_dead` alert per destination in this many minutes (1 … 1440); the next one counts what came since.",
  ),
  SENDER_SILENCE_MINUTES: integerVar(
    0,
    10,
    10_080,
    "Alert `sender_silent` when Extend Commerce has sent no call for this many minutes (10 … 10080, checked every 10 min); 0 or empty: off.",
    { zeroIsOff: true },
  ),
  PUBLIC_URL: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === "") return undefined;
      const text = raw.trim().replace(/\/+$/, "");
      if (!URL.canParse(text) || !/^https?:$/.test(new URL(text).protocol) || new URL(text).search !== "") {
        ctx.addIssue({
          code: "custom",
          message: `must be the relay's public http(s) URL without a query, got "${raw}"`,
        });
        return z.NEVER;
      }
      return text;
    })
    .meta({
      description:
        "The relay's public URL (such as `https://relay.example.com`); alerts then link to the console. Empty: alerts carry no link.",
      default: "",
    } satisfies VarMeta),
  ALERT_EMAIL_FROM: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw.trim() === "") return undefined;
      const parsed = z.email().safeParse(raw.trim());
      if (!parsed.success) {
        ctx.addIssue({ code: "custom", message: `must be an email address, got "${raw}"` });
        return z.NEVER;
      }
      return parsed.data;
    })
    .meta({
      description:
        "The sender of alert emails, on a domain onboarded to Cloudflare Email Service. Empty: no alert is emailed.",
      default: "",
    } satisfies VarMeta),
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
    })
    .meta({
      description:
        "`info`: every event; `warn`: only refusals, retries and dead letters; `error`: only the relay's own failures.",
      default: "info",
    } satisfies VarMeta),
};

export type VarName = keyof typeof VARS;
export const VAR_NAMES = Object.keys(VARS) as VarName[];

/** Each var with its default and description, for docs/operations.md. */
export function varDocs(): { name: VarName; default: string; description: string }[] {
  return VAR_NAMES.map((name) => ({ name, ...(VARS[name].meta() as unknown as VarMeta) }));
}

export type Settings = { [K in VarName]: z.output<(typeof VARS)[K]> } & {
  /** Current secret first, then the previous one during a rotation; empty when none is set. */
  webhookSecrets: readonly string[];
};

/**
 * Every var parsed on its own: the settings with each bad var replaced by its default, and the problems
 * (empty when all are good). The door refuses to run on defaults (settingsOf); the queue consumers do, so
 * that one bad var cannot stall deliveries (docs/operations.md, “A bad deploy”).
 */
export function parseSettings(env: Record<string, unknown>): { settings: Settings; problems: string[] } {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const name of VAR_NAMES) {
    const raw = env[name];
    const parsed = VARS[name].safeParse(typeof raw === "string" || raw === undefined ? raw : String(raw));
    if (parsed.success) values[name] = parsed.data;
    else {
      problems.push(`${name} ${parsed.error.issues[0]?.message ?? "is invalid"}`);
      values[name] = VARS[name].parse(undefined);
    }
  }
  const webhookSecrets = [env.EXTEND_WEBHOOK_SECRET, env.EXTEND_WEBHOOK_SECRET_PREVIOUS].filter(
    (secret): secret is string => typeof secret === "string" && secret !== "",
  );
  return { settings: { ...(values as { [K in VarName]: z.output<(typeof VARS)[K]> }), webhookSecrets }, problems };
}

const parsed = new WeakMap<object, { settings: Settings; problems: string[] }>();

function parsedOnce(env: object): { settings: Settings; problems: string[] } {
  let result = parsed.get(env);
  if (result === undefined) {
    result = parseSettings(env as Record<string, unknown>);
    parsed.set(env, result);
    setLogLevel(result.settings.LOG_LEVEL);
    if (result.problems.length > 0) log("error", "settings_invalid", { problems: result.problems });
  }
  return result;
}

/**
 * The settings for the door and the admin API, parsed once per `env` object. A bad var is logged once,
 * loudly, and every request gets 503 `misconfigured` naming it: never a silent default.
 */
export function settingsOf(env: object): Settings {
  const { settings, problems } = parsedOnce(env);
  if (problems.length > 0) {
    throw new RelayError("misconfigured", `The relay is misconfigured: ${problems.join("; ")}.`, { problems });
  }
  return settings;
}

/**
 * The settings for the queue consumers: a bad var falls back to its default (logged at error as
 * `settings_invalid` when first seen), so deliveries and dead letters keep moving during a bad deploy.
 */
export function consumerSettings(env: object): Settings {
  return parsedOnce(env).settings;
}
