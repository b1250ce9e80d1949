import * as z from "zod";
import { compileProblem, MAX_EXPRESSION_LENGTH } from "../delivery/transform.ts";
import { RelayError } from "../errors.ts";
import { KNOWN_ACTIONS } from "../extend/actions.ts";
import { type Issue, issuesOf } from "../issues.ts";
import { MAX_DEPTH, parseJsonBody } from "../json.ts";
import { isRelaySecret, RELAY_SECRETS, secretValue } from "../secrets.ts";
import { type HostPolicy, sendProblem, unboundProblem } from "./hosts.ts";

/**
 * The routing rules document (docs/rules.md): the one description of it. The KV loader, the admin API, the
 * rules CLI and `rules.schema.json` all use this schema.
 */

const secretName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, "must be the name of a Worker secret (letters, digits, _)")
  .refine(
    (name) => !isRelaySecret(name),
    `must not be one of the relay's own secrets (${RELAY_SECRETS.join(", ")}): rules may not send them anywhere`,
  );

/**
 * Keys that JavaScript objects treat specially. Zod drops a `__proto__` key from a record without a word
 * (so `where: {"__proto__": …}` would validate to `{}` and match everything), so validateRules refuses these
 * as keys anywhere in the document, and as segments of a `where` path, before the schema sees it.
 */
const SPECIAL_KEYS = new Set(["__proto__", "constructor", "prototype"]);
const secretRef = z.strictObject({ secret: secretName }).describe("The value is read from this Worker secret.");

/** Headers the relay sets itself; a destination may not override them. */
const RESERVED_HEADERS = new Set([
  "content-type",
  "content-length",
  "host",
  "user-agent",
  "ms-signature",
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
  "x-relay-delivery-id",
  "x-relay-attempt",
]);
const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be a valid HTTP header name")
  .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), "is set by the relay and cannot be overridden");
const headerValue = z.union([
  z.string().regex(/^[\t\x20-\x7E\x80-\xFF]*$/, "must not contain control characters or line breaks"),
  secretRef,
]);

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "127.0.0.1" || hostname === "[::1]";
}

const destinationUrl = z
  .string()
  .refine((value) => URL.canParse(value), "must be an absolute URL")
  .refine((value) => {
    if (!URL.canParse(value)) return true;
    const url = new URL(value);
    return url.protocol === "https:" || (url.protocol === "http:" && isLoopback(url.hostname));
  }, "must use https (http only for localhost / 127.0.0.1)")
  .refine((value) => !URL.canParse(value) || (new URL(value).username === "" && new URL(value).password === ""), {
    message: "must not hold credentials; use a header with a secret instead",
  })
  .meta({ format: "uri" });

/** A URL, or a Worker secret holding one (Slack, Teams and Zapier hooks carry their credential in the URL). */
const destinationUrlOrSecret = z.union([
  destinationUrl,
  secretRef.describe("The URL is read from this Worker secret and checked at each delivery."),
]);

const signing = z.discriminatedUnion("scheme", [
  z.strictObject({ scheme: z.literal("ms-signature"), secret: secretName }),
  z.strictObject({
    scheme: z.literal("standard-webhooks"),
    secret: secretName.describe("A Worker secret holding whsec_<base64>."),
  }),
  z.strictObject({ scheme: z.literal("none") }),
]);

export const DESTINATION_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Whether `value` is a URL a destination or an alert webhook may be sent to (the checks of `url`). */
export function urlProblem(value: string): string | undefined {
  const result = destinationUrl.safeParse(value);
  return result.success ? undefined : result.error.issues[0]?.message;
}

/**
 * At most this many requests a second or a minute, spread evenly (docs/flow-control.md). Exactly one of the
 * two; a limit over it holds deliveries back, it never drops one.
 */
const rateLimit = z
  .strictObject({
    perSecond: z.int().min(1).max(1000).optional(),
    perMinute: z.int().min(1).max(60_000).optional(),
  })
  .refine((limit) => (limit.perSecond === undefined) !== (limit.perMinute === undefined), {
    message: 'must have exactly one of "perSecond" (1 to 1000) or "perMinute" (1 to 60000)',
  });

