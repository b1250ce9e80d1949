import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import { readBody, readJsonBody } from "../json.ts";
import { RULES_KEY } from "../kv-keys.ts";
import { dryRunBody } from "../ops/dry-run.ts";
import { opContext } from "../ops/record.ts";
import { restoreRules, saveRules } from "../ops/rules.ts";
import { checkedRules, readStoredRules } from "../rules/save.ts";
import { hostPolicy } from "../settings.ts";
import { described, pathParams, query } from "./openapi.ts";
import { versionNumber } from "./query.ts";
import type { RulesAnswer, RulesVersionDocument, VersionsPage } from "./schemas.ts";

export type { DryRun, RulesAnswer, VersionsPage } from "./schemas.ts";

const body = (c: Context<AppEnv>) => readJsonBody(c.req.raw, c.var.settings.MAX_BODY_BYTES);

async function getRules(c: Context<AppEnv>): Promise<Response> {
  const text = await c.env.RULES.get(RULES_KEY, "text");
  if (text === null)
    throw new RelayError("rules_not_found", `There is no rules document in KV key "${RULES_KEY}" yet.`);
  return c.body(text, 200, { "Content-Type": "application/json" });
}

/** Stores the document with its history and activity row (src/ops/rules.ts, as the console does). */
async function putRules(c: Context<AppEnv>): Promise<Response> {
  const saved = await saveRules(opContext(c), hostPolicy(c.var.settings), await body(c));
  return c.json({ status: "stored", ...saved } satisfies RulesAnswer);
}

async function validateRulesDocument(c: Context<AppEnv>): Promise<Response> {
  const { warnings } = checkedRules(await body(c), c.env, hostPolicy(c.var.settings));
  return c.json({ status: "valid", warnings } satisfies RulesAnswer);
}

/** The dry run (src/admin/dry-run.ts, shared with the console's "Try a payload"). */
async function dryRun(c: Context<AppEnv>): Promise<Response> {
  const bytes = await readBody(c.req.raw, c.var.settings.MAX_BODY_BYTES);
  return c.json(await dryRunBody(bytes, c.env, c.var.settings));
}

/** A rules version (the console's ?cursor= and :version): a 400 `invalid_query` naming `name` when it is not one. */
export function versionParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  const parsed = versionNumber.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new RelayError("invalid_query", `${name} must be a version number (got "${raw.slice(0, 100)}").`, {
    parameter: name,
  });
}

/** The rules half of the admin API (docs/admin-api.md), its history, and the routing dry run. */
export const rulesAdmin = new Hono<AppEnv>()
  .get("/rules", described("GET /admin/rules"), getRules)
  .put("/rules", described("PUT /admin/rules"), putRules)
  .post("/rules/validate", described("POST /admin/rules/validate"), validateRulesDocument)
  .get("/rules/versions", described("GET /admin/rules/versions"), query("GET /admin/rules/versions"), async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const [page, stored] = await Promise.all([
      c.var.ledger.listVersions({ limit, before: cursor }),
      readStoredRules(c.env.RULES),
    ]);
    const inForce = page.items.find((v) => v.hash === stored?.hash)?.version;
    return c.json({
      items: page.items.map((v) => ({ ...v, inForce: v.version === inForce })),
      ...(page.next !== undefined && { cursor: String(page.next) }),
    } satisfies VersionsPage);
  })
  .get(
    "/rules/versions/:version",
    described("GET /admin/rules/versions/:version"),
    pathParams("GET /admin/rules/versions/:version"),
    async (c) => {
      const { version } = c.req.valid("param");
      const found = await c.var.ledger.getVersion(version);
      if (found === null) {
        throw new RelayError("rules_version_not_found", `The rules history has no version ${version}.`);
      }
      const { text, ...facts } = found;
      return c.json({ ...facts, document: JSON.parse(text) as unknown } satisfies RulesVersionDocument);
    },
  )
  .post(
    "/rules/versions/:version/restore",
    described("POST /admin/rules/versions/:version/restore"),
    pathParams("POST /admin/rules/versions/:version/restore"),
    async (c) => {
      const saved = await restoreRules(opContext(c), hostPolicy(c.var.settings), c.req.valid("param").version);
      return c.json({ status: "stored", ...saved } satisfies RulesAnswer);
    },
  )
  .post("/route", described("POST /admin/route"), dryRun);
