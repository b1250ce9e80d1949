/**
 * The tables in docs/ that are facts of the code: every error code (src/errors.ts), every var with its
 * default (src/settings.ts), every dead-letter and held reason (src/queues.ts), what each alert says
 * (src/alerts/text.ts, for one example episode), and the admin API's reference, from its OpenAPI document
 * (src/admin/api.ts). Each sits in its page between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->`;
 * `npm run docs` rewrites them and test/scripts/docs.test.ts fails when a page is out of date. Pure (no Node APIs).
 */
import { type ApiDocument, apiDocument, tableApp } from "../../src/admin/openapi.ts";
import { alertText } from "../../src/alerts/text.ts";
import { alertLink } from "../../src/console/links.ts";
import { ERRORS, type ErrorCode } from "../../src/errors.ts";
import type { Alert } from "../../src/queues/alert.ts";
import { DEAD_LETTER_REASONS, type DeadLetterReason } from "../../src/queues/dead-letter.ts";
import { HELD_REASONS, type HeldReason } from "../../src/queues/ledger.ts";
import { varDocs } from "../../src/settings.ts";

const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");

const TABLES: Record<string, () => string> = {
  errors: () =>
    [
      "| Status | Code | Meaning and fix |",
      "|---|---|---|",
      ...(Object.keys(ERRORS) as ErrorCode[]).map(
        (code) => `| ${ERRORS[code].status} | \`${code}\` | ${cell(ERRORS[code].hint)} |`,
      ),
    ].join("\n"),
  vars: () =>
    [
      "| Var | Default | Meaning |",
      "|---|---|---|",
      ...varDocs().map(
        (v) => `| \`${v.name}\` | ${v.default === "" ? "(empty)" : `\`${v.default}\``} | ${cell(v.description)} |`,
      ),
    ].join("\n"),
  "dead-letter-reasons": () =>
    [
      "| Reason | What happened, and what to do |",
      "|---|---|",
      ...(Object.keys(DEAD_LETTER_REASONS) as DeadLetterReason[]).map(
        (reason) => `| \`${reason}\` | ${cell(DEAD_LETTER_REASONS[reason])} |`,
      ),
    ].join("\n"),
  "held-reasons": () =>
    [
      "| Reason | Why the delivery waits, and when it goes |",
      "|---|---|",
      ...(Object.keys(HELD_REASONS) as HeldReason[]).map(
        (reason) => `| \`${reason}\` | ${cell(HELD_REASONS[reason])} |`,
      ),
    ].join("\n"),
  "alert-examples": () =>
    EXAMPLE_ALERTS.map((alert) => {
      const { subject, text } = alertText(alert, alertLink(alert, "https://relay.example.com"));
      return [
        `#### \`${alert.type}\`${alert.reason === "hand" ? " (by hand)" : ""}`,
        "",
        `Subject: **${subject}**`,
        "",
        "```text",
        text,
        "```",
      ].join("\n");
    }).join("\n\n"),
};

