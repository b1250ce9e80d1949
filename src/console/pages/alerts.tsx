/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import { textParam } from "../../admin/query.ts";
import type { AlertSent } from "../../ledger/alerts.ts";
import { type DestinationState, destinationStates } from "../../ops/destinations.ts";
import type { AlertChannel } from "../../queues/alert.ts";
import type { ConsoleEnv } from "../env.ts";
import { ActionLink, canChange, framed, noticeOf, Page, render, Scroll, Text, Time, Wrap } from "../layout.tsx";
import { destinationPath } from "../links.ts";
import { currentRules } from "../rules-state.ts";
import { StateBadge } from "./destinations.tsx";

/**
 * The alerts page (docs/alerts.md, "The alerts page"): per destination its state now and whether an episode is
 * open, then what was sent to whom and when (src/ledger/alerts.ts), newest first.
 */

const SHOWN = 100;
/** Rows of one destination read to find its episode: a few alerts, each on up to three channels. */
const EPISODE_ROWS = 30;

const CHANNELS: Record<AlertChannel, string> = {
  email: "email",
  destinationWebhook: "its alert webhook",
  webhook: "ALERT_WEBHOOK",
};

/** Whether a destination is in trouble: an episode its alerts opened and no recovery closed, or a pause now. */
export interface Episode {
  open: boolean;
  /** The alert that opened it, or the last recovery when none is open. */
  since?: string | undefined;
  last?: AlertSent | undefined;
}

/** The episode told by a destination's alerts (newest first) and its gate's state now. */
export function episodeOf(rows: readonly AlertSent[], state: DestinationState | undefined): Episode {
  const episodic = rows.filter(
    (r) => r.type === "destination_failing" || r.type === "destination_paused" || r.type === "destination_recovered",
  );
  const recovered = episodic.findIndex((r) => r.type === "destination_recovered");
  const opened = recovered < 0 ? episodic : episodic.slice(0, recovered);
  const paused = state?.state === "paused" || state?.state === "probing";
  if (opened.length > 0) return { open: true, since: opened.at(-1)!.at, last: opened[0] };
  if (paused) return { open: true, since: state?.pausedAt };
  return { open: false, since: recovered < 0 ? undefined : episodic[recovered]!.at };
}

/** Whether "Probe now" applies: its circuit breaker paused it, and its probe is not on its way. */
export const probeable = (state: DestinationState): boolean => state.state === "paused" && state.pausedBy === "circuit";

/** The page that asks before a probe. */
export const probePath = (name: string): string => `${destinationPath(name)}/probe`;

const typeWords = (type: AlertSent["type"]) => type.replace("destination_", "").replaceAll("_", " ");

export const EpisodeText: FC<{ episode: Episode; state: DestinationState | undefined }> = ({ episode, state }) =>
  episode.open ? (
    <>
      <strong>Open</strong>
      {episode.since !== undefined && (
        <>
          {" since "}
          <Time at={episode.since} />
        </>
      )}
      {episode.last !== undefined && ` (last alert: ${typeWords(episode.last.type)})`}
    </>
  ) : (
    <>
      {"None open"}
      {state !== undefined && state.failures > 0 && `; ${state.failures} failed in a row, not yet alerted`}
      {episode.since !== undefined && (
        <>
          {"; recovered "}
          <Time at={episode.since} />
        </>
      )}
    </>
  );

