import * as z from "zod";
import { RelayError } from "./errors.ts";
import { LOG_LEVELS, type LogLevel, log, setLogLevel } from "./log.ts";
import { HOST_PATTERN, type HostPolicy } from "./rules/hosts.ts";

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
        ctx.addIssue({ code: "custom", message: `must be ${zeroIsOff ? `0 (off) or ${range}` : range}` });
        return z.NEVER;
      }
      return value;
    })
    .meta({ description, default: String(fallback) } satisfies VarMeta);
}

/** A var that is empty (undefined) or passes `read`, which returns the value or undefined when it is bad. */
function textVar<T>(description: string, must: string, read: (text: string) => T | undefined, fallback = "") {
  return z
    .string()
    .optional()
    .transform((raw, ctx): T | undefined => {
      if (raw === undefined || raw.trim() === "") return undefined;
      const value = read(raw.trim());
      if (value === undefined) {
        ctx.addIssue({ code: "custom", message: must });
        return z.NEVER;
      }
      return value;
    })
    .meta({ description, default: fallback } satisfies VarMeta);
}

const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const isHost = (value: unknown): value is string => typeof value === "string" && HOST_PATTERN.test(value);
const isLoopback = (host: string) => host === "127.0.0.1" || host === "localhost" || host === "[::1]";

/** SECRET_HOSTS: `{"WMS_SECRET": "wms.example.com", "SHOP_SECRET": ["shop.example.com", "*.shop.example.com"]}`. */
function readSecretHosts(text: string): ReadonlyMap<string, readonly string[]> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const map = new Map<string, readonly string[]>();
  for (const [name, hosts] of Object.entries(value)) {
    const list = (Array.isArray(hosts) ? hosts : [hosts]).map((h) => (typeof h === "string" ? h.toLowerCase() : h));
    if (!SECRET_NAME.test(name) || list.length === 0 || !list.every(isHost)) return undefined;
    map.set(name, list);
  }
  return map;
}

/** ACCESS_TEAM_DOMAIN: `https://<team>.cloudflareaccess.com`, or http on a loopback host (tests serve their own keys). */
function readTeamDomain(text: string): string | undefined {
  const origin = text.replace(/\/+$/, "");
  if (!URL.canParse(origin)) return undefined;
  const url = new URL(origin);
  if (url.origin !== origin) return undefined;
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopback(url.hostname)) ? origin : undefined;
}

