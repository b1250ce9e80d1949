/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import { cursorParam, oneOfParam, textParam } from "../../admin/query.ts";
import { KNOWN_ACTIONS } from "../../extend/actions.ts";
import { parseCall } from "../../extend/envelope.ts";
import { getCall, getCallText, hasCall, listCalls } from "../../ledger/calls.ts";
import { CALL_STATUSES, type CallTrace, type DeliveryView, worstStatus } from "../../ledger/views.ts";
import { resendDelivery } from "../../ops/deliveries.ts";
import { opContext } from "../../ops/record.ts";
import { explain, type RouteVerdict } from "../../rules/explain.ts";
import type { ConsoleEnv } from "../env.ts";
import { field } from "../forms.ts";
import {
  Attempts,
  CsrfField,
  canChange,
  framed,
  List,
  noticeOf,
  Page,
  render,
  Scroll,
  Status,
  Time,
  withNotice,
} from "../layout.tsx";
import { currentRules } from "../rules-state.ts";
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
  if (q !== undefined && filter.cursor === undefined && (await hasCall(c.env.LEDGER, q))) {
    return c.redirect(`/console/calls/${encodeURIComponent(q)}`, 303);
  }
  const [page, rules] = await Promise.all([
    listCalls(c.env.LEDGER, {
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
  const query = (extra: Record<string, string>) => {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries({ q, ...filter, cursor: undefined, ...extra })) {
      if (typeof value === "string") params.set(key, value);
    }
    return `/console/calls?${params}`;
  };
  const filtered = q !== undefined || Object.values(filter).some((v) => v !== undefined);
  return render(
    c,
    <Page title="Calls" notice={noticeOf(c)} {...framed(c, "/console/calls")}>
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
          <table>
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
                  <td>
                    <Time at={call.receivedAt} />
                  </td>
                  <th scope="row" class="id mono">
                    <a href={`/console/calls/${encodeURIComponent(call.id)}`}>{call.id}</a>
                  </th>
                  <td>
                    <List items={call.actions} />
                  </td>
                  <td class="id">
                    <List items={call.keys} />
                  </td>
                  <td class="num">{call.deliveries}</td>
                  <td>
                    <Status status={call.status} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}
      <nav aria-label="Pages" class="actions">
        {filter.cursor !== undefined && <a href={query({})}>First page</a>}
        {page.cursor !== undefined && <a href={query({ cursor: page.cursor })}>Next page</a>}
      </nav>
    </Page>,
  );
}

/** GET /console/calls/:id: the trace of one call, why the other routes did not match, and every attempt. */
export async function callPage(c: Context<ConsoleEnv>): Promise<Response> {
  const id = c.req.param("id")!;
  const trace = await getCall(c.env.LEDGER, id);
  if (trace === null) {
    return errorPage(
      c,
      404,
      `The ledger has no call with Id ${id}: never accepted, not written yet (a few seconds after the answer), or past retention.`,
      { code: "call_not_found" },
    );
  }
  const [verdicts, rules] = await Promise.all([otherRoutes(c, id), currentRules(c)]);
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
      <Notifications trace={trace} />

      <h2>Routes that did not match</h2>
      {"problem" in rules ? (
        <p>{`The current rules cannot be read, so this cannot be explained: ${rules.problem}`}</p>
      ) : verdicts === undefined ? (
        <p>The ledger no longer holds (or does not yet hold) this call's text, so this cannot be explained.</p>
      ) : (
        <>
          <p class="muted">As the current rules see this call's notifications (they may have changed since).</p>
          <Verdicts verdicts={verdicts(rules.rules)} />
        </>
      )}

      <h2>Deliveries</h2>
      {trace.deliveries.length === 0 ? (
        <p>No deliveries: no route matched any notification.</p>
      ) : (
        trace.deliveries.map((delivery) => (
          <Delivery delivery={delivery} csrf={canChange(c) ? c.get("csrf") : undefined} />
        ))
      )}
    </Page>,
  );
}

const Notifications: FC<{ trace: CallTrace }> = ({ trace }) =>
  trace.notifications.length === 0 ? (
    <p>The call held no notifications.</p>
  ) : (
    <Scroll label="Notifications">
      <table>
        <thead>
          <tr>
            <th scope="col" class="num">
              #
            </th>
            <th scope="col">Action</th>
            <th scope="col">Warehouse</th>
            <th scope="col">Key</th>
            <th scope="col">Routes</th>
            <th scope="col">Destinations</th>
          </tr>
        </thead>
        <tbody>
          {trace.notifications.map((n) => (
            <tr>
              <th scope="row" class="num">
                {n.index}
              </th>
              <td>{n.action}</td>
              <td>{n.warehouse ?? <span class="muted">—</span>}</td>
              <td class="id">{n.key ?? <span class="muted">—</span>}</td>
              <td>
                <List items={n.routes} />
              </td>
              <td>
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
  const text = await getCallText(c.env.LEDGER, c.env.PAYLOADS, id);
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

export const Verdicts: FC<{ verdicts: { index: number; action: string; notMatched: RouteVerdict[] }[] }> = ({
  verdicts,
}) => {
  const rows = verdicts.flatMap((n) => n.notMatched.map((v) => ({ ...n, verdict: v })));
  if (rows.length === 0) return <p>Every route matched.</p>;
  return (
    <Scroll label="Routes that did not match">
      <table>
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
              <td class="num">{row.index}</td>
              <td>{row.action}</td>
              <th scope="row">{row.verdict.route}</th>
              <td>{row.verdict.reason ?? ""}</td>
              <td class="why">{row.verdict.detail ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );
};

/** The call a delivery id belongs to (call Ids hold no dots). */
const callOfDelivery = (deliveryId: string) => deliveryId.slice(0, deliveryId.indexOf("."));

/** A delivery's card's id: its destination's name for the call's first, else what its id adds (`wms.n1`). */
const cardId = (d: DeliveryView) =>
  d.deliveryId === `${d.callId}.${d.destination}` ? d.destination : d.deliveryId.slice(d.callId.length + 1);

const Delivery: FC<{ delivery: DeliveryView; csrf: string | undefined }> = ({ delivery, csrf }) => (
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
            {`${delivery.dead.reason}: ${delivery.dead.detail} `}
            <a href={`/console/dead-letters/${encodeURIComponent(delivery.deliveryId)}`}>Open the dead letter</a>
          </dd>
        </>
      )}
    </dl>
    <Attempts attempts={delivery.attempts} label={`Attempts to ${delivery.destination}`} empty="No attempts yet." />
    {csrf !== undefined && (
      <form
        class="actions"
        method="post"
        action={`/console/deliveries/${encodeURIComponent(delivery.deliveryId)}/resend`}
      >
        <CsrfField token={csrf} />
        <input type="hidden" name="call" value={delivery.callId} />
        <button type="submit" class="secondary" aria-label={`Resend to ${delivery.destination}`}>
          Resend
        </button>
        <span class="muted">Sends it again under the same delivery id, attempts afresh.</span>
      </form>
    )}
  </section>
);

/** POST /console/deliveries/:id/resend: the admin API's resend, then back to the call. */
export async function resendFromConsole(c: Context<ConsoleEnv>): Promise<Response> {
  const id = c.req.param("id")!;
  await resendDelivery(opContext(c), id);
  const call = await field(c, "call");
  return c.redirect(
    withNotice(call === undefined ? "/console/calls" : `/console/calls/${encodeURIComponent(call)}`, "resent"),
    303,
  );
}
