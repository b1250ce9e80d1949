/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import * as z from "zod";
import { checkedQuery, oneOfQuery, textQuery, timeQuery } from "../../admin/query.ts";
import type { Job, JobFilter, JobKind } from "../../ledger/jobs.ts";
import { DELIVERY_STATUSES } from "../../ledger/views.ts";
import { previewJob, startJob } from "../../ops/jobs.ts";
import { opContext } from "../../ops/record.ts";
import type { ConsoleEnv } from "../env.ts";
import { formOf } from "../forms.ts";
import {
  CsrfField,
  canChange,
  framed,
  noticeOf,
  Page,
  redirectWithNotice,
  render,
  Scroll,
  shortTime,
  Time,
} from "../layout.tsx";
import { destinationPath } from "../links.ts";
import { currentRules } from "../rules-state.ts";
import { OnlyOperators } from "./calls.tsx";
import { PausedWarning, statesOf } from "./destinations.tsx";
import { errorPage } from "./errors.tsx";

/**
 * Bulk actions (docs/console.md, "Bulk actions"): replay every delivery matching a filter, or delete every such
 * dead letter, as a job the relay works through in the background (src/ops/jobs.ts). The page at the action's
 * address has the filter, how many match now and the form that starts it; the job's page follows it.
 */

const FILTER = z.object({
  destination: textQuery("Its destination."),
  status: oneOfQuery(DELIVERY_STATUSES, "Its status."),
  since: timeQuery("Accepted from (inclusive)"),
  until: timeQuery("Accepted until (exclusive)"),
});

const JOBS_SHOWN = 50;

/** The page that asks before a bulk action on `filter` (each field as the address gives it). */
export function bulkPath(kind: JobKind, filter: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filter)) if (value !== undefined) params.set(key, String(value));
  const query = params.toString();
  return `/console/deliveries/bulk/${kind}${query === "" ? "" : `?${query}`}`;
}