const OPERATOR_PATTERN = /^(?:\*|[^\s@*,]+)@[^\s@*,]+\.[^\s@*,]+$/;

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
          message: `must be comma-separated whole seconds from 0 to ${DAY} (Queues' longest delay)`,
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
          message: "must be the relay's public http(s) URL without a query",
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
        ctx.addIssue({ code: "custom", message: "must be an email address" });
        return z.NEVER;
      }
      return parsed.data;
    })
    .meta({
      description:
        "The sender of alert emails, on a domain onboarded to Cloudflare Email Service. Empty: no alert is emailed.",
      default: "",
    } satisfies VarMeta),
  SECRET_HOSTS: textVar(
    'Where each destination secret may be sent: a JSON object of secret names and a host or a list of hosts (`*.` for subdomains), such as `{"WMS_SECRET": "wms.example.com"}`. A secret it does not list is sent nowhere: rules naming it are refused (422) and its deliveries dead-letter (`host_not_allowed`).',
    'must be a JSON object of secret names and the host (or list of hosts) each may be sent to, such as {"WMS_SECRET": "wms.example.com"}',
    readSecretHosts,
  ),
  DESTINATION_HOSTS: textVar(
    "The only hosts destinations and alert webhooks may have, comma-separated (`*.` for subdomains); rules naming another are refused (422). Empty: any host.",
    "must be comma-separated host names such as wms.example.com or *.example.com",
    (text) => {
      const hosts = text.split(",").map((h) => h.trim().toLowerCase());
      return hosts.every(isHost) ? (hosts as readonly string[]) : undefined;
    },
  ),
  ACCESS_TEAM_DOMAIN: textVar(
    "Cloudflare Access: the team domain, `https://<team>.cloudflareaccess.com` (http only on a loopback host). With `ACCESS_AUD`, the console and the admin API accept Access assertions (docs/console.md, “Cloudflare Access”).",
    "must be the Access team domain as https://<team>.cloudflareaccess.com, without a path (http only on a loopback host)",
    readTeamDomain,
  ),
  ACCESS_AUD: textVar(
    "Cloudflare Access: the Application Audience (AUD) tag of the relay's Access application. Set both or neither of the two `ACCESS_` vars.",
    "must be the Access application's AUD tag (letters, digits, . _ -)",
    (text) => (/^[A-Za-z0-9._-]{1,200}$/.test(text) ? text : undefined),
  ),
  OPERATORS: textVar(
    "Under Access: who is an operator, as comma-separated emails (`*@example.com` for a whole domain). Everyone else Access admits is a viewer.",
    "must be comma-separated emails, or *@domain for a whole domain",
    (text) => {
      const patterns = text.split(",").map((p) => p.trim().toLowerCase());
      return patterns.every((p) => OPERATOR_PATTERN.test(p)) ? (patterns as readonly string[]) : undefined;
    },
  ),
  CONSOLE_TOKEN_SIGN_IN: textVar(
    "`on` keeps the console's token sign-in form when Access is configured (off then by default; the admin API's bearers stay on). Without Access the form is always there.",
    "must be on, off or empty",
    (text) => (text === "on" ? true : text === "off" ? false : undefined),
  ),
  CONSOLE_SESSION_HOURS: integerVar(8, 1, 24, "A console session's absolute lifetime, in hours (1 … 24)."),
  CONSOLE_IDLE_MINUTES: integerVar(
    30,
    5,
    480,
    "A console session ends after this many minutes without a request (5 … 480).",
  ),
  ACTIVITY_RETENTION_DAYS: integerVar(
    400,
    30,
    3650,
    "How long the activity log keeps its rows (30 … 3650 days); the Cron Trigger removes older ones.",
  ),
  DEV_CLOCK: textVar(
    "Tests only: `on` lets a request to a loopback host (`wrangler dev`) carry `X-Dev-Clock: <ms since 1970>` as the console's clock, to test session timeouts. Ignored for any other host; `npm run deploy` refuses it.",
    "must be on, off or empty",
    (text) => (text === "on" ? true : text === "off" ? false : undefined),
  ),
  LOG_LEVEL: z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const value = raw === undefined || raw.trim() === "" ? "info" : raw.trim();
      if (!(LOG_LEVELS as readonly string[]).includes(value)) {
        ctx.addIssue({ code: "custom", message: `must be one of ${LOG_LEVELS.join(", ")}` });
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
 * that one bad var cannot stall deliveries (docs/operations.md, “A bad deploy”). `problems` name each bad
 * var and what it must be, for answers anyone may read; `logged` also quote the value, for the log only.
 */
export function parseSettings(env: Record<string, unknown>): {
  settings: Settings;
  problems: string[];
  logged: string[];
} {
  const problems: string[] = [];
  const logged: string[] = [];
  const values: Record<string, unknown> = {};
  for (const name of VAR_NAMES) {
    const raw = env[name];
    const text = typeof raw === "string" || raw === undefined ? raw : String(raw);
    const parsed = VARS[name].safeParse(text);
    if (parsed.success) values[name] = parsed.data;
    else {
      const problem = `${name} ${parsed.error.issues[0]?.message ?? "is invalid"}`;
      problems.push(problem);
      logged.push(`${problem}, got ${JSON.stringify(text)}`);
      values[name] = VARS[name].parse(undefined);
    }
  }
  const accessBad = problems.some((p) => p.startsWith("ACCESS_"));
  if (!accessBad && (values.ACCESS_TEAM_DOMAIN === undefined) !== (values.ACCESS_AUD === undefined)) {
    const [set, unset] =
      values.ACCESS_AUD === undefined ? ["ACCESS_TEAM_DOMAIN", "ACCESS_AUD"] : ["ACCESS_AUD", "ACCESS_TEAM_DOMAIN"];
    const problem = `${unset} must be set when ${set} is (Cloudflare Access needs both)`;
    problems.push(problem);
    logged.push(problem);
  }
  if (accessBad || (values.ACCESS_TEAM_DOMAIN === undefined) !== (values.ACCESS_AUD === undefined)) {
    values.ACCESS_TEAM_DOMAIN = undefined;
    values.ACCESS_AUD = undefined;
  }
  const webhookSecrets = [env.EXTEND_WEBHOOK_SECRET, env.EXTEND_WEBHOOK_SECRET_PREVIOUS].filter(
    (secret): secret is string => typeof secret === "string" && secret !== "",
  );
  return {
    settings: { ...(values as { [K in VarName]: z.output<(typeof VARS)[K]> }), webhookSecrets },
    problems,
    logged,
  };
}

type Parsed = ReturnType<typeof parseSettings>;
const parsed = new WeakMap<object, Parsed>();

function parsedOnce(env: object): Parsed {
  let result = parsed.get(env);
  if (result === undefined) {
    result = parseSettings(env as Record<string, unknown>);
    parsed.set(env, result);
    setLogLevel(result.settings.LOG_LEVEL);
    if (result.logged.length > 0) log("error", "settings_invalid", { problems: result.logged });
  }
  return result;
}

/**
 * The settings for the door and the admin API, parsed once per `env` object. A bad var is logged once,
 * loudly (with its value), and every request gets 503 `misconfigured` naming it (never its value, which may be
 * an internal address or worse): never a silent default.
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

/** Where the rules may send (src/rules/hosts.ts), from SECRET_HOSTS and DESTINATION_HOSTS. */
export function hostPolicy(settings: Settings): HostPolicy {
  return { secretHosts: settings.SECRET_HOSTS ?? new Map(), destinationHosts: settings.DESTINATION_HOSTS };
}

/** Cloudflare Access, when both of its vars are set. */
export function accessOf(settings: Settings): { teamDomain: string; audience: string } | undefined {
  return settings.ACCESS_TEAM_DOMAIN === undefined || settings.ACCESS_AUD === undefined
    ? undefined
    : { teamDomain: settings.ACCESS_TEAM_DOMAIN, audience: settings.ACCESS_AUD };
}
