/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { Child, FC } from "hono/jsx";
import type { ActivityRow } from "../../ledger/activity.ts";
import { type DestinationState, destinationStates, setPaused } from "../../ops/destinations.ts";
import { opContext } from "../../ops/record.ts";
import type { Destination } from "../../rules/schema.ts";
import type { ConsoleEnv } from "../env.ts";
import { field } from "../forms.ts";
import {
  CsrfField,
  canChange,
  framed,
  noticeOf,
  Page,
  readableError,
  redirectWithNotice,
  render,
  Time,
  Wrap,
} from "../layout.tsx";
import { destinationAnchor, destinationPath } from "../links.ts";
import { currentRules } from "../rules-state.ts";

const DAY = 86_400_000;

/** A secret is shown by its name only, never its value; a URL wraps at its punctuation. */
const secretOrText = (value: string | { secret: string }): Child =>
  typeof value === "string" ? <Wrap text={value} /> : `secret ${value.secret}`;

/**
 * GET /console/destinations: every destination of the current rules, its settings, its gate's state (paused or
 * not, held, in flight, failures in a row) with pause / resume, and its last 24 hours.
 */
export async function destinationsPage(c: Context<ConsoleEnv>): Promise<Response> {
  const rules = await currentRules(c);
  const [states, numbers] =
    "rules" in rules
      ? await Promise.all([destinationStates(c.env, rules.rules.destinations), c.var.ledger.stats(Date.now() - DAY)])
      : [[], undefined];
  const csrf = canChange(c) ? c.get("csrf") : undefined;
  // Who paused each destination paused by hand: the activity row that did it.
  const pausedBy = new Map<string, ActivityRow>();
  await Promise.all(
    states
      .filter((state) => state.pausedBy === "hand" && state.pausedAt !== undefined)
      .map(async (state) => {
        const row = await c.var.ledger.pausingRow(state.name, Date.parse(state.pausedAt!));
        if (row !== null) pausedBy.set(state.name, row);
      }),
  );
  return render(
    c,
    <Page title="Destinations" notice={noticeOf(c)} {...framed(c, "/console/destinations")}>
      {"problem" in rules && (
        <div class="problem" role="alert">
          <p>{rules.problem}</p>
        </div>
      )}
      {"rules" in rules && states.length === 0 && (
        <p>
          The rules name no destinations. <a href="/console/rules">Add one in the rules</a>.
        </p>
      )}
      <div class="cards">
        {"rules" in rules &&
          states.map((state) => {
            const destination = rules.rules.destinations[state.name]!;
            const s = numbers?.destinations[state.name];
            return (
              <section
                class="card"
                id={destinationAnchor(state.name)}
                aria-labelledby={`${destinationAnchor(state.name)}-h`}
              >
                <h2 id={`${destinationAnchor(state.name)}-h`}>
                  <a href={destinationPath(state.name)}>{state.name}</a> <StateBadge state={state} />
                </h2>
                <GateFacts state={state} by={pausedBy.get(state.name)} delivered={s?.lastDeliveredAt} />
                {csrf !== undefined && <PauseForm state={state} csrf={csrf} />}
                <DestinationFacts destination={destination} />
                <p>
                  {s === undefined
                    ? "Last 24 hours: no deliveries."
                    : `Last 24 hours: ${s.delivered} delivered, ${s.retrying} retrying, ${s.held} held, ${s.dead} dead, ${s.pending} pending.`}{" "}
                  <a href={`/console/calls?destination=${encodeURIComponent(state.name)}`}>Its calls</a>
                </p>
              </section>
            );
          })}
      </div>
    </Page>,
  );
}

export const StateBadge: FC<{ state: DestinationState }> = ({ state }) => {
  const text =
    state.state === "paused"
      ? state.pausedBy === "hand"
        ? "paused by hand"
        : "paused by the circuit breaker"
      : state.state === "probing"
        ? "probing"
        : state.state === "unknown"
          ? "state unknown"
          : "active";
  const tone = state.state === "active" ? "s-delivered" : state.state === "unknown" ? "s-pending" : "s-held";
  return <span class={`badge ${tone}`}>{text}</span>;
};

/** A destination's own page: its state, pictures, alerts and actions. */

/**
 * What the gate says: why it is paused and until when, what it holds, how it has been failing. The gate hears of a
 * success only after a failure, so the last success is the later of its and the ledger's (`delivered`) when the
 * page has the ledger's; the row is left out when neither knows of one.
 */
export const GateFacts: FC<{ state: DestinationState; by?: ActivityRow | undefined; delivered?: string | null }> = ({
  state,
  by,
  delivered,
}) => {
  const lastSuccess = [state.lastSuccessAt, delivered ?? undefined]
    .filter((at): at is string => at !== undefined)
    .sort()
    .at(-1);
  return (
    <dl class="facts">
      {state.state === "unknown" && (
        <>
          <dt>State</dt>
          <dd>Its state could not be read just now; reload the page.</dd>
        </>
      )}
      {state.pausedAt !== undefined && (
        <>
          <dt>Paused since</dt>
          <dd>
            <Time at={state.pausedAt} />
            {state.pausedBy === "hand" ? " (by hand: nothing goes out until it is resumed)" : ""}
          </dd>
          {by !== undefined && (
            <>
              <dt>Paused by</dt>
              <dd>
                {`${by.actor} `}
                <a href={`/console/activity/${by.id}`}>{`activity #${by.id}`}</a>
              </dd>
            </>
          )}
        </>
      )}
      {state.probeAt !== undefined && (
        <>
          <dt>{state.state === "probing" ? "Probing since" : "Probe at"}</dt>
          <dd>
            <Time at={state.probeAt} />
            {state.cooldownSeconds !== undefined &&
              ` (cool-down ${state.cooldownSeconds} s, doubling while probes fail)`}
          </dd>
        </>
      )}
      <dt>Held</dt>
      <dd>{state.held === 0 ? "none" : `${state.held}, to go out in arrival order`}</dd>
      <dt>In flight</dt>
      <dd>{state.inFlight}</dd>
      <dt>Failed in a row</dt>
      <dd>
        {state.failures}
        {state.failingSince !== undefined && (
          <>
            {" since "}
            <Time at={state.failingSince} />
          </>
        )}
      </dd>
      {(state.lastStatus !== undefined || state.lastError !== undefined) && (
        <>
          <dt>Last failure</dt>
          <dd>
            {[
              state.lastStatus !== undefined ? `HTTP ${state.lastStatus}` : undefined,
              state.lastError === undefined ? undefined : readableError(state.lastError).replace(/\.$/, ""),
            ]
              .filter((part) => part !== undefined)
              .join(", ")}
            {state.lastFailureAt !== undefined && (
              <>
                {" at "}
                <Time at={state.lastFailureAt} />
              </>
            )}
          </dd>
        </>
      )}
      {lastSuccess !== undefined && (
        <>
          <dt>Last success</dt>
          <dd>
            <Time at={lastSuccess} />
          </dd>
        </>
      )}
    </dl>
  );
};

/** Pause or Resume, at one click (nothing is lost either way); `back` to the destination's page rather than the list. */
export const PauseForm: FC<{ state: DestinationState; csrf: string; back?: boolean }> = ({ state, csrf, back }) => {
  if (state.state === "unknown") return null;
  const resume = state.state !== "active";
  const action = resume ? "resume" : "pause";
  return (
    <form class="inline" method="post" action={`/console/destinations/${encodeURIComponent(state.name)}/${action}`}>
      <CsrfField token={csrf} />
      {back === true && <input type="hidden" name="back" value="page" />}
      <button type="submit">{resume ? `Resume ${state.name}` : `Pause ${state.name}`}</button>{" "}
      <span class="muted">
        {resume
          ? "Sends what it holds, in order, and closes the circuit."
          : "Holds every delivery, in order, and attempts none until resumed."}
      </span>
    </form>
  );
};

