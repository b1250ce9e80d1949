/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import { cursorParam, textParam } from "../../admin/query.ts";
import { bodyFor } from "../../delivery/body.ts";
import { deleteDeadLetter, REPLAY_BATCH, replayDeadLetter, replayDeadLetters } from "../../ops/dead-letters.ts";
import { opContext } from "../../ops/record.ts";
import { ClaimUnreadable } from "../../payloads.ts";
import { DEAD_LETTER_REASONS } from "../../queues/dead-letter.ts";
import type { Delivery } from "../../queues/delivery.ts";
import type { ConsoleEnv } from "../env.ts";
import { field } from "../forms.ts";
import {
  ActionLink,
  Attempts,
  CsrfField,
  canChange,
  framed,
  noticeOf,
  Page,
  Pager,
  readableError,
  redirectWithNotice,
  render,
  Scroll,
  Text,
  Time,
} from "../layout.tsx";
import { currentRules } from "../rules-state.ts";
import { OnlyOperators } from "./calls.tsx";
import { PausedWarning, statesOf } from "./destinations.tsx";
import { errorPage } from "./errors.tsx";
import { bulkPath } from "./jobs.tsx";

const PAGE_SIZE = 50;
/** Bulk replay rounds one "Replay all" runs (each takes up to 100 dead letters), within a request's limits. */
const REPLAY_ROUNDS = 5;

const listPath = (destination: string | undefined) =>
  destination === undefined
    ? "/console/dead-letters"
    : `/console/dead-letters?destination=${encodeURIComponent(destination)}`;

/** The page that asks before `action` on one dead letter, returning to the list of `back` (a destination). */
const askPath = (id: string, action: "replay" | "delete", back?: string) =>
  `/console/dead-letters/${encodeURIComponent(id)}/${action}${back === undefined ? "" : `?back=${encodeURIComponent(back)}`}`;

/** The page that asks before replaying every dead letter (of one destination). */
const askAllPath = (destination: string | undefined) =>
  destination === undefined
    ? "/console/dead-letters/replay"
    : `/console/dead-letters/replay?destination=${encodeURIComponent(destination)}`;

