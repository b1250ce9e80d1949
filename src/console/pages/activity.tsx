/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import { activityPage, activityRow } from "../../admin/activity.ts";
import { ACTIONS, type ActivityRow } from "../../ledger/activity.ts";
import type { ConsoleEnv } from "../env.ts";
import {
  ActionLink,
  CsrfField,
  canChange,
  framed,
  noticeOf,
  Page,
  Pager,
  render,
  Scroll,
  Time,
  Wrap,
} from "../layout.tsx";
import { OnlyOperators } from "./calls.tsx";

const PAGE_SIZE = 50;

/** What a row's detail says, as text: `before 3, after 4`. */
const detailText = (row: ActivityRow) =>
  Object.entries(row.detail ?? {})
    .filter(([, value]) => value !== undefined && value !== null)
    .map(([key, value]) => `${key} ${typeof value === "object" ? JSON.stringify(value) : String(value)}`)
    .join(", ");

/** A target as a link to what it is about, where there is a page for it. */
const Target: FC<{ row: ActivityRow }> = ({ row }) => {
  const target = row.target;
  if (target === undefined) return <span class="muted">—</span>;
  if (row.action.startsWith("destination.")) {
    return <a href={`/console/destinations/${encodeURIComponent(target)}`}>{target}</a>;
  }
  if (row.action.startsWith("rules.")) {
    return <a href={`/console/rules/versions/${encodeURIComponent(target)}`}>{`version ${target}`}</a>;
  }
  return <span class="id">{target}</span>;
};

/** GET /console/activity: who changed what, newest first, filtered as GET /admin/activity is. */
export async function activityListPage(c: Context<ConsoleEnv>): Promise<Response> {
  const page = await activityPage(c, PAGE_SIZE);
  const q = (name: string) => c.req.query(name) ?? "";
  const next = new URLSearchParams([...new URL(c.req.url).searchParams].filter(([k]) => k !== "cursor"));
  if (page.cursor !== undefined) next.set("cursor", page.cursor);
  return render(
    c,
    <Page title="Activity" notice={noticeOf(c)} {...framed(c, "/console/activity")}>
      <p>
        Every change made through the console or the admin API, written before it was made, and every sign-in, failed
        sign-in and sign-out. Rows are never edited.
      </p>
      <search>
        <form class="filters" method="get" action="/console/activity">
          <div class="field">
            <label for="actor">Who</label>
            <input type="text" id="actor" name="actor" value={q("actor")} maxlength={200} />
          </div>
          <div class="field">
            <label for="action">Action</label>
            <select id="action" name="action">
              <option value="">any</option>
              {ACTIONS.map((action) => (
                <option value={action} selected={action === q("action")}>
                  {action}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="target">Target</label>
            <input type="text" id="target" name="target" value={q("target")} maxlength={200} />
          </div>
          <div>
            <button type="submit">Show</button>
          </div>
        </form>
      </search>
      {page.items.length === 0 ? (
        <p>{c.req.query("cursor") === undefined ? "No activity matches." : "No more activity matches."}</p>
      ) : (
        <Scroll label="Activity">
          <table class="records">
            <caption class="muted">Newest first</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">Action</th>
                <th scope="col">Target</th>
                <th scope="col">Outcome</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((row) => (
                <tr id={`activity-${row.id}`}>
                  <td data-label="When">
                    <a href={`/console/activity/${row.id}`}>
                      <Time at={row.at} />
                    </a>
                  </td>
                  <th scope="row">
                    <Wrap text={row.actor} />
                    {` (${row.role}, ${row.via})`}
                  </th>
                  <td data-label="Action">{row.action}</td>
                  <td data-label="Target">
                    <Target row={row} />
                  </td>
                  <td class="lead" data-label="Outcome">
                    <span class={`badge ${row.outcome === "ok" ? "s-delivered" : "s-dead"}`}>{row.outcome}</span>
                  </td>
                  <td class="why" data-label="Detail">
                    {detailText(row)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}
      <Pager
        newest={c.req.query("cursor") === undefined ? undefined : newest(c)}
        next={page.cursor === undefined ? undefined : `/console/activity?${next}`}
      />
      {canChange(c) && (
        <>
          <h2>Sessions</h2>
          <div class="actions">
            <ActionLink href="/console/sessions/end-all" danger>
              Sign out everywhere…
            </ActionLink>
            <span class="muted">
              Ends every console session made with a token, yours too (Access sessions end in Access).
            </span>
          </div>
        </>
      )}
    </Page>,
  );
}

/** The activity log's first page with the same filters. */
function newest(c: Context<ConsoleEnv>): string {
  const params = new URLSearchParams([...new URL(c.req.url).searchParams].filter(([k]) => k !== "cursor"));
  const search = params.toString();
  return search === "" ? "/console/activity" : `/console/activity?${search}`;
}

/** GET /console/sessions/end-all: what "Sign out everywhere" ends, and the form that does it. */
export function endAllPage(c: Context<ConsoleEnv>): Promise<Response> {
  return render(
    c,
    <Page title="Sign out everywhere?" {...framed(c, "/console/activity")}>
      <p>
        Every console session made with a token ends at once, yours too: everyone signed in with ADMIN_TOKEN or
        VIEWER_TOKEN signs in again. Sessions through Cloudflare Access end in Access, not here.
      </p>
      {canChange(c) ? (
        <form class="actions" method="post" action="/console/sessions/end-all">
          <CsrfField token={c.get("csrf")!} />
          <button type="submit" class="danger">
            Sign everyone out
          </button>
          <a href="/console/activity">Cancel</a>
        </form>
      ) : (
        <OnlyOperators />
      )}
    </Page>,
  );
}

/** GET /console/activity/:id: one row (alerts and the destinations page link here). */
export async function activityRowPage(c: Context<ConsoleEnv>): Promise<Response> {
  const row = await activityRow(c);
  return render(
    c,
    <Page title={`Activity #${row.id}`} {...framed(c, "/console/activity")}>
      <dl class="facts">
        <dt>When</dt>
        <dd>
          <Time at={row.at} />
        </dd>
        <dt>Who</dt>
        <dd>
          <Wrap text={row.actor} />
        </dd>
        <dt>Role</dt>
        <dd>{row.role}</dd>
        <dt>Through</dt>
        <dd>{row.via === "api" ? "the admin API" : "the console"}</dd>
        <dt>Action</dt>
        <dd>{row.action}</dd>
        <dt>Target</dt>
        <dd>
          <Target row={row} />
        </dd>
        <dt>Outcome</dt>
        <dd>{row.outcome}</dd>
        <dt>Detail</dt>
        <dd class="why">{detailText(row) || "—"}</dd>
        <dt>Address</dt>
        <dd class="id">{row.ip ?? "—"}</dd>
      </dl>
      <p>
        <a href={`/console/activity?actor=${encodeURIComponent(row.actor)}`}>{`Everything ${row.actor} did`}</a>
      </p>
    </Page>,
  );
}