/** One episode of a broken receiver, as docs/alerts.md tells it: the alerts the relay sends, in order. */
const T = Date.parse("2026-12-01T09:00:00Z");
const EXAMPLE_ALERTS: Alert[] = [
  {
    id: `wms:destination_failing:${T}`,
    type: "destination_failing",
    destination: "wms",
    count: 5,
    firstAt: T,
    lastAt: T + 62_000,
    lastStatus: 503,
    held: 0,
  },
  {
    id: `wms:destination_paused:${T}`,
    type: "destination_paused",
    destination: "wms",
    count: 20,
    firstAt: T,
    lastAt: T + 250_000,
    lastStatus: 503,
    reason: "circuit",
    probeAt: T + 550_000,
    held: 0,
  },
  {
    id: `wms:destination_recovered:${T}`,
    type: "destination_recovered",
    destination: "wms",
    count: 21,
    firstAt: T,
    lastAt: T + 1_150_000,
    lastStatus: 503,
    held: 340,
  },
  {
    id: `wms:deliveries_dead:${T + 2_400_000}`,
    type: "deliveries_dead",
    destination: "wms",
    count: 3,
    firstAt: T + 2_400_000,
    lastAt: T + 2_460_000,
    reason: "permanent_failure",
    lastStatus: 422,
  },
  {
    id: `shop:destination_paused:${T + 3_600_000}`,
    type: "destination_paused",
    destination: "shop",
    count: 0,
    firstAt: T + 3_600_000,
    lastAt: T + 3_600_000,
    reason: "hand",
    held: 0,
    actor: "ann@example.com",
    activity: 412,
  },
  {
    id: `shop:destination_held_near_cap:${T + 7_200_000}`,
    type: "destination_held_near_cap",
    destination: "shop",
    count: 80_000,
    firstAt: T + 7_200_000,
    lastAt: T + 7_200_000,
    reason: "100000",
    held: 80_000,
  },
  {
    id: `sender_silent:${T}`,
    type: "sender_silent",
    count: 95,
    firstAt: T,
    lastAt: T + 95 * 60_000,
  },
];
/** The pages that hold generated tables. */
export const GENERATED_PAGES = [
  "docs/operations.md",
  "docs/flow-control.md",
  "docs/alerts.md",
  "docs/admin-api.md",
] as const;

/** The blocks made from something that must be awaited: the admin API's OpenAPI document. */
export async function awaitedBlocks(): Promise<Record<string, string>> {
  // The document as the Worker serves it at GET /admin/openapi.json (test/admin/openapi.test.ts checks so).
  return { "admin-api": adminApiReference(await apiDocument(tableApp(), "docs")) };
}

/**
 * `text` with every generated block it holds rewritten from the code (`blocks`: those of awaitedBlocks());
 * throws on an unknown block name.
 */
export function refreshTables(text: string, blocks: Record<string, string> = {}): string {
  return text.replace(/<!-- generated:([a-z-]+) -->\n[\s\S]*?\n?<!-- \/generated:\1 -->/g, (_, name: string) => {
    const rendered = Object.hasOwn(blocks, name) ? blocks[name] : TABLES[name]?.();
    if (rendered === undefined) throw new Error(`unknown generated block "${name}"`);
    return `<!-- generated:${name} -->\n${rendered}\n<!-- /generated:${name} -->`;
  });
}

// The admin API's reference (docs/admin-api.md): one entry per route, then the schemas of its answers.

type Schema = {
  $ref?: string;
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  const?: unknown;
  items?: Schema | Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema | boolean;
  description?: string;
};
type Parameter = { in: string; name: string; required?: boolean; description?: string; schema?: Schema };
type Operation = {
  tags?: string[];
  summary?: string;
  description?: string;
  security?: Record<string, string[]>[];
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: Schema }> }>;
};

/** A schema's name as a link to its entry. */
const schemaLink = (ref: string) => {
  const name = ref.slice(ref.lastIndexOf("/") + 1);
  return `[${name}](#${name.toLowerCase()})`;
};

/** The query parameters that docs/admin-api.md's head explains once (paging and times). */
const EXPLAINED = new Set(["since", "until", "limit", "cursor"]);

/**
 * A short type: `time`, `int[]`, a link to a schema, `a | b`, `{a, b?: int}`; nothing for a plain string (the
 * reference says so once), and an enum of more than 7 values is a string.
 */