/** The circuit breaker (docs/flow-control.md): on unless `false`. */
export const DEFAULT_CIRCUIT = { failures: 20, cooldownSeconds: 300 } as const;
const circuit = z.union([
  z.literal(false).describe("No circuit breaker: the destination is never paused by failures."),
  z.strictObject({
    failures: z.int().min(1).max(1000).default(DEFAULT_CIRCUIT.failures),
    cooldownSeconds: z.int().min(1).max(3600).default(DEFAULT_CIRCUIT.cooldownSeconds),
  }),
]);

const actionPattern = z
  .string()
  .min(1)
  .refine(
    (action) => action === "*" || !action.slice(0, -1).includes("*"),
    "may hold `*` only at the end (a prefix) or alone (any Action)",
  );

/**
 * Coalescing (docs/rules.md, "Shaping deliveries"): notifications of these Actions with the same Action, business
 * key and warehouse, bound for one destination within `windowSeconds` of the first, go out once: the latest.
 */
const coalesce = z
  .strictObject({
    windowSeconds: z.int().min(1).max(3600),
    actions: z.array(actionPattern).min(1, "must list at least one Action"),
  })
  .describe("Send only the latest of a burst of notifications about one thing (stock balances, say).");

/** A JSONata expression: compiled here, so that one that does not compile is refused with its position. */
const transform = z
  .string()
  .min(1)
  .max(MAX_EXPRESSION_LENGTH)
  .superRefine((expression, ctx) => {
    const problem = compileProblem(expression);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  })
  .describe(
    "A JSONata expression applied to each notification; its result is the JSON the receiver gets. Needs mode single.",
  );

const destination = z
  .strictObject({
    url: destinationUrlOrSecret,
    signing: signing.default({ scheme: "none" }),
    headers: z.record(headerName, headerValue).default({}),
    timeoutMs: z.int().min(1000).max(30_000).default(10_000),
    maxAttempts: z.int().min(1).max(100).default(12),
    mode: z.enum(["envelope", "single"]).default("envelope"),
    enabled: z.boolean().default(true),
    description: z.string().optional(),
    techContact: z
      .email("must be an email address, such as ops@example.com")
      .optional()
      .describe("Who hears of this destination's trouble, by email (docs/alerts.md)."),
    alertWebhook: destinationUrlOrSecret
      .optional()
      .describe("Where this destination's alerts are posted as well (Slack, Teams), besides ALERT_WEBHOOK."),
    rateLimit: rateLimit.optional(),
    concurrency: z.int().min(1).max(100).optional().describe("At most this many requests in flight at once."),
    circuit: circuit.default(DEFAULT_CIRCUIT),
    order: z
      .literal("key")
      .optional()
      .describe("Deliveries with the same business key go out one at a time, in the order the relay accepted them."),
    coalesce: coalesce.optional(),
    transform: transform.optional(),
  })
  .superRefine((d, ctx) => {
    if (d.transform !== undefined && d.mode !== "single") {
      ctx.addIssue({
        code: "custom",
        path: ["mode"],
        message: 'must be "single" with a transform: each request carries one notification, shaped by the expression',
      });
    }
  });

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const condition = z.union([
  scalar.describe("equals"),
  z.array(scalar).min(1).describe("one of"),
  z.strictObject({ prefix: z.string() }),
  z.strictObject({ exists: z.boolean() }),
  z.strictObject({ not: z.union([scalar, z.array(scalar).min(1)]) }),
]);

const route = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, "must be 1 to 100 letters, digits or . _ : -"),
  actions: z.array(actionPattern).min(1, "must list at least one Action"),
  warehouses: z.array(z.string().min(1)).min(1).optional(),
  where: z
    .record(z.string().regex(/^[^.]+(\.[^.]+)*$/, "must be a dot path such as Details.OrderType"), condition)
    .optional(),
  to: z.array(z.string()).min(1, "must name at least one destination"),
  enabled: z.boolean().default(true),
  description: z.string().optional(),
  coalesce: coalesce.optional(),
});