/** GET /console/alerts: each destination's state and episode, with Probe now; then the alerts sent. */
export async function alertsPage(c: Context<ConsoleEnv>): Promise<Response> {
  const destination = textParam(c, "destination");
  const rules = await currentRules(c);
  const names = "rules" in rules ? Object.keys(rules.rules.destinations) : [];
  const [states, sent, perDestination] = await Promise.all([
    "rules" in rules ? destinationStates(c.env, rules.rules.destinations) : [],
    c.var.ledger.listAlertsSent({ ...(destination !== undefined && { destination }), limit: SHOWN }),
    Promise.all(names.map((name) => c.var.ledger.listAlertsSent({ destination: name, limit: EPISODE_ROWS }))),
  ]);
  const operator = canChange(c);
  return render(
    c,
    <Page title="Alerts" notice={noticeOf(c)} {...framed(c, "/console/alerts")}>
      <p>
        What the relay told the destinations' tech contacts and the alert webhooks, and whether each destination is in
        trouble now. <a href="/console/destinations">The destinations</a> say what the alerts go to.
      </p>
      {"problem" in rules && (
        <div class="problem" role="alert">
          <p>{rules.problem}</p>
        </div>
      )}
      <h2>Destinations now</h2>
      {states.length === 0 ? (
        <p>The rules name no destinations.</p>
      ) : (
        <Scroll label="Destinations now">
          <table class="records">
            <thead>
              <tr>
                <th scope="col">Destination</th>
                <th scope="col">State</th>
                <th scope="col">Episode</th>
                {operator && <th scope="col">Actions</th>}
              </tr>
            </thead>
            <tbody>
              {states.map((state, i) => (
                <tr>
                  <th scope="row">
                    <a href={destinationPath(state.name)}>{state.name}</a>
                  </th>
                  <td class="lead" data-label="State">
                    <StateBadge state={state} />
                  </td>
                  <td data-label="Episode">
                    <EpisodeText episode={episodeOf(perDestination[i] ?? [], state)} state={state} />
                  </td>
                  {operator && (
                    <td class="lead">
                      {probeable(state) && (
                        <ActionLink href={probePath(state.name)} label={`Probe now: ${state.name}`}>
                          Probe now…
                        </ActionLink>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}

      <h2>{destination === undefined ? "Sent" : `Sent about ${destination}`}</h2>
      <form class="filters" method="get" action="/console/alerts">
        <div class="field">
          <label for="destination">Destination</label>
          <select id="destination" name="destination">
            <option value="">all</option>
            {[...new Set([...names, ...(destination === undefined ? [] : [destination])])].map((name) => (
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
      <AlertsSent rows={sent} label="Alerts sent" empty="No alerts were sent." />
      {sent.length === SHOWN && <p class="muted">{`The latest ${SHOWN}.`}</p>}
    </Page>,
  );
}

/** Alerts as they went out, newest first: when, what, about what, by which channel to whom, how it ended, the text. */
export const AlertsSent: FC<{ rows: readonly AlertSent[]; label: string; empty: string }> = ({ rows, label, empty }) =>
  rows.length === 0 ? (
    <p>{empty}</p>
  ) : (
    <Scroll label={label}>
      <table class="records wide">
        <caption class="muted">Newest first</caption>
        <thead>
          <tr>
            <th scope="col">Sent</th>
            <th scope="col">Alert</th>
            <th scope="col">Destination</th>
            <th scope="col">Channel</th>
            <th scope="col">To</th>
            <th scope="col">Outcome</th>
            <th scope="col">Text</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr>
              <td data-label="Sent">
                <Time at={row.at} />
              </td>
              <th scope="row">
                <code>{row.type}</code>
              </th>
              <td data-label="Destination">
                {row.destination === undefined ? (
                  <span class="muted">—</span>
                ) : (
                  <a href={destinationPath(row.destination)}>{row.destination}</a>
                )}
              </td>
              <td data-label="Channel">{CHANNELS[row.channel] ?? row.channel}</td>
              <td data-label="To">
                <Wrap text={row.recipient} />
              </td>
              <td class="lead" data-label="Outcome">
                <span class={`badge ${row.outcome === "sent" ? "s-delivered" : "s-dead"}`}>{row.outcome}</span>
                {row.error !== undefined && <span class="why">{` ${row.error}`}</span>}
              </td>
              <td class="why" data-label="Text">
                <details>
                  <summary>{row.subject}</summary>
                  <Text label={`The text of alert ${row.id}`} text={row.text} />
                </details>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );
