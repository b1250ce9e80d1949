/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import { oneOfParam } from "../../admin/query.ts";
import { type DestinationState, destinationStates, probeDestination } from "../../ops/destinations.ts";
import { opContext } from "../../ops/record.ts";
import type { Destination } from "../../rules/schema.ts";
import { HourlyChart, hoursOf, RANGES, RangeChoice, rangeWords } from "../chart.tsx";
import type { ConsoleEnv } from "../env.ts";
import { ActionLink, CsrfField, canChange, framed, noticeOf, Page, redirectWithNotice, render } from "../layout.tsx";
import { destinationPath } from "../links.ts";
import { currentRules } from "../rules-state.ts";
import { AlertsSent, EpisodeText, episodeOf, probeable, probePath } from "./alerts.tsx";
import { OnlyOperators } from "./calls.tsx";
import { DestinationFacts, GateFacts, PauseForm, StateBadge } from "./destinations.tsx";
import { errorPage } from "./errors.tsx";
import { bulkPath } from "./jobs.tsx";

const LATEST_ALERTS = 10;

/** The destination of the current rules named by the path, its state now, or an error page to answer with. */
async function destinationOf(
  c: Context<ConsoleEnv>,
): Promise<{ answer: Response } | { name: string; destination: Destination; state: DestinationState }> {
  const name = c.req.param("name")!;
  const rules = await currentRules(c);
  if ("problem" in rules) return { answer: await errorPage(c, 503, rules.problem) };
  const destination = Object.hasOwn(rules.rules.destinations, name) ? rules.rules.destinations[name] : undefined;
  if (destination === undefined) {
    return {
      answer: await errorPage(c, 404, `The rules have no destination "${name}".`, { code: "destination_not_found" }),
    };
  }
  const [state] = await destinationStates(c.env, { [name]: destination });
  return { name, destination, state: state! };
}

/**
 * GET /console/destinations/:name: one destination: its gate's state and actions (pause, resume, probe now, replay
 * its dead letters), its pictures (docs/console.md, "Pictures"), its latest alerts, and its settings.
 */
export async function destinationPage(c: Context<ConsoleEnv>): Promise<Response> {
  const range = oneOfParam(c, "range", RANGES) ?? "24h";
  const found = await destinationOf(c);
  if ("answer" in found) return found.answer;
  const { name, destination, state } = found;
  const [hours, alerts, pausedBy] = await Promise.all([
    hoursOf(c.var.ledger, [name], range),
    c.var.ledger.listAlertsSent({ destination: name, limit: LATEST_ALERTS }),
    state.pausedBy === "hand" && state.pausedAt !== undefined
      ? c.var.ledger.pausingRow(name, Date.parse(state.pausedAt))
      : null,
  ]);
  const csrf = canChange(c) ? c.get("csrf") : undefined;
  const d = encodeURIComponent(name);
  return render(
    c,
    <Page title={`Destination ${name}`} notice={noticeOf(c)} {...framed(c, "/console/destinations")}>
      <p>
        <StateBadge state={state} /> <a href="/console/destinations">All destinations</a>
        {" · "}
        <a href={`/console/calls?destination=${d}`}>Its calls</a>
        {" · "}
        <a href={`/console/dead-letters?destination=${d}`}>Its dead letters</a>
      </p>
      <GateFacts state={state} by={pausedBy ?? undefined} />
      {csrf !== undefined && (
        <div class="actions">
          <PauseForm state={state} csrf={csrf} back />
          {probeable(state) && (
            <ActionLink href={probePath(name)} label={`Probe now: ${name}`}>
              Probe now…
            </ActionLink>
          )}
          <ActionLink href={bulkPath("replay", { destination: name, status: "dead" })}>
            Replay its dead letters…
          </ActionLink>
        </div>
      )}

      <h2 id="pictures">Deliveries per hour</h2>
      <RangeChoice path={destinationPath(name)} params={new URL(c.req.url).searchParams} range={range} at="pictures" />
      <HourlyChart id={`chart-${range}`} title={`${name}, ${rangeWords(range)}`} hours={hours[name] ?? []} />

      <h2>Latest alerts</h2>
      <p>
        <EpisodeText episode={episodeOf(alerts, state)} state={state} />
        {". "}
        <a href={`/console/alerts?destination=${d}`}>{`All alerts about ${name}`}</a>
      </p>
      <AlertsSent rows={alerts} label={`Latest alerts about ${name}`} empty="None sent." />

      <h2>Settings</h2>
      <DestinationFacts destination={destination} />
    </Page>,
  );
}

/** GET /console/destinations/:name/probe: what a probe does, and the form; 409 for one not paused by its breaker. */
export async function probeConfirmPage(c: Context<ConsoleEnv>): Promise<Response> {
  const found = await destinationOf(c);
  if ("answer" in found) return found.answer;
  const { name, state } = found;
  if (!probeable(state)) {
    return errorPage(
      c,
      409,
      `${name} is not paused by its circuit breaker, so it has no probe to send${state.state === "paused" ? ": resume it instead" : ""}.`,
      { code: "not_paused_by_circuit" },
    );
  }
  const csrf = canChange(c) ? c.get("csrf") : undefined;
  return render(
    c,
    <Page title={`Probe ${name} now?`} {...framed(c, "/console/destinations")}>
      <p>
        {`Its circuit breaker paused ${name}. The oldest delivery it holds goes out now, rather than at the end of the cool-down: if it succeeds, ${name} resumes and ${state.held === 1 ? "the 1 delivery it holds goes" : `the ${state.held} deliveries it holds go`} out in arrival order; if it fails, the pause goes on and its cool-down doubles.`}
      </p>
      <GateFacts state={state} />
      {csrf === undefined ? (
        <OnlyOperators />
      ) : (
        <form class="actions" method="post" action={probePath(name)}>
          <CsrfField token={csrf} />
          <button type="submit">Probe it now</button>
          <a href={destinationPath(name)}>Cancel</a>
        </form>
      )}
    </Page>,
  );
}

/** POST /console/destinations/:name/probe: the admin API's probe (destination.probe), then back to its page. */
export async function probeFromConsole(c: Context<ConsoleEnv>): Promise<Response> {
  const name = c.req.param("name")!;
  await probeDestination(opContext(c), c.var.settings, name);
  return redirectWithNotice(c, destinationPath(name), "probed");
}