export const rulesSchema = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(1),
    destinations: z.record(
      z.string().regex(DESTINATION_ID, "destination ids are 1 to 64 letters, digits, _ or -"),
      destination,
    ),
    routes: z.array(route),
  })
  .superRefine((rules, ctx) => {
    const names = new Set<string>();
    rules.routes.forEach((r, i) => {
      if (names.has(r.name)) {
        ctx.addIssue({ code: "custom", path: ["routes", i, "name"], message: `duplicate route name "${r.name}"` });
      }
      names.add(r.name);
      r.to.forEach((id, j) => {
        if (!Object.hasOwn(rules.destinations, id)) {
          ctx.addIssue({ code: "custom", path: ["routes", i, "to", j], message: `unknown destination "${id}"` });
        }
      });
    });
  });

export type Rules = z.output<typeof rulesSchema>;
export type Route = Rules["routes"][number];
export type Destination = Rules["destinations"][string];
export type Condition = z.output<typeof condition>;
export type Coalesce = z.output<typeof coalesce>;

/** An empty document: what "no rules in KV" means (everything matches nothing). */
export const EMPTY_RULES: Rules = { version: 1, destinations: {}, routes: [] };

export type Validation =
  | { ok: true; rules: Rules; warnings: Issue[] }
  | { ok: false; issues: Issue[]; warnings: Issue[] };

/**
 * Validates a rules document. Errors refuse it whole; warnings (unknown Actions, routes that can never
 * deliver, secrets missing from `env` when given) are advice. With `hosts` (SECRET_HOSTS, DESTINATION_HOSTS),
 * a destination that would send a secret, or anything, where the relay's configuration does not allow is an
 * error by path (src/rules/hosts.ts); without it (the CLI, the KV loader) delivery checks the same.
 */
export function validateRules(document: unknown, env?: object, hosts?: HostPolicy): Validation {
  const special = specialKeys(document);
  if (special.length > 0) return { ok: false, issues: special, warnings: [] };
  const result = rulesSchema.safeParse(document);
  if (!result.success) return { ok: false, issues: issuesOf(result.error), warnings: [] };
  const refused = hosts === undefined ? [] : hostIssues(result.data, hosts);
  if (refused.length > 0) return { ok: false, issues: refused, warnings: [] };
  return { ok: true, rules: result.data, warnings: warningsFor(result.data, env) };
}

/** Each place where a destination would send a secret (or anything) that the host policy does not allow. */
function hostIssues(rules: Rules, policy: HostPolicy): Issue[] {
  const issues: Issue[] = [];
  for (const [id, d] of Object.entries(rules.destinations)) {
    const at = (path: string) => `destinations.${id}.${path}`;
    // A URL kept in a secret is known only at delivery, which checks it and what goes with it.
    const host = typeof d.url === "string" ? new URL(d.url).hostname : undefined;
    if (host !== undefined) {
      const problem = sendProblem(policy, host);
      if (problem !== undefined) issues.push({ path: at("url"), message: problem });
    }
    if (typeof d.alertWebhook === "string") {
      const problem = sendProblem(policy, new URL(d.alertWebhook).hostname);
      if (problem !== undefined) issues.push({ path: at("alertWebhook"), message: problem });
    }
    for (const { path, name } of secretsOf(d)) {
      const bound = path === "url" || path === "alertWebhook" || host === undefined;
      const problem = bound
        ? unboundProblem(name, policy)
        : sendProblem({ secretHosts: policy.secretHosts }, host, name);
      if (problem !== undefined) issues.push({ path: at(path), message: problem });
    }
  }
  return issues;
}

export type TextValidation = Validation & { document?: unknown };