/** GET /console/dead-letters: how many each destination has, the list (by destination), and the actions. */
export async function deadLettersPage(c: Context<ConsoleEnv>): Promise<Response> {
  const destination = textParam(c, "destination");
  const cursor = cursorParam(c);
  // Every dead letter in the ledger, by destination, whatever its age.
  const [page, all, rules] = await Promise.all([
    c.var.ledger.listDeadLetters({ destination, cursor, limit: PAGE_SIZE }),
    c.var.ledger.deadLetterCounts(),
    currentRules(c),
  ]);
  const counts = Object.entries(all).sort(([a], [b]) => a.localeCompare(b));
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  const names = [
    ...new Set([
      ...counts.map(([name]) => name),
      ...("rules" in rules ? Object.keys(rules.rules.destinations) : []),
      ...(destination === undefined ? [] : [destination]),
    ]),
  ];
  const operator = canChange(c);
  return render(
    c,
    <Page title="Dead letters" notice={noticeOf(c)} {...framed(c, "/console/dead-letters")}>
      <p>
        Deliveries that were given up: each is kept, with why, until it is replayed or deleted (or its time in the
        ledger runs out).
      </p>
      <h2>By destination</h2>
      {counts.length === 0 ? (
        <p>No dead letters.</p>
      ) : (
        <Scroll label="Dead letters by destination">
          <table class="records">
            <thead>
              <tr>
                <th scope="col">Destination</th>
                <th scope="col" class="num">
                  Dead letters
                </th>
                {operator && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {counts.map(([name, n]) => (
                <tr>
                  <th scope="row">
                    <a href={listPath(name)} aria-current={name === destination ? "true" : undefined}>
                      {name}
                    </a>
                  </th>
                  <td class="num" data-label="Dead letters">
                    {n}
                  </td>
                  {operator && (
                    <td class="lead">
                      <ReplayAll destination={name} count={n} />
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row">All</th>
                <td class="num" data-label="Dead letters">
                  {total}
                </td>
                {operator && (
                  <td class="lead">
                    <ReplayAll count={total} />
                  </td>
                )}
              </tr>
            </tfoot>
          </table>
        </Scroll>
      )}

      <h2>{destination === undefined ? "All dead letters" : `Dead letters of ${destination}`}</h2>
      <form class="filters" method="get" action="/console/dead-letters">
        <div class="field">
          <label for="destination">Destination</label>
          <select id="destination" name="destination">
            <option value="">all</option>
            {names.map((name) => (
              <option value={name} selected={name === destination}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <div>
          <button type="submit">Show</button>
        </div>
      </form>
      {operator && page.items.length > 0 && (
        <div class="actions">
          <ActionLink href={bulkPath("replay", { destination, status: "dead" })}>Replay all matching…</ActionLink>
          <ActionLink href={bulkPath("delete", { destination, status: "dead" })} danger>
            Delete all matching…
          </ActionLink>
          <span class="muted">
            In the background, however many: <a href="/console/jobs">bulk actions so far</a>.
          </span>
        </div>
      )}
      {page.items.length === 0 ? (
        <p>{cursor === undefined ? "None." : "No more."}</p>
      ) : (
        <Scroll label="Dead letters">
          <table class="records wide">
            <caption class="muted">Newest first</caption>
            <thead>
              <tr>
                <th scope="col">Dead since</th>
                <th scope="col">Delivery</th>
                <th scope="col">Destination</th>
                <th scope="col">Reason</th>
                <th scope="col" class="num">
                  Attempts
                </th>
                <th scope="col" class="num">
                  Last status
                </th>
                {operator && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {page.items.map((item) => (
                <tr>
                  <td data-label="Dead since">
                    <Time at={item.deadAt} />
                  </td>
                  <th scope="row" class="id mono">
                    <a href={`/console/dead-letters/${encodeURIComponent(item.deliveryId)}`}>{item.deliveryId}</a>
                  </th>
                  <td data-label="Destination">{item.destination}</td>
                  <td data-label="Reason">{item.reason}</td>
                  <td class="num" data-label="Attempts">
                    {item.attempts}
                  </td>
                  <td class="num" data-label="Last status">
                    {item.lastStatus ?? <span class="muted">—</span>}
                  </td>
                  {operator && (
                    <td class="lead">
                      <div class="actions">
                        <RecordAction id={item.deliveryId} action="replay" back={destination} />
                        <RecordAction id={item.deliveryId} action="delete" back={destination} />
                      </div>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}
      <Pager
        newest={cursor === undefined ? undefined : listPath(destination)}
        next={
          page.cursor === undefined
            ? undefined
            : `/console/dead-letters?${new URLSearchParams({ ...(destination !== undefined && { destination }), cursor: page.cursor })}`
        }
      />
    </Page>,
  );
}

/** "Replay all…": to the page that asks first. */
const ReplayAll: FC<{ destination?: string; count: number }> = ({ destination, count }) => (
  <ActionLink href={askAllPath(destination)}>
    {destination === undefined ? `Replay all (${count})…` : `Replay all of ${destination} (${count})…`}
  </ActionLink>
);

/** "Replay…" or "Delete…" of one dead letter: to the page that asks first. */
const RecordAction: FC<{ id: string; action: "replay" | "delete"; back?: string | undefined }> = ({
  id,
  action,
  back,
}) => (
  <ActionLink
    href={askPath(id, action, back)}
    label={`${action === "delete" ? "Delete" : "Replay"} ${id}`}
    danger={action === "delete"}
  >
    {action === "delete" ? "Delete…" : "Replay…"}
  </ActionLink>
);

/** GET /console/dead-letters/:id: the record, its attempts, and the body it sends when replayed. */
export async function deadLetterPage(c: Context<ConsoleEnv>): Promise<Response> {
  const id = c.req.param("id")!;
  const [stored, delivery] = await Promise.all([c.var.ledger.getDeadLetter(id), c.var.ledger.getDelivery(id)]);
  if (stored === null) {
    return errorPage(c, 404, `There is no dead letter with delivery id ${id} (replayed, deleted, or expired).`, {
      code: "dead_letter_not_found",
    });
  }
  const operator = canChange(c);
  if ("unreadable" in stored) {
    return render(
      c,
      <Page title={`Dead letter ${id}`} {...framed(c, "/console/dead-letters")}>
        <div class="problem" role="alert">
          <p>{`This dead letter is stored, but the relay cannot read it: ${stored.unreadable}. It cannot be replayed; delete it.`}</p>
        </div>
        {operator && <RecordAction id={id} action="delete" />}
      </Page>,
    );
  }
  const record = stored.record;
  // What the reason means, as docs/operations.md says it (without its Markdown).
  const meaning = Object.hasOwn(DEAD_LETTER_REASONS, record.reason)
    ? DEAD_LETTER_REASONS[record.reason].replaceAll("`", "")
    : undefined;
  return render(
    c,
    <Page title={`Dead letter ${id}`} notice={noticeOf(c)} {...framed(c, "/console/dead-letters")}>
      <dl class="facts">
        <dt>Destination</dt>
        <dd>{record.destination}</dd>
        <dt>Reason</dt>
        <dd>
          <code>{record.reason}</code>
          {meaning !== undefined && ` — ${meaning}`}
        </dd>
        <dt>Detail</dt>
        <dd>{readableError(record.detail)}</dd>
        <dt>Attempts</dt>
        <dd>{record.attempts}</dd>
        {record.lastStatus !== undefined && (
          <>
            <dt>Last status</dt>
            <dd>{record.lastStatus}</dd>
          </>
        )}
        {record.lastError !== undefined && (
          <>
            <dt>Last error</dt>
            <dd class="id">{readableError(record.lastError)}</dd>
          </>
        )}
        {/* firstAttemptAt is when the relay accepted the call, which is what it shows. */}
        <dt>Received</dt>
        <dd>
          <Time at={record.firstAttemptAt} />
        </dd>
        <dt>Last attempt</dt>
        <dd>
          <Time at={record.lastAttemptAt} />
        </dd>
        <dt>Dead since</dt>
        <dd>
          <Time at={record.deadAt} />
        </dd>
        <dt>Call</dt>
        <dd class="mono">
          {record.message === undefined ? (
            "—"
          ) : (
            <a href={`/console/calls/${encodeURIComponent(record.message.callId)}`}>{record.message.callId}</a>
          )}
        </dd>
      </dl>
      {operator && (
        <div class="actions">
          {record.message !== undefined && <RecordAction id={id} action="replay" />}
          <RecordAction id={id} action="delete" />
        </div>
      )}

      <h2>Attempts</h2>
      <Attempts attempts={delivery?.attempts} label="Attempts" empty="No attempts are recorded." />

      <h2>The body it sends</h2>
      {record.message === undefined ? (
        <p>The record holds no readable delivery message.</p>
      ) : (
        <>
          <p class="muted">As the receiver gets it on the first attempt of a replay (indented here for reading).</p>
          <SentBody body={await shownBody(record.message, c.env.PAYLOADS)} />
        </>
      )}
    </Page>,
  );
}

/** Bodies longer than this (a notification kept in R2 can be megabytes) are shown cut, saying so. */
const SHOWN_BYTES = 64 * 1024;

/** The body of a delivery as the page shows it, or why it cannot be read now. */
async function shownBody(
  message: Delivery,
  payloads: R2Bucket | undefined,
): Promise<{ text: string; cut: number } | { problem: string }> {
  let text: string;
  try {
    text = await bodyFor(message, 1, payloads);
  } catch (error) {
    if (error instanceof ClaimUnreadable) return { problem: error.message };
    throw error;
  }
  const shown = readable(text);
  return shown.length > SHOWN_BYTES
    ? { text: shown.slice(0, SHOWN_BYTES), cut: shown.length }
    : { text: shown, cut: 0 };
}

const SentBody: FC<{ body: Awaited<ReturnType<typeof shownBody>> }> = ({ body }) =>
  "problem" in body ? (
    <div class="problem">
      <p>{`Part of it is kept in R2 and cannot be read now: ${body.problem}. Replaying it ends the same way until it can.`}</p>
    </div>
  ) : (
    <>
      {body.cut > 0 && (
        <p class="muted">{`The first ${SHOWN_BYTES.toLocaleString("en")} of its ${body.cut.toLocaleString("en")} characters.`}</p>
      )}
      <Text label="The body it sends" text={body.text} />
    </>
  );

function readable(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/**
 * GET /console/dead-letters/:id/replay and /delete: what the action does (a delete cannot be undone; a replay
 * into a paused destination waits until it is resumed), with the form that does it.
 */
export async function askOnePage(c: Context<ConsoleEnv>): Promise<Response> {
  const id = c.req.param("id")!;
  const action = c.req.path.endsWith("/delete") ? "delete" : "replay";
  const back = textParam(c, "back");
  const stored = await c.var.ledger.getDeadLetter(id);
  if (stored === null) {
    return errorPage(c, 404, `There is no dead letter with delivery id ${id} (replayed, deleted, or expired).`, {
      code: "dead_letter_not_found",
    });
  }
  const record = "record" in stored ? stored.record : undefined;
  if (action === "replay" && record?.message === undefined) {
    return errorPage(c, 409, `The dead letter ${id} holds no readable delivery message, so it cannot be replayed.`, {
      code: "not_replayable",
    });
  }
  const states = action === "replay" && record !== undefined ? await statesOf(c, [record.destination]) : [];
  const csrf = canChange(c) ? c.get("csrf") : undefined;
  return render(
    c,
    <Page
      title={action === "delete" ? "Delete this dead letter?" : "Replay this dead letter?"}
      {...framed(c, "/console/dead-letters")}
    >
      <PausedWarning states={states} what="the replay" />
      {action === "delete" ? (
        <p>
          <strong>This cannot be undone.</strong>
          {" Its record and the body it would send are removed; the call's page keeps its attempts."}
        </p>
      ) : (
        <p>{`It is sent to ${record!.destination} again, as it was, with its attempts counted afresh; on success it leaves the dead letters.`}</p>
      )}
      <dl class="facts">
        <dt>Delivery</dt>
        <dd class="mono">
          <a href={`/console/dead-letters/${encodeURIComponent(id)}`}>{id}</a>
        </dd>
        {record !== undefined && (
          <>
            <dt>Destination</dt>
            <dd>{record.destination}</dd>
            <dt>Reason</dt>
            <dd>
              <code>{record.reason}</code>
              {` — ${readableError(record.detail)}`}
            </dd>
            <dt>Dead since</dt>
            <dd>
              <Time at={record.deadAt} />
            </dd>
          </>
        )}
      </dl>
      {csrf === undefined ? (
        <OnlyOperators />
      ) : (
        <form class="actions" method="post" action={`/console/dead-letters/${encodeURIComponent(id)}/${action}`}>
          <CsrfField token={csrf} />
          {back !== undefined && <input type="hidden" name="back" value={back} />}
          <button type="submit" class={action === "delete" ? "danger" : undefined}>
            {action === "delete" ? "Delete it" : "Replay it"}
          </button>
          <a href={listPath(back)}>Cancel</a>
        </form>
      )}
    </Page>,
  );
}

/** GET /console/dead-letters/replay: how many a "Replay all" sends (of one destination, or of each), and the form. */
export async function askAllPage(c: Context<ConsoleEnv>): Promise<Response> {
  const destination = textParam(c, "destination");
  const all = await c.var.ledger.deadLetterCounts();
  const counts = Object.entries(all)
    .filter(([name]) => destination === undefined || name === destination)
    .sort(([a], [b]) => a.localeCompare(b));
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  const states = await statesOf(
    c,
    counts.map(([name]) => name),
  );
  const csrf = canChange(c) ? c.get("csrf") : undefined;
  const most = REPLAY_ROUNDS * REPLAY_BATCH;
  return render(
    c,
    <Page
      title={`Replay all ${total} dead letter${total === 1 ? "" : "s"}${destination === undefined ? "" : ` of ${destination}`}?`}
      {...framed(c, "/console/dead-letters")}
    >
      {total === 0 ? (
        <p>There are no dead letters to replay.</p>
      ) : (
        <>
          <PausedWarning states={states} what="its replays" />
          <p>
            {`Each is sent again, as it was, oldest first, with its attempts counted afresh; those delivered leave the dead letters. Up to ${most.toLocaleString("en")} go at one click: beyond that the page says more remain.`}
          </p>
          <ul>
            {counts.map(([name, n]) => (
              <li>{`${name}: ${n}`}</li>
            ))}
          </ul>
          {csrf === undefined ? (
            <OnlyOperators />
          ) : (
            <form class="actions" method="post" action="/console/dead-letters/replay">
              <CsrfField token={csrf} />
              {destination !== undefined && <input type="hidden" name="destination" value={destination} />}
              <button type="submit">{`Replay ${total === 1 ? "it" : `all ${total}`}`}</button>
              <a href={listPath(destination)}>Cancel</a>
            </form>
          )}
        </>
      )}
      {total === 0 && (
        <p>
          <a href={listPath(destination)}>Back to the dead letters</a>
        </p>
      )}
    </Page>,
  );
}

/** POST /console/dead-letters/:id/replay: the admin API's replay of one. */
export async function replayOneFromConsole(c: Context<ConsoleEnv>): Promise<Response> {
  await replayDeadLetter(opContext(c), c.req.param("id")!);
  const back = await field(c, "back");
  return redirectWithNotice(c, listPath(back), "replayed");
}

/** POST /console/dead-letters/:id/delete: the admin API's delete. */
export async function deleteFromConsole(c: Context<ConsoleEnv>): Promise<Response> {
  await deleteDeadLetter(opContext(c), c.req.param("id")!);
  const back = await field(c, "back");
  return redirectWithNotice(c, listPath(back), "deleted");
}

/**
 * POST /console/dead-letters/replay: the admin API's bulk replay, round after round while more remain, up to
 * REPLAY_ROUNDS rounds; beyond that the notice says more remain. A round that replays nothing ends it (only
 * records that cannot be replayed are left in front).
 */
export async function replayAllFromConsole(c: Context<ConsoleEnv>): Promise<Response> {
  const destination = await field(c, "destination");
  let replayed = 0;
  let skipped = new Set<string>();
  let more = false;
  for (let round = 0; round < REPLAY_ROUNDS; round++) {
    const answer = await replayDeadLetters(opContext(c), destination);
    replayed += answer.replayed.length;
    skipped = new Set([...skipped, ...answer.skipped.map((s) => s.deliveryId)]);
    more = answer.more;
    if (!more || answer.replayed.length === 0) break;
  }
  const leftToDo = more && skipped.size === 0;
  return redirectWithNotice(c, listPath(destination), leftToDo ? "replayed_more" : "replayed_all", {
    n: replayed,
    skipped: skipped.size,
  });
}
