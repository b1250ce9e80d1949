import { type Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import { readJsonBody } from "../json.ts";
import type { JobFilter, JobKind } from "../ledger/jobs.ts";
import { previewJob, startJob } from "../ops/jobs.ts";
import { opContext } from "../ops/record.ts";
import { described, query } from "./openapi.ts";
import { checkedQuery } from "./query.ts";
import { jobFilterSchema } from "./schemas.ts";

/**
 * Bulk actions on a filtered set of deliveries (docs/console.md, "Bulk actions"), in the admin API: the preview
 * count, starting a replay or a delete (a job that runs in the background), and following it.
 */

/** The body's filter, its times as milliseconds; a field it refuses is a 400 `invalid_query` naming it. */
async function filterOf(c: Context<AppEnv>): Promise<JobFilter> {
  const body = await readJsonBody(c.req.raw, c.var.settings.MAX_BODY_BYTES);
  const value = checkedQuery(jobFilterSchema, (body ?? {}) as Record<string, unknown>);
  return {
    ...(value.destination !== undefined && { destination: value.destination }),
    ...(value.status !== undefined && { status: value.status }),
    ...(value.since !== undefined && { since: Date.parse(value.since) }),
    ...(value.until !== undefined && { until: Date.parse(value.until) }),
  };
}

async function start(c: Context<AppEnv>, kind: JobKind): Promise<Response> {
  const filter = await filterOf(c);
  const job = await startJob(opContext(c), kind, kind === "delete" ? { ...filter, status: "dead" } : filter);
  return c.json(job, 202);
}

/** Routes under /admin/deliveries and /admin/jobs, and the bulk delete under /admin/dead-letters. */
export const bulkAdmin = new Hono<AppEnv>()
  .get("/deliveries/count", described("GET /admin/deliveries/count"), query("GET /admin/deliveries/count"), async (c) =>
    c.json({ count: await previewJob(c.env, c.req.valid("query")) }),
  )
  .post("/deliveries/replay", described("POST /admin/deliveries/replay"), (c) => start(c, "replay"))
  .post("/dead-letters/delete", described("POST /admin/dead-letters/delete"), (c) => start(c, "delete"))
  .get("/jobs", described("GET /admin/jobs"), query("GET /admin/jobs"), async (c) =>
    c.json({ items: await c.var.ledger.listJobs(c.req.valid("query").limit) }),
  )
  .get("/jobs/:id", described("GET /admin/jobs/:id"), async (c) => {
    const raw = c.req.param("id");
    const job = /^[1-9]\d{0,15}$/.test(raw) ? await c.var.ledger.getJob(Number(raw)) : null;
    if (job === null) throw new RelayError("job_not_found", `There is no bulk action ${raw}.`);
    const { cursor: _, ...shown } = job;
    return c.json(shown);
  });