/**
 * Parses and validates a rules document's text (`env` as for validateRules) with the parser the API reads
 * bodies with: text nested past MAX_DEPTH or not JSON is one issue at (root) saying why, found before anything
 * recurses into it. `document` is the parsed value when the rules are valid.
 */
export function validateRulesText(text: string, env?: object, hosts?: HostPolicy): TextValidation {
  let document: unknown;
  try {
    document = parseJsonBody(new TextEncoder().encode(text)).value;
  } catch (error) {
    if (!(error instanceof RelayError)) throw error;
    const message =
      error.code === "nesting_too_deep"
        ? `nests objects or arrays more than ${MAX_DEPTH} levels deep`
        : `is not JSON: ${error.message.replace(/^The body is not JSON: /, "")}`;
    return { ok: false, issues: [{ path: "(root)", message }], warnings: [] };
  }
  const validation = validateRules(document, env, hosts);
  return validation.ok ? { ...validation, document } : validation;
}

/**
 * Every key in a JSON value that is, or has a dot-path segment that is, `__proto__`, `constructor` or
 * `prototype`, in document order. Walked with a stack of its own, so no depth of nesting can overflow the call
 * stack (a document given as a value, not text, has not been through the depth check).
 */
function specialKeys(root: unknown): Issue[] {
  const issues: Issue[] = [];
  const stack: { value: unknown; path: string }[] = [{ value: root, path: "" }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value !== "object" || value === null) continue;
    const children: { value: unknown; path: string }[] = [];
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) children.push({ value: item, path: `${path}[${i}]` });
    } else {
      for (const key of Object.keys(value)) {
        const at = path === "" ? key : `${path}.${key}`;
        if (key.split(".").some((segment) => SPECIAL_KEYS.has(segment))) {
          issues.push({
            path: at,
            message: "__proto__, constructor and prototype are not allowed as keys or path segments",
          });
        } else children.push({ value: (value as Record<string, unknown>)[key], path: at });
      }
    }
    stack.push(...children.reverse());
  }
  return issues;
}

function warningsFor(rules: Rules, env?: object): Issue[] {
  const warnings: Issue[] = [];
  rules.routes.forEach((r, i) => {
    r.actions.forEach((action, j) => {
      const known = action.endsWith("*")
        ? KNOWN_ACTIONS.some((k) => k.startsWith(action.slice(0, -1)))
        : KNOWN_ACTIONS.includes(action);
      if (!known) {
        warnings.push({
          path: `routes[${i}].actions[${j}]`,
          message: `"${action}" is not an Action Extend Commerce documents; check the spelling`,
        });
      }
    });
    if (r.enabled && r.to.every((id) => rules.destinations[id]?.enabled === false)) {
      warnings.push({ path: `routes[${i}].to`, message: "every destination of this route is disabled" });
    }
  });
  if (env !== undefined) {
    for (const [id, d] of Object.entries(rules.destinations)) {
      for (const { path, name } of secretsOf(d)) {
        if (secretValue(env, name) === undefined) {
          warnings.push({
            path: `destinations.${id}.${path}`,
            message:
              path === "alertWebhook"
                ? `secret ${name} is not set in the Worker's environment; alerts for "${id}" cannot be posted there until it is`
                : `secret ${name} is not set in the Worker's environment; deliveries to "${id}" will dead-letter until it is`,
          });
        }
      }
    }
  }
  return warnings;
}

/** The Worker secrets a destination needs, with where the rules name them. */
export function secretsOf(d: Destination): { path: string; name: string }[] {
  const out: { path: string; name: string }[] = [];
  if (typeof d.url === "object") out.push({ path: "url", name: d.url.secret });
  if (typeof d.alertWebhook === "object") out.push({ path: "alertWebhook", name: d.alertWebhook.secret });
  if (d.signing.scheme !== "none") out.push({ path: "signing.secret", name: d.signing.secret });
  for (const [header, value] of Object.entries(d.headers)) {
    if (typeof value === "object") out.push({ path: `headers.${header}`, name: value.secret });
  }
  return out;
}