export const DestinationFacts: FC<{ destination: Destination }> = ({ destination }) => {
  const headers = Object.entries(destination.headers);
  const rate = destination.rateLimit;
  return (
    <dl class="facts">
      <dt>URL</dt>
      <dd>{secretOrText(destination.url)}</dd>
      <dt>Signing</dt>
      <dd>
        {destination.signing.scheme === "none"
          ? "none"
          : `${destination.signing.scheme} with secret ${destination.signing.secret}`}
      </dd>
      <dt>Timeout</dt>
      <dd>{`${destination.timeoutMs} ms`}</dd>
      <dt>Max attempts</dt>
      <dd>{destination.maxAttempts}</dd>
      <dt>Mode</dt>
      <dd>{destination.mode}</dd>
      <dt>Enabled</dt>
      <dd>{destination.enabled ? "yes" : "no: it gets nothing"}</dd>
      <dt>Rate limit</dt>
      <dd>
        {rate === undefined
          ? "none"
          : rate.perSecond !== undefined
            ? `${rate.perSecond} a second`
            : `${rate.perMinute} a minute`}
      </dd>
      <dt>Concurrency</dt>
      <dd>{destination.concurrency === undefined ? "no limit" : `${destination.concurrency} at once`}</dd>
      <dt>Circuit breaker</dt>
      <dd>
        {destination.circuit === false
          ? "off"
          : `pauses after ${destination.circuit.failures} failed attempt${destination.circuit.failures === 1 ? "" : "s"} in a row, for ${destination.circuit.cooldownSeconds}\u00a0s`}
      </dd>
      <dt>Tech contact</dt>
      <dd>
        {destination.techContact === undefined ? (
          <span class="muted">
            {destination.alertWebhook === undefined
              ? "none: its alerts go to the relay's alert webhook, if one is set"
              : "none: its alerts go to its alert webhook (and the relay's, if one is set)"}
          </span>
        ) : (
          <Wrap text={destination.techContact} />
        )}
      </dd>
      {destination.alertWebhook !== undefined && (
        <>
          <dt>Alert webhook</dt>
          <dd>{secretOrText(destination.alertWebhook)}</dd>
        </>
      )}
      {headers.length > 0 && (
        <>
          <dt>Headers</dt>
          <dd>
            {headers.map(([header, value], i) => (
              <>
                {i > 0 && "; "}
                {`${header}: `}
                {secretOrText(value)}
              </>
            ))}
          </dd>
        </>
      )}
      {destination.description !== undefined && (
        <>
          <dt>Description</dt>
          <dd>{destination.description}</dd>
        </>
      )}
    </dl>
  );
};

/** POST /console/destinations/:name/pause and /resume: the admin API's, then back to the card (or the page). */
export async function pauseFromConsole(c: Context<ConsoleEnv>): Promise<Response> {
  const name = c.req.param("name")!;
  const paused = c.req.path.endsWith("/pause");
  await setPaused(opContext(c), c.var.settings, name, paused);
  const back =
    (await field(c, "back")) === "page" ? destinationPath(name) : `/console/destinations#${destinationAnchor(name)}`;
  return redirectWithNotice(c, back, paused ? "paused" : "resumed");
}

/** The gates' states of the named destinations of the current rules (one the rules lack is left out). */
export async function statesOf(c: Context<ConsoleEnv>, names: readonly string[]): Promise<DestinationState[]> {
  const rules = await currentRules(c);
  if (!("rules" in rules)) return [];
  const named = Object.entries(rules.rules.destinations).filter(([name]) => names.includes(name));
  return destinationStates(c.env, Object.fromEntries(named));
}

/**
 * Before a resend or a replay: for each of its destinations that is paused, that what is sent waits (held in
 * arrival order) until the destination is resumed, by hand or by a successful probe of its circuit breaker.
 */
export const PausedWarning: FC<{ states: readonly DestinationState[]; what: string }> = ({ states, what }) => {
  const paused = states.filter((state) => state.state === "paused" || state.state === "probing");
  if (paused.length === 0) return null;
  return (
    <div class="advice" role="alert">
      {paused.map((state) => (
        <p>
          {`${state.name} is paused `}
          {state.pausedBy === "hand" ? "by hand" : "by its circuit breaker after failing"}
          {state.pausedAt !== undefined && (
            <>
              {" since "}
              <Time at={state.pausedAt} />
            </>
          )}
          {`: ${what} will wait, held in arrival order, until it is resumed`}
          {state.pausedBy === "hand" ? "" : " (a successful probe resumes it)"}
          {". "}
          <a href={destinationPath(state.name)}>{`${state.name}'s page`}</a>
        </p>
      ))}
    </div>
  );
};
