import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import type { Issue } from "../issues.ts";
import { readBody, readJsonBody } from "../json.ts";
import { RULES_KEY } from "../kv-keys.ts";
import { getVersion, listVersions, type RulesVersion } from "../ledger/rules-history.ts";
import { opContext } from "../ops/record.ts";
import { restoreRules, saveRules } from "../ops/rules.ts";
import { checkedRules, readStoredRules } from "../rules/save.ts";
import { hostPolicy } from "../settings.ts";
import { dryRunBody } from "./dry-run.ts";
import { limitParam } from "./query.ts";

export type { DryRun } from "./dry-run.ts";

/** PUT /admin/rules and POST /admin/rules/validate answer this; a save also its version and the one before. */
export interface RulesAnswer {
  status: "stored" | "valid";
  warnings: Issue[];
  version?: number;
  before?: number | null;
}

/** GET /admin/rules/versions answers this: newest first, with which one is in force. */
export interface VersionsPage {
  items: (RulesVersion & { inForce: boolean })[];
  cursor?: string;
}

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

/** ?cursor= of the versions list: a version number, as this API wrote it. */
export function versionParam(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[1-9]\d{0,9}$/.test(raw)) {
    throw new RelayError("invalid_query", `${name} must be a version number (got "${raw.slice(0, 100)}").`, {
      parameter: name,
    });
  }
  return Number(raw);
}

async function versions(c: Context<AppEnv>): Promise<Response> {
  const [page, stored] = await Promise.all([
    listVersions(c.env.LEDGER, { limit: limitParam(c), before: versionParam(c.req.query("cursor"), "cursor") }),
    readStoredRules(c.env.RULES),
  ]);
  const inForce = page.items.find((v) => v.hash === stored?.hash)?.version;
  return c.json({
    items: page.items.map((v) => ({ ...v, inForce: v.version === inForce })),
    ...(page.next !== undefined && { cursor: String(page.next) }),
  } satisfies VersionsPage);
}

async function version(c: Context<AppEnv>): Promise<Response> {
  const number = versionParam(c.req.param("version"), "version")!;
  const found = await getVersion(c.env.LEDGER, number);
  if (found === null) throw new RelayError("rules_version_not_found", `The rules history has no version ${number}.`);
  const { text, ...facts } = found;
  return c.json({ ...facts, document: JSON.parse(text) as unknown });
}

async function restore(c: Context<AppEnv>): Promise<Response> {
  const number = versionParam(c.req.param("version"), "version")!;
  const saved = await restoreRules(opContext(c), hostPolicy(c.var.settings), number);
  return c.json({ status: "stored", ...saved } satisfies RulesAnswer);
}

/** The rules half of the admin API (docs/admin-api.md), its history, and the routing dry run. */
export const rulesAdmin = new Hono<AppEnv>()
  .get("/rules", getRules)
  .put("/rules", putRules)
  .post("/rules/validate", validateRulesDocument)
  .get("/rules/versions", versions)
  .get("/rules/versions/:version", version)
  .post("/rules/versions/:version/restore", restore)
  .post("/route", dryRun);
