/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import { cursorParam, oneOfParam, textParam } from "../../admin/query.ts";
import { bodyFor } from "../../delivery/body.ts";
import { GiveUp, maskedRequest } from "../../delivery/request.ts";
import { TransformFailed } from "../../delivery/transform.ts";
import { KNOWN_ACTIONS } from "../../extend/actions.ts";
import { parseCall } from "../../extend/envelope.ts";
import { CALL_STATUSES, type DeliveryView, worstStatus } from "../../ledger/views.ts";
import { resendDelivery } from "../../ops/deliveries.ts";
import { opContext } from "../../ops/record.ts";
import { ClaimUnreadable } from "../../payloads.ts";
import { explain, type RouteVerdict } from "../../rules/explain.ts";
import type { ConsoleEnv } from "../env.ts";
import { field } from "../forms.ts";
import {
  ActionLink,
  Attempts,
  AutoRefresh,
  CsrfField,
  canChange,
  framed,
  List,
  noticeOf,
  Page,
  Pager,
  REFRESH_SECONDS,
  readableError,
  redirectWithNotice,
  render,
  Scroll,
  Status,
  Text,
  Time,
  Wrap,
} from "../layout.tsx";
import { currentRules } from "../rules-state.ts";
import { PausedWarning, statesOf } from "./destinations.tsx";
import { errorPage } from "./errors.tsx";

const WINDOWS = ["1h", "24h", "7d"] as const;
const WINDOW_MS: Record<(typeof WINDOWS)[number], number> = { "1h": 3_600_000, "24h": 86_400_000, "7d": 604_800_000 };
const WINDOW_LABELS: Record<(typeof WINDOWS)[number], string> = {
  "1h": "the last hour",
  "24h": "the last 24 hours",
  "7d": "the last 7 days",
};
const PAGE_SIZE = 50;

/**
 * GET /console/calls: one search box (a call Id opens that call; anything else is a business key: an order,
 * product, customer, invoice or offer number), filters, and the calls newest first, a page at a time.
 */