/** A filter from the address or the posted form: 400 `invalid_query` naming a field it refuses. */
function filterOf(values: Record<string, unknown>): JobFilter {
  const read = checkedQuery(FILTER, values);
  return {
    ...(read.destination !== undefined && { destination: read.destination }),
    ...(read.status !== undefined && { status: read.status }),
    ...(read.since !== undefined && { since: read.since }),
    ...(read.until !== undefined && { until: read.until }),
  };
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** `destination wms, status dead, accepted from … until …`, or that it takes every delivery. */
const FilterText: FC<{ filter: JobFilter }> = ({ filter }) => {
  const parts = [
    filter.destination === undefined ? undefined : `destination ${filter.destination}`,
    filter.status === undefined ? undefined : `status ${filter.status}`,
    filter.since === undefined ? undefined : `accepted from ${shortTime(iso(filter.since)!)}`,
    filter.until === undefined ? undefined : `accepted before ${shortTime(iso(filter.until)!)}`,
  ].filter((p) => p !== undefined);
  return <span>{parts.length === 0 ? "every delivery in the ledger" : parts.join(", ")}</span>;
};

const WHAT: Record<JobKind, string> = { replay: "Replay", delete: "Delete" };
const noun = (kind: JobKind, n: number) =>
  kind === "delete" ? `dead letter${n === 1 ? "" : "s"}` : `deliver${n === 1 ? "y" : "ies"}`;

/**
 * GET /console/deliveries/bulk/replay and /delete: the filter, how many it matches now, and (for an operator) the
 * form that starts the job; a replay into a paused destination is warned of, and a delete takes only dead letters.
 */
export async function bulkPage(c: Context<ConsoleEnv>): Promise<Response> {
  const kind: JobKind = c.req.path.endsWith("/delete") ? "delete" : "replay";
  const path = `/console/deliveries/bulk/${kind}`;
  const asked = filterOf(c.req.query());
  const refused = kind === "delete" && asked.status !== undefined && asked.status !== "dead";
  // Only dead letters are deleted in bulk: a delete's filter is of dead letters, said or not.
  const filter: JobFilter = kind === "delete" ? { ...asked, status: "dead" } : asked;
  const rules = await currentRules(c);
  const names = [
    ...new Set([
      ...("rules" in rules ? Object.keys(rules.rules.destinations) : []),
      ...(filter.destination === undefined ? [] : [filter.destination]),
    ]),
  ];
  const [count, states] = await Promise.all([
    refused ? 0 : previewJob(c.env, filter),
    kind === "replay" ? statesOf(c, filter.destination === undefined ? names : [filter.destination]) : [],
  ]);
  const csrf = canChange(c) ? c.get("csrf") : undefined;
  const title = kind === "replay" ? "Replay deliveries in bulk" : "Delete dead letters in bulk";
  return render(
    c,
    <Page title={title} notice={noticeOf(c)} {...framed(c, "/console/dead-letters")}>
      <p>
        {kind === "replay"
          ? "Every delivery that matches is sent again under its own delivery id, with its attempts counted afresh: a delivered one reaches its receiver twice. "
          : "Every dead letter that matches is deleted, with the body it would send; the calls' pages keep their attempts. "}
        {"The relay works through them in the background, 100 at a time; a page follows its progress."}
      </p>
      <search>
        <form class="filters" method="get" action={path}>
          <div class="field">
            <label for="destination">Destination</label>
            <select id="destination" name="destination">
              <option value="">any</option>
              {names.map((name) => (
                <option value={name} selected={name === filter.destination}>
                  {name}
                </option>
              ))}
            </select>
          </div>
          {kind === "replay" && (
            <div class="field">
              <label for="status">Status</label>
              <select id="status" name="status">
                <option value="">any</option>
                {DELIVERY_STATUSES.map((status) => (
                  <option value={status} selected={status === filter.status}>
                    {status}
                  </option>
                ))}
              </select>
            </div>
          )}
          <div class="field">
            <label for="since">
              Accepted from <span class="hint">(UTC)</span>
            </label>
            <input
              type="text"
              id="since"
              name="since"
              value={iso(filter.since) ?? ""}
              maxlength={40}
              aria-describedby="when-hint"
            />
          </div>
          <div class="field">
            <label for="until">
              Accepted before <span class="hint">(UTC)</span>
            </label>
            <input
              type="text"
              id="until"
              name="until"
              value={iso(filter.until) ?? ""}
              maxlength={40}
              aria-describedby="when-hint"
            />
          </div>
          <div>
            <button type="submit">Count</button>
          </div>
          <p class="hint" id="when-hint">
            Times in UTC, such as <span class="nowrap">2026-12-01T08:00Z</span>; either may be left empty.
          </p>
        </form>
      </search>

      {refused ? (
        <div class="problem" role="alert">
          <p>
            Only dead letters can be deleted in bulk: a delivery on its way is never dropped.{" "}
            <a
              href={bulkPath("delete", { ...asked, since: iso(asked.since), until: iso(asked.until), status: "dead" })}
            >
              Its dead letters
            </a>
          </p>
        </div>
      ) : (
        <>
          <h2>{`${count.toLocaleString("en")} ${noun(kind, count)} match${count === 1 ? "es" : ""}`}</h2>
          <p>
            {"Filter: "}
            <FilterText filter={filter} />
            {". The number may change before the job reaches them: it takes what matches as it goes."}
          </p>
          {count > 0 && (
            <>
              <PausedWarning states={states} what="what is replayed" />
              {csrf === undefined ? (
                <OnlyOperators />
              ) : (
                <form class="actions" method="post" action={path}>
                  <CsrfField token={csrf} />
                  {Object.entries(filter).map(([key, value]) => (
                    <input type="hidden" name={key} value={String(value)} />
                  ))}
                  <button type="submit" class={kind === "delete" ? "danger" : undefined}>
                    {`${WHAT[kind]} ${count === 1 ? "it" : `all ${count.toLocaleString("en")}`}`}
                  </button>
                  <a
                    href={
                      filter.destination === undefined ? "/console/dead-letters" : destinationPath(filter.destination)
                    }
                  >
                    Cancel
                  </a>
                </form>
              )}
            </>
          )}
        </>
      )}
      <p>
        <a href="/console/jobs">Bulk actions so far</a>
      </p>
    </Page>,
  );
}

/** POST /console/deliveries/bulk/replay and /delete: the admin API's job (src/ops/jobs.ts), then its page. */
export async function bulkFromConsole(c: Context<ConsoleEnv>): Promise<Response> {
  const kind: JobKind = c.req.path.endsWith("/delete") ? "delete" : "replay";
  const form = Object.fromEntries([...(await formOf(c))].filter(([key, value]) => key !== "csrf" && value !== ""));
  const job = await startJob(opContext(c), kind, filterOf(form));
  return redirectWithNotice(c, `/console/jobs/${job.id}`, kind === "replay" ? "job_replay" : "job_delete", {
    n: job.total,
  });
}

/** Seconds between reloads of a running job's page (a `Refresh` header: no script, and no <meta> for axe to fault). */
const JOB_REFRESH_SECONDS = 5;

const JobState: FC<{ job: Job }> = ({ job }) => (
  <span class={`badge ${job.state === "done" ? "s-delivered" : job.state === "failed" ? "s-dead" : "s-retrying"}`}>
    {job.state}
  </span>
);

const jobTitle = (job: Pick<Job, "id" | "kind">) => `Bulk ${job.kind} ${job.id}`;

/** GET /console/jobs/:id: a bulk action, how far it got; its page reloads itself every 5 seconds while it runs. */
export async function jobPage(c: Context<ConsoleEnv>): Promise<Response> {
  const raw = c.req.param("id")!;
  const job = /^[1-9]\d{0,14}$/.test(raw) ? await c.var.ledger.getJob(Number(raw)) : null;
  if (job === null) {
    return errorPage(c, 404, `There is no bulk action ${raw}.`, { code: "job_not_found" });
  }
  const running = job.state === "running";
  if (running) c.header("Refresh", String(JOB_REFRESH_SECONDS));
  const through = job.done + job.skipped;
  const d = job.filter.destination;
  return render(
    c,
    <Page title={jobTitle(job)} notice={noticeOf(c)} {...framed(c, "/console/dead-letters")}>
      <p>
        <JobState job={job} />{" "}
        {running
          ? `This page reloads itself every ${JOB_REFRESH_SECONDS} seconds until the job ends.`
          : job.state === "done"
            ? "Done."
            : "It stopped: what it did stays done."}
      </p>
      <p>
        <label for="progress">{`${through.toLocaleString("en")} of ${job.total.toLocaleString("en")} gone through`}</label>{" "}
        <progress id="progress" max={Math.max(1, job.total)} value={Math.min(through, Math.max(1, job.total))} />
      </p>
      <dl class="facts">
        <dt>What</dt>
        <dd>{`${WHAT[job.kind]} every ${noun(job.kind, 1)} matching`}</dd>
        <dt>Filter</dt>
        <dd>
          <FilterText filter={job.filter} />
        </dd>
        <dt>Matched at the start</dt>
        <dd>{job.total}</dd>
        <dt>{job.kind === "replay" ? "Replayed" : "Deleted"}</dt>
        <dd>{job.done}</dd>
        <dt>Passed over</dt>
        <dd>
          {job.skipped}
          {job.skipped > 0 &&
            (job.kind === "replay"
              ? " (no readable message to send, or the queue took none)"
              : " (gone before the job reached them)")}
        </dd>
        {job.error !== undefined && (
          <>
            <dt>Error</dt>
            <dd>{job.error}</dd>
          </>
        )}
        <dt>Started by</dt>
        <dd>
          {`${job.actor} `}
          {job.activity !== undefined && (
            <a href={`/console/activity/${job.activity}`}>{`activity #${job.activity}`}</a>
          )}
        </dd>
        <dt>Started</dt>
        <dd>
          <Time at={job.createdAt} />
        </dd>
        <dt>Last progress</dt>
        <dd>
          <Time at={job.updatedAt} />
        </dd>
      </dl>
      <p>
        {d !== undefined && (
          <>
            <a href={destinationPath(d)}>{`${d}'s page`}</a>
            {" · "}
          </>
        )}
        <a href={`/console/dead-letters${d === undefined ? "" : `?destination=${encodeURIComponent(d)}`}`}>
          Dead letters
        </a>
        {" · "}
        <a href="/console/jobs">Bulk actions so far</a>
      </p>
    </Page>,
  );
}

/** GET /console/jobs: the latest bulk actions, newest first. */
export async function jobsPage(c: Context<ConsoleEnv>): Promise<Response> {
  const jobs = await c.var.ledger.listJobs(JOBS_SHOWN);
  return render(
    c,
    <Page title="Bulk actions" notice={noticeOf(c)} {...framed(c, "/console/dead-letters")}>
      <p>
        Replays and deletes of every delivery matching a filter, newest first. Start one from the{" "}
        <a href="/console/dead-letters">dead letters</a> or a destination's page.
      </p>
      {jobs.length === 0 ? (
        <p>None yet.</p>
      ) : (
        <Scroll label="Bulk actions">
          <table class="records">
            <caption class="muted">Newest first</caption>
            <thead>
              <tr>
                <th scope="col">Bulk action</th>
                <th scope="col">State</th>
                <th scope="col">Filter</th>
                <th scope="col">Progress</th>
                <th scope="col">By</th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((job) => (
                <tr>
                  <th scope="row">
                    <a href={`/console/jobs/${job.id}`}>{jobTitle(job)}</a>
                  </th>
                  <td class="lead" data-label="State">
                    <JobState job={job} />
                  </td>
                  <td data-label="Filter">
                    <FilterText filter={job.filter} />
                  </td>
                  <td data-label="Progress">
                    {`${job.done} ${job.kind === "replay" ? "replayed" : "deleted"}, ${job.skipped} passed over, of ${job.total}`}
                  </td>
                  <td class="id" data-label="By">
                    {job.actor}
                  </td>
                  <td data-label="Started">
                    <Time at={job.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}
    </Page>,
  );
}