function typeOf(schema: Schema, depth = 0): string {
  if (schema.$ref !== undefined) return schemaLink(schema.$ref);
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum !== undefined) return schema.enum.length > 7 ? "" : schema.enum.map(String).join(" | ");
  const union = schema.anyOf ?? schema.oneOf;
  if (union !== undefined) return union.map((s) => typeOf(s, depth) || "string").join(" or ");
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const main = types.find((t) => t !== "null");
  const nullable = types.includes("null") ? " or null" : "";
  if (main === "array") {
    const item = Array.isArray(schema.items)
      ? `[${schema.items.map((s) => typeOf(s, depth + 1) || "string").join(", ")}]`
      : typeOf(schema.items ?? {}, depth + 1) || "string";
    return `${item.startsWith("{") || !item.includes(" ") ? item : `(${item})`}[]${nullable}`;
  }
  if (main === "object") {
    if (schema.properties !== undefined && Object.keys(schema.properties).length > 0) {
      // Nested objects are spelled out when small; the document has them all.
      if (depth > 2 || (depth > 1 && Object.keys(schema.properties).length > 8)) return `object${nullable}`;
      return `${shapeOf(schema, depth + 1)}${nullable}`;
    }
    const values = schema.additionalProperties;
    if (typeof values === "object" && Object.keys(values).length > 0) {
      return `map of ${typeOf(values, depth + 1) || "string"}`;
    }
    return `object${nullable}`;
  }
  if (main === undefined) return types.includes("null") ? "null" : "any";
  if (main === "integer") return `int${nullable}`;
  if (main === "string") return schema.format === "date-time" ? `time${nullable}` : nullable && `string${nullable}`;
  return `${main}${nullable}`;
}

/** An object's fields: `{a, b?: integer, c: [X](#x)[]}` (`?`: may be absent). */
function shapeOf(schema: Schema, depth: number): string {
  const fields = Object.entries(schema.properties ?? {}).map(([name, s]) => {
    const type = typeOf(s, depth);
    return `${name}${schema.required?.includes(name) ? "" : "?"}${type === "" ? "" : `: ${type}`}`;
  });
  return `{${fields.join(", ")}}`;
}

/** The error codes `op` may answer, by status, but `shared` ones. */
function errorCodes(op: Operation, shared: Set<string>): [string, string[]][] {
  return Object.entries(op.responses)
    .filter(([status]) => Number(status) >= 400)
    .map(([status, r]): [string, string[]] => [
      status,
      [...r.description.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!).filter((code) => !shared.has(code)),
    ])
    .filter(([, codes]) => codes.length > 0);
}

const codeList = (codes: [string, string[]][]) =>
  codes.map(([status, list]) => `${status} ${list.map((c) => `\`${c}\``).join(", ")}`);

/** One route's entry: summary, role, parameters, body, and its answers by status (errors beyond the shared ones). */
function operationEntry(method: string, path: string, op: Operation, shared: Set<string>): string {
  const role = op.security?.[0]?.bearer?.[0] ?? "viewer";
  const lines = [`### \`${method.toUpperCase()} ${path}\``, ""];
  lines.push([op.summary, op.description, `*${role[0]!.toUpperCase()}${role.slice(1)}.*`].filter(Boolean).join(" "));
  lines.push("");
  const parameters = (op.parameters ?? []).filter((p) => p.in !== "path" || p.description !== undefined);
  for (const p of parameters.filter((p) => !EXPLAINED.has(p.name))) {
    const name = p.in === "query" ? `?${p.name}=` : `{${p.name}}`;
    const values =
      p.schema?.enum === undefined ? "" : ` One of ${p.schema.enum.map((v) => `\`${String(v)}\``).join(", ")}.`;
    lines.push(`- \`${name}\`${p.description === undefined ? "" : `: ${p.description}`}${values}`);
  }
  const paging = parameters.filter((p) => EXPLAINED.has(p.name)).map((p) => `\`?${p.name}=\``);
  if (paging.length > 0) lines.push(`- ${paging.join(", ")}.`);
  const body = op.requestBody?.content["application/json"]?.schema;
  if (body !== undefined) lines.push(`- Body: ${typeOf(body)}.`);
  // A bad parameter's 400 `invalid_query` is explained once, in the page's head.
  const errors = codeList(errorCodes(op, parameters.length > 0 ? new Set([...shared, "invalid_query"]) : shared));
  const [status, answer] = Object.entries(op.responses)[0]!;
  const schema = answer.content?.["application/json"]?.schema;
  lines.push(`- ${[`${status} ${schema === undefined ? "" : typeOf(schema)}`, ...errors].join("; ")}.`);
  return lines.join("\n");
}

/**
 * A schema's entry: its description, its fields (or, extending another schema, that one's name and its own
 * fields), and what its described fields mean.
 */