export async function callsPage(c: Context<ConsoleEnv>): Promise<Response> {
  const q = textParam(c, "q");
  const filter = {
    action: textParam(c, "action"),
    destination: textParam(c, "destination"),
    status: oneOfParam(c, "status", CALL_STATUSES),
    window: oneOfParam(c, "window", WINDOWS),
    cursor: cursorParam(c),
  };
  const refresh = oneOfParam(c, "refresh", REFRESH_SECONDS);
  if (q !== undefined && filter.cursor === undefined && (await c.var.ledger.hasCall(q))) {
    return c.redirect(`/console/calls/${encodeURIComponent(q)}`, 303);
  }
  const [page, rules] = await Promise.all([
    c.var.ledger.listCalls({
      key: q,
      action: filter.action,
      destination: filter.destination,
      status: filter.status,
      since: filter.window === undefined ? undefined : Date.now() - WINDOW_MS[filter.window],
      limit: PAGE_SIZE,
      cursor: filter.cursor,
    }),
    currentRules(c),
  ]);
  const destinations = [
    ...new Set([
      ...("rules" in rules ? Object.keys(rules.rules.destinations) : []),
      ...(filter.destination === undefined ? [] : [filter.destination]),
    ]),
  ];
  /** This search's address: its filters, and `extra` (a cursor); empty fields and the cursor left out. */
  const query = (extra: Record<string, string>) => {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries({ q, ...filter, cursor: undefined, ...extra })) {
      if (typeof value === "string") params.set(key, value);
    }
    const search = params.toString();
    return search === "" ? "/console/calls" : `/console/calls?${search}`;
  };
  const filtered = q !== undefined || Object.values(filter).some((v) => v !== undefined);
  return render(
    c,
    <Page
      title="Calls"
      notice={noticeOf(c)}
      refresh={refresh === undefined ? undefined : Number(refresh)}
      {...framed(c, "/console/calls")}
    >
      <AutoRefresh path="/console/calls" params={new URL(c.req.url).searchParams} every={refresh} />
      <search>
        <form class="filters" method="get" action="/console/calls">
          <div class="field wide">
            <label for="q">
              Call Id or business key <span class="hint">(order, product, customer, invoice or offer number)</span>
            </label>
            <input type="search" id="q" name="q" value={q ?? ""} maxlength={200} />
          </div>
          <div class="field">
            <label for="action">Action</label>
            <input type="text" id="action" name="action" value={filter.action ?? ""} list="actions" maxlength={200} />
            <datalist id="actions">
              {KNOWN_ACTIONS.map((action) => (
                <option value={action} />
              ))}
            </datalist>
          </div>
          <div class="field">
            <label for="destination">Destination</label>
            <select id="destination" name="destination">
              <option value="">any</option>
              {destinations.map((name) => (
                <option value={name} selected={name === filter.destination}>
                  {name}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="status">Status</label>
            <select id="status" name="status">
              <option value="">any</option>
              {CALL_STATUSES.map((status) => (
                <option value={status} selected={status === filter.status}>
                  {status === "no_deliveries" ? "no deliveries" : status}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="window">Received</label>
            <select id="window" name="window">
              <option value="">any time</option>
              {WINDOWS.map((window) => (
                <option value={window} selected={window === filter.window}>
                  {`in ${WINDOW_LABELS[window]}`}
                </option>
              ))}
            </select>
          </div>
          {refresh !== undefined && <input type="hidden" name="refresh" value={refresh} />}
          <div>
            <button type="submit">Search</button>
          </div>
        </form>
      </search>
      {filtered && (
        <p>
          <a href="/console/calls">Clear the search</a>
        </p>
      )}
      {page.items.length === 0 ? (
        <p>{filter.cursor === undefined ? "No calls match." : "No more calls match."}</p>
      ) : (
        <Scroll label="Calls">
          <table class="records">
            <caption class="muted">Newest first</caption>
            <thead>
              <tr>
                <th scope="col">Received</th>
                <th scope="col">Call</th>
                <th scope="col">Actions</th>
                <th scope="col">Keys</th>
                <th scope="col" class="num">
                  Deliveries
                </th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((call) => (
                <tr>
                  <td data-label="Received">
                    <Time at={call.receivedAt} />
                  </td>
                  <th scope="row" class="id mono">
                    <a href={`/console/calls/${encodeURIComponent(call.id)}`}>{call.id}</a>
                  </th>
                  <td data-label="Actions">
                    <List items={call.actions} />
                  </td>
                  <td class="id" data-label="Keys">
                    <List items={call.keys} />
                  </td>
                  <td class="num" data-label="Deliveries">
                    {call.deliveries}
                  </td>
                  <td class="lead" data-label="Status">
                    <Status status={call.status} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}
      <Pager
        newest={filter.cursor === undefined ? undefined : query({})}
        next={page.cursor === undefined ? undefined : query({ cursor: page.cursor })}
      />
    </Page>,
  );
}

/** GET /console/calls/:id: the trace of one call, why the other routes did not match, and every attempt. */
export async function callPage(c: Context<ConsoleEnv>): Promise<Response> {
  const id = c.req.param("id")!;
  const trace = await c.var.ledger.getCall(id);
  if (trace === null) {
    return errorPage(
      c,
      404,
      `The ledger has no call with Id ${id}: never accepted, not written yet (a few seconds after the answer), or past retention.`,
      { code: "call_not_found" },
    );
  }
  const [verdicts, rules] = await Promise.all([otherRoutes(c, id), currentRules(c)]);
  const requests = await Promise.all(trace.deliveries.map((d) => requestOf(c, d, rules)));
  const worst = worstStatus(trace.deliveries.map((d) => d.status));
  return render(
    c,
    <Page title={`Call ${id}`} notice={noticeOf(c)} {...framed(c, "/console/calls")}>
      <dl class="facts">
        <dt>Id</dt>
        <dd class="mono">{trace.id}</dd>
        <dt>Received</dt>
        <dd>
          <Time at={trace.receivedAt} />
        </dd>
        <dt>Sender attempts</dt>
        <dd>{trace.senderAttempts.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(", ") || "—"}</dd>
        <dt>Status</dt>
        <dd>
          <Status status={worst} />
        </dd>
      </dl>

      <h2>Notifications</h2>
      <Notifications rows={trace.notifications} empty="The call held no notifications." keys />

      <h2>Deliveries</h2>
      {trace.deliveries.length === 0 ? (
        <p>No deliveries: no route matched any notification.</p>
      ) : (
        trace.deliveries.map((delivery, i) => (
          <Delivery delivery={delivery} operator={canChange(c)} request={requests[i]!} />
        ))
      )}

      <h2>Routes that did not match</h2>
      {"problem" in rules ? (
        <p>{`The current rules cannot be read, so this cannot be explained: ${rules.problem}`}</p>
      ) : verdicts === undefined ? (
        <p>The ledger no longer holds (or does not yet hold) this call's text, so this cannot be explained.</p>
      ) : (
        <>
          <p class="muted">As the current rules see this call's notifications (they may have changed since).</p>
          <Verdicts verdicts={verdicts(rules.rules)} folded />
        </>
      )}
    </Page>,
  );
}

/** What became of each notification: the trace's, or the dry run's (whose notifications have no `key`). */
export const Notifications: FC<{
  rows: {
    index: number;
    action: string;
    warehouse: string | null;
    key?: string | null;
    routes: string[];
    destinations: string[];
  }[];
  /** Said when there are none. */
  empty: string;
  keys: boolean;
}> = ({ rows, empty, keys }) =>
  rows.length === 0 ? (
    <p>{empty}</p>
  ) : (
    <Scroll label="Notifications">
      <table class="records">
        <thead>
          <tr>
            <th scope="col" class="num">
              #
            </th>
            <th scope="col">Action</th>
            <th scope="col">Warehouse</th>
            {keys && <th scope="col">Key</th>}
            <th scope="col">Routes</th>
            <th scope="col">Destinations</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((n) => (
            <tr>
              <th scope="row" class="num" data-label="#">
                {n.index}
              </th>
              <td data-label="Action">{n.action}</td>
              <td data-label="Warehouse">{n.warehouse ?? <span class="muted">—</span>}</td>
              {keys && (
                <td class="id" data-label="Key">
                  {n.key ?? <span class="muted">—</span>}
                </td>
              )}
              <td data-label="Routes">
                <List items={n.routes} />
              </td>
              <td data-label="Destinations">
                <List items={n.destinations} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );

/** Per notification of the stored call, the routes that did not match it, with the reason. */
async function otherRoutes(c: Context<ConsoleEnv>, id: string) {
  const text = await c.var.ledger.getCallText(id);
  if (text === null) return undefined;
  let notifications: ReturnType<typeof parseCall>["envelope"]["Notifications"];
  try {
    notifications = parseCall(new TextEncoder().encode(text)).envelope.Notifications;
  } catch {
    return undefined;
  }
  return (rules: Parameters<typeof explain>[0]) =>
    notifications.map((notification, index) => ({
      index,
      action: notification.Action,
      notMatched: explain(rules, notification).filter((v) => !v.matched),
    }));
}

/** Beyond this many rows, the routes that did not match are folded away (a summary opens them). */
const FOLDED_ROWS = 8;

export const Verdicts: FC<{
  verdicts: { index: number; action: string; notMatched: RouteVerdict[] }[];
  /** Fold a long table under a summary that opens it (no script: `<details>`). */
  folded?: boolean;
}> = ({ verdicts, folded }) => {
  const rows = verdicts.flatMap((n) => n.notMatched.map((v) => ({ ...n, verdict: v })));
  if (rows.length === 0) return <p>Every route matched.</p>;
  const table = (
    <Scroll label="Routes that did not match">
      <table class="records">
        <thead>
          <tr>
            <th scope="col" class="num">
              #
            </th>
            <th scope="col">Action</th>
            <th scope="col">Route</th>
            <th scope="col">Reason</th>
            <th scope="col">Why</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr>
              <td class="num" data-label="#">
                {row.index}
              </td>
              <td data-label="Action">{row.action}</td>
              <th scope="row">{row.verdict.route}</th>
              <td data-label="Reason">{row.verdict.reason ?? ""}</td>
              <td class="why" data-label="Why">
                {row.verdict.detail ?? ""}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );
  if (folded !== true || rows.length <= FOLDED_ROWS) return table;
  return (
    <details>
      <summary>{`Show the ${rows.length} routes that did not match, and why`}</summary>
      {table}
    </details>
  );
};

/** The call a delivery id belongs to (call Ids hold no dots). */
const callOfDelivery = (deliveryId: string) => deliveryId.slice(0, deliveryId.indexOf("."));

/** A delivery's card's id: its destination's name for the call's first, else what its id adds (`wms.n1`). */
const cardId = (d: DeliveryView) =>
  d.deliveryId === `${d.callId}.${d.destination}` ? d.destination : d.deliveryId.slice(d.callId.length + 1);

const Delivery: FC<{ delivery: DeliveryView; operator: boolean; request: ShownRequest }> = ({
  delivery,
  operator,
  request,
}) => (
  <section class="card" id={`delivery-${cardId(delivery)}`} aria-labelledby={`title-${cardId(delivery)}`}>
    <h3 id={`title-${cardId(delivery)}`}>
      {`${delivery.destination} `}
      <Status status={delivery.status} />
    </h3>
    <dl class="facts">
      <dt>Delivery id</dt>
      <dd class="mono">{delivery.deliveryId}</dd>
      <dt>Routes</dt>
      <dd>
        <List items={delivery.routes} />
      </dd>
      <dt>Notifications</dt>
      <dd>{delivery.notifications.map((i) => `#${i}`).join(", ")}</dd>
      {delivery.deliveredAt !== undefined && (
        <>
          <dt>Delivered</dt>
          <dd>
            <Time at={delivery.deliveredAt} />
          </dd>
        </>
      )}
      {delivery.held !== undefined && (
        <>
          <dt>Held</dt>
          <dd>
            {`${delivery.held.reason.replace("_", " ")} since `}
            <Time at={delivery.held.since} />
            {delivery.held.waitsFor !== undefined && (
              <>
                {", waiting for "}
                <a class="mono" href={`/console/calls/${encodeURIComponent(callOfDelivery(delivery.held.waitsFor))}`}>
                  {delivery.held.waitsFor}
                </a>
              </>
            )}
          </dd>
        </>
      )}
      {delivery.supersededBy !== undefined && (
        <>
          <dt>Superseded by</dt>
          <dd>
            <a class="mono" href={`/console/calls/${encodeURIComponent(callOfDelivery(delivery.supersededBy))}`}>
              {delivery.supersededBy}
            </a>
            {" (a newer notification about the same thing; resending this sends that one)"}
          </dd>
        </>
      )}
      {delivery.dead !== undefined && (
        <>
          <dt>Dead letter</dt>
          <dd>
            {`${delivery.dead.reason}: ${readableError(delivery.dead.detail)} `}
            <a href={`/console/dead-letters/${encodeURIComponent(delivery.deliveryId)}`}>Open the dead letter</a>
          </dd>
        </>
      )}
    </dl>
    {operator && (
      <div class="actions">
        <ActionLink
          href={`/console/deliveries/${encodeURIComponent(delivery.deliveryId)}/resend`}
          label={`Resend to ${delivery.destination}`}
        >
          Resend…
        </ActionLink>
        <span class="muted">Sends it again under the same delivery id, attempts afresh; asks first.</span>
      </div>
    )}
    <Attempts attempts={delivery.attempts} label={`Attempts to ${delivery.destination}`} empty="No attempts yet." />
    <Request request={request} destination={delivery.destination} />
  </section>
);

/** Bodies longer than this are shown cut (and no curl command is given for them). */
const SHOWN_BODY = 64 * 1024;

/** A delivery's request as its next attempt would send it, masked (src/delivery/request.ts), or why there is none. */
type ShownRequest = ({ attempt: number } & Awaited<ReturnType<typeof maskedRequest>>) | { problem: string };

/**
 * The request of a delivery's latest attempt (the first, before any), built as the sender builds it with the
 * rules as they stand now (docs/console.md, "A delivery's requests"), every secret and signature masked.
 */
async function requestOf(
  c: Context<ConsoleEnv>,
  view: DeliveryView,
  rules: Awaited<ReturnType<typeof currentRules>>,
): Promise<ShownRequest> {
  if ("problem" in rules) return { problem: `The current rules cannot be read: ${rules.problem}` };
  const destination = Object.hasOwn(rules.rules.destinations, view.destination)
    ? rules.rules.destinations[view.destination]
    : undefined;
  if (destination === undefined) {
    return { problem: `The current rules have no destination ${view.destination}: it would not be sent.` };
  }
  const stored = await c.var.ledger.getDelivery(view.deliveryId);
  if (stored?.unreadable === true) return { problem: "The relay keeps its message but cannot read it." };
  if (stored?.message === undefined) {
    return {
      problem:
        view.status === "pending"
          ? "It is shown once its first attempt is recorded."
          : "The ledger no longer holds the call's text it is built from.",
    };
  }
  const attempt = (view.attempts ?? []).at(-1)?.attempt ?? 1;
  try {
    const body = await bodyFor(stored.message, attempt, c.env.PAYLOADS, destination);
    const shown = await maskedRequest(stored.message, destination, body, attempt, c.env, Math.floor(Date.now() / 1000));
    return { attempt, ...shown };
  } catch (error) {
    if (error instanceof GiveUp)
      return { problem: `It cannot be sent as the rules and secrets stand: ${error.message}` };
    if (error instanceof ClaimUnreadable || error instanceof TransformFailed) {
      return { problem: `Its body cannot be made now: ${readableError(error.message)}` };
    }
    throw error;
  }
}

/** The request, folded: URL, headers, body, and the same as a curl command in a box of its own (select to copy). */
const Request: FC<{ request: ShownRequest; destination: string }> = ({ request, destination }) => (
  <details class="request">
    <summary>
      {"problem" in request ? "The request it sends" : `The request it sends (attempt ${request.attempt})`}
    </summary>
    {"problem" in request ? (
      <p>{request.problem}</p>
    ) : (
      <>
        <p class="muted">
          Secrets show by their names and signatures as [signature]: put them in to send it yourself. The signature and
          its time differ at each attempt.
        </p>
        <dl class="facts">
          <dt>URL</dt>
          <dd>
            <Wrap text={request.url} />
          </dd>
        </dl>
        <h4>Headers</h4>
        <Text
          label={`Headers of the request to ${destination}`}
          text={request.headers.map(([name, value]) => `${name}: ${value}`).join("\n")}
        />
        <h4>Body</h4>
        {request.body.length > SHOWN_BODY && (
          <p class="muted">{`The first ${SHOWN_BODY.toLocaleString("en")} of its ${request.body.length.toLocaleString("en")} characters.`}</p>
        )}
        <Text label={`Body of the request to ${destination}`} text={request.body.slice(0, SHOWN_BODY)} />
        <details class="curl">
          <summary>Copy as curl</summary>
          {request.body.length > SHOWN_BODY ? (
            <p>The body is too long for a command to paste.</p>
          ) : (
            <Text label={`The request to ${destination} as curl`} text={request.curl} />
          )}
        </details>
      </>
    )}
  </details>
);

/** GET /console/deliveries/:id/resend: what a resend does, a warning if its destination is paused, and the form. */
export async function resendConfirmPage(c: Context<ConsoleEnv>): Promise<Response> {
  const id = c.req.param("id")!;
  const delivery = await c.var.ledger.getDelivery(id);
  if (delivery === null) {
    return errorPage(c, 404, `The ledger has no delivery ${id} (never planned, or past retention).`, {
      code: "delivery_not_found",
    });
  }
  const back = `/console/calls/${encodeURIComponent(delivery.callId)}`;
  const states = await statesOf(c, [delivery.destination]);
  const csrf = canChange(c) ? c.get("csrf") : undefined;
  return render(
    c,
    <Page title={`Resend to ${delivery.destination}?`} {...framed(c, "/console/calls")}>
      <PausedWarning states={states} what="the delivery" />
      <p>
        {`The delivery goes to ${delivery.destination} again, under the same delivery id, with its attempts counted afresh. `}
        {delivery.status === "delivered"
          ? "It was delivered: the receiver gets it twice, and should ignore it by its delivery id if it must."
          : `It is ${delivery.status} now.`}
      </p>
      <dl class="facts">
        <dt>Delivery</dt>
        <dd class="mono">{delivery.deliveryId}</dd>
        <dt>Call</dt>
        <dd class="mono">
          <a href={back}>{delivery.callId}</a>
        </dd>
        <dt>Status</dt>
        <dd>
          <Status status={delivery.status} />
        </dd>
        <dt>Attempts so far</dt>
        <dd>{(delivery.attempts ?? []).length}</dd>
      </dl>
      {csrf === undefined ? (
        <OnlyOperators />
      ) : (
        <form class="actions" method="post" action={`/console/deliveries/${encodeURIComponent(id)}/resend`}>
          <CsrfField token={csrf} />
          <input type="hidden" name="call" value={delivery.callId} />
          <button type="submit">Resend it</button>
          <a href={back}>Cancel</a>
        </form>
      )}
    </Page>,
  );
}

/** What a viewer sees instead of a confirmation's form. */
export const OnlyOperators: FC = () => (
  <p>
    <strong>Only an operator can do this</strong>; you are signed in to look.
  </p>
);

/** POST /console/deliveries/:id/resend: the admin API's resend, then back to the call. */
export async function resendFromConsole(c: Context<ConsoleEnv>): Promise<Response> {
  const id = c.req.param("id")!;
  await resendDelivery(opContext(c), id);
  const call = await field(c, "call");
  return redirectWithNotice(
    c,
    call === undefined ? "/console/calls" : `/console/calls/${encodeURIComponent(call)}`,
    "resent",
  );
}
