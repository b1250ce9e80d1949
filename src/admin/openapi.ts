import { type Env, Hono } from "hono";
import type { RouterRoute } from "hono/types";
import { type DescribeRouteOptions, describeRoute, generateSpecs, resolver, validator } from "hono-openapi";
import type * as z from "zod";
import {
  API,
  API_KEYS,
  type ApiKey,
  BODY_ERRORS,
  CHANGE_ERRORS,
  errorsOf,
  type Operation,
  SHARED_ERRORS,
  TAGS,
} from "./api.ts";
import { refused } from "./query.ts";
import { errorSchema } from "./schemas.ts";

/**
 * The admin API's OpenAPI 3.1 document, with hono-openapi: each route of src/admin/ carries `described(key)`
 * (and `query(key)` / `pathParams(key)`, its validators) from the table in src/admin/api.ts, and
 * `apiDocument(app)` generates the document from the app's routes. `tableApp()` builds the same routes from the
 * table alone, for the docs script on Node (test/admin/openapi.test.ts checks both documents are the same).
 */

type JsonSchema = Record<string, unknown>;

/** Zod's JSON Schema without noise: no safe-integer bounds on every integer, no pattern beside `date-time`. */
function lean({ jsonSchema }: { jsonSchema: JsonSchema }): void {
  if (jsonSchema.type === "integer") {
    if (jsonSchema.minimum === Number.MIN_SAFE_INTEGER) delete jsonSchema.minimum;
    if (jsonSchema.maximum === Number.MAX_SAFE_INTEGER) delete jsonSchema.maximum;
  }
  if (jsonSchema.format === "date-time") delete jsonSchema.pattern;
}

/** How every schema becomes JSON Schema: as a client sends it (`input`), a custom check as any value. */
const OPTIONS = { options: { io: "input", unrepresentable: "any", override: lean } };

const json = (schema: z.ZodType) => ({ "application/json": { schema: resolver(schema, OPTIONS) } });

/** The OpenAPI operation of `key`. */
export function operationOf(key: ApiKey): DescribeRouteOptions {
  const operation: Operation = API[key];
  const errors = [...errorsOf(key)].map(([status, codes]) => [
    status,
    { description: codes.map((code) => `\`${code}\``).join(", "), content: json(errorSchema) },
  ]);
  return {
    tags: [operation.tag],
    summary: operation.summary,
    ...(operation.description !== undefined && { description: operation.description }),
    security: [{ bearer: [operation.role] }, { access: [operation.role] }],
    ...(operation.body !== undefined && { requestBody: { required: true, content: json(operation.body) } }),
    responses: Object.fromEntries([
      [
        operation.ok.status,
        { description: operation.ok.status === 202 ? "Accepted" : "OK", content: json(operation.ok.schema) },
      ],
      ...errors,
    ]),
  };
}

/** The route's description in the document. */
export const described = (key: ApiKey) => describeRoute(operationOf(key));

type WithQuery = { [K in ApiKey]: (typeof API)[K] extends { query: z.ZodObject } ? K : never }[ApiKey];
type WithPath = { [K in ApiKey]: (typeof API)[K] extends { path: z.ZodObject } ? K : never }[ApiKey];

/** The route's query validator: `c.req.valid("query")`; a bad parameter is a 400 `invalid_query` naming it. */
export const query = <K extends WithQuery>(key: K) =>
  validator("query", API[key].query as (typeof API)[K]["query"], refused, OPTIONS);

/** The route's path validator: `c.req.valid("param")`. */
export const pathParams = <K extends WithPath>(key: K) =>
  validator("param", API[key].path as (typeof API)[K]["path"], refused, OPTIONS);

/** What the document says besides its paths. */
export const documentation = (version: string) => ({
  info: {
    title: "extend-relay admin API",
    version,
    description:
      "Manage the rules, trace calls through the ledger, and handle dead letters and destinations. docs/admin-api.md is generated from this document.",
  },
  tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
  components: {
    securitySchemes: {
      bearer: {
        type: "http" as const,
        scheme: "bearer",
        description: "`ADMIN_TOKEN` (an operator) or `VIEWER_TOKEN` (a viewer).",
      },
      access: {
        type: "apiKey" as const,
        in: "header" as const,
        name: "Cf-Access-Jwt-Assertion",
        description: "Cloudflare Access; operators are the emails in `OPERATORS`.",
      },
    },
  },
  /** The errors every route may answer, every change and every body besides (docs/admin-api.md explains them once). */
  "x-shared-errors": { all: [...SHARED_ERRORS], changes: [...CHANGE_ERRORS], bodies: [...BODY_ERRORS] },
});

export type ApiDocument = Awaited<ReturnType<typeof generateSpecs>> & ReturnType<typeof documentation>;

/** The OpenAPI document of `app`'s described routes. */
export async function apiDocument<E extends Env>(app: Hono<E>, version: string): Promise<ApiDocument> {
  const document = await generateSpecs(app, {
    documentation: documentation(version),
    // The validators answer with the relay's own error envelope, described with every other error.
    defaultValidationErrorResponse: false,
    // GET /admin/openapi.json is no static file.
    excludeStaticFile: false,
  });
  return document as ApiDocument;
}

/** The API's routes built from the table alone (handlers that answer nothing): the document without the Worker. */
export function tableApp(): Hono {
  const app = new Hono();
  for (const key of API_KEYS) {
    const [method, path] = key.split(" ") as [string, string];
    const operation: Operation = API[key];
    app.on(
      method,
      path,
      described(key),
      ...(operation.query === undefined ? [] : [validator("query", operation.query, refused, OPTIONS)]),
      ...(operation.path === undefined ? [] : [validator("param", operation.path, refused, OPTIONS)]),
      (c) => c.body(null, 204),
    );
  }
  return app;
}

/** `METHOD /path` of each of `routes` under /admin (`:id` as `{id}`) that `document` lacks. */
export function missingRoutes(routes: readonly RouterRoute[], document: { paths: Record<string, object> }): string[] {
  const missing = routes
    .filter((r) => r.path.startsWith("/admin/") && r.method !== "ALL")
    .map((r) => ({ method: r.method.toLowerCase(), path: r.path.replace(/:([^/{]+)(\{[^}]*\})?/g, "{$1}") }))
    .filter(({ method, path }) => !Object.hasOwn(document.paths[path] ?? {}, method))
    .map(({ method, path }) => `${method.toUpperCase()} ${path}`);
  return [...new Set(missing)];
}