function schemaEntry(name: string, schema: Schema, all: Record<string, Schema>, derived: Set<string>): string {
  const lines = [`### ${name}`, ""];
  if (schema.description !== undefined) lines.push(schema.description, "");
  const properties = schema.properties ?? {};
  // The largest other schema of which this one has every field (but at most one) unchanged.
  const same = (s: Schema) =>
    Object.entries(s.properties ?? {}).filter(([f, fs]) => JSON.stringify(properties[f]) === JSON.stringify(fs));
  // Only one written out in full, earlier (so that no two name each other).
  const base = Object.entries(all)
    .filter(([other, s]) => other < name && !derived.has(other) && same(s).length > 3)
    .filter(([, s]) => Object.keys(s.properties ?? {}).length - same(s).length <= 1)
    .sort(([, a], [, b]) => same(b).length - same(a).length)[0];
  let shape = typeOf(schema);
  let own = schema;
  if (base !== undefined) {
    const shared = new Set(same(base[1]).map(([f]) => f));
    const but = Object.keys(base[1].properties ?? {}).filter((f) => !shared.has(f));
    own = { ...schema, properties: Object.fromEntries(Object.entries(properties).filter(([f]) => !shared.has(f))) };
    const without = but.length === 0 ? "" : ` but ${but.map((f) => `\`${f}\``).join(", ")}`;
    shape = `The fields of ${schemaLink(base[0])}${without}, and ${typeOf(own)}`;
  }
  if (base !== undefined) derived.add(name);
  lines.push(shape);
  const described = Object.entries(own.properties ?? {}).filter(([, s]) => s.description !== undefined);
  if (described.length > 0) lines.push("", ...described.map(([field, s]) => `- \`${field}\`: ${s.description}`));
  return lines.join("\n");
}

/**
 * The generated part of docs/admin-api.md: each tag's routes (in the document's order; errors all of them may
 * answer said once, after the tag's description), then every schema.
 */
function adminApiReference(document: ApiDocument): string {
  const x = document["x-shared-errors"];
  const paths = document.paths as Record<string, Record<string, Operation>>;
  const sharedOf = (op: Operation) =>
    new Set<string>([
      ...x.all,
      ...(op.security?.[0]?.bearer?.[0] === "operator" ? x.changes : []),
      ...(op.requestBody === undefined ? [] : x.bodies),
    ]);
  const sections = document.tags.map(({ name, description }) => {
    const ops = Object.entries(paths).flatMap(([path, methods]) =>
      Object.entries(methods)
        .filter(([, op]) => op.tags?.includes(name))
        .map(([method, op]) => ({ method, path, op })),
    );
    const codes = ops.map(({ op }) => errorCodes(op, sharedOf(op)).flatMap(([, list]) => list));
    const common = codes[0]?.filter((code) => codes.every((list) => list.includes(code))) ?? [];
    const head = [description ?? ""];
    if (common.length > 0) {
      const byStatus = errorCodes(ops[0]!.op, sharedOf(ops[0]!.op)).map(([status, list]): [string, string[]] => [
        status,
        list.filter((c) => common.includes(c)),
      ]);
      head.push(`Each may answer ${codeList(byStatus.filter(([, list]) => list.length > 0)).join("; ")}.`);
    }
    const entries = ops.map(({ method, path, op }) =>
      operationEntry(method, path, op, new Set([...sharedOf(op), ...common])),
    );
    return [`## ${name}`, "", head.join(" "), "", entries.join("\n\n")].join("\n");
  });
  const all = (document.components.schemas ?? {}) as Record<string, Schema>;
  const derived = new Set<string>();
  const schemas = Object.keys(all)
    .sort()
    .map((name) => schemaEntry(name, all[name]!, all, derived));
  const intro =
    "What the answers hold: `?` marks a field that may be absent, a field without a type is a string, `int` an integer and `time` ISO-8601 in UTC.";
  return [...sections, ["## Schemas", "", intro, "", schemas.join("\n\n")].join("\n")].join("\n\n");
}

/** The names of the generated blocks in `text`. */
export function blocksIn(text: string): string[] {
  return [...text.matchAll(/<!-- generated:([a-z-]+) -->/g)].map((m) => m[1]!);
}
