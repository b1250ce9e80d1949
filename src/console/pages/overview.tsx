/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import { oneOfParam } from "../../admin/query.ts";
import { noDestinationStats } from "../../ledger/views.ts";
import { destinationStates } from "../../ops/destinations.ts";
import { HourlyChart, hoursOf, RANGES, RangeChoice, rangeWords } from "../chart.tsx";
import type { ConsoleEnv } from "../env.ts";
import { AutoRefresh, framed, Issues, Ms, noticeOf, Page, REFRESH_SECONDS, render, Scroll, Time } from "../layout.tsx";
import { destinationPath } from "../links.ts";
import { type RulesState, rulesState } from "../rules-state.ts";
import { StateBadge } from "./destinations.tsx";

const DAY = 86_400_000;

/** GET /console: the last 24 hours per destination and per Action, and the rules in place. */
export async function overviewPage(c: Context<ConsoleEnv>): Promise<Response> {
  const refresh = oneOfParam(c, "refresh", REFRESH_SECONDS);
  const range = oneOfParam(c, "range", RANGES) ?? "24h";
  const [numbers, rules] = await Promise.all([c.var.ledger.stats(Date.now() - DAY), rulesState(c)]);
  // The gates' states need readable rules; the page says so elsewhere when they are not.
  const ruled = Object.keys(rules.rules?.destinations ?? {});
  const [states, hours] = await Promise.all([
    rules.rules === undefined ? [] : destinationStates(c.env, rules.rules.destinations),
    hoursOf(c.var.ledger, ruled, range),
  ]);
  const params = new URL(c.req.url).searchParams;
  const stateOf = new Map(states.map((state) => [state.name, state]));
  const names = [...new Set([...Object.keys(rules.rules?.destinations ?? {}), ...Object.keys(numbers.destinations)])];
  const actions = Object.entries(numbers.actions);
  return render(
    c,
    <Page
      title="Overview"
      notice={noticeOf(c)}
      refresh={refresh === undefined ? undefined : Number(refresh)}
      {...framed(c, "/console")}
    >
      <AutoRefresh path="/console" params={params} every={refresh} />
      {numbers.ledger.waiting > 0 && (
        <div class="advice" role="status">
          <p>
            {`${numbers.ledger.waiting} ledger record${numbers.ledger.waiting === 1 ? "" : "s"} could not be written to D1 and wait in R2`}
            {numbers.ledger.waitingSince !== undefined && (
              <>
                {" since "}
                <Time at={numbers.ledger.waitingSince} />
              </>
            )}
            {
              ". Deliveries are not affected. They are written once D1 answers again (every ten minutes, or POST /admin/ledger/redrive); until then the calls they are about may be missing here."
            }
          </p>
        </div>
      )}
      <h2>Destinations, last 24 hours</h2>
      <p class="muted">
        Deliveries of the calls accepted since <Time at={numbers.since} />, by their status now; latency over their
        attempts.
      </p>
      {names.length === 0 ? (
        <p>No destinations: the rules name none and the ledger has no deliveries in the last 24 hours.</p>
      ) : (
        <Scroll label="Destinations, last 24 hours">
          <table class="records wide">
            <thead>
              <tr>
                <th scope="col">Destination</th>
                <th scope="col">State</th>
                <th scope="col" class="num">
                  Delivered
                </th>
                <th scope="col" class="num">
                  Retrying
                </th>
                <th scope="col" class="num">
                  Held
                </th>
                <th scope="col" class="num">
                  Dead
                </th>
                <th scope="col" class="num">
                  p50
                </th>
                <th scope="col" class="num">
                  p95
                </th>
                <th scope="col">Last success</th>
                <th scope="col">Last failure</th>
              </tr>
            </thead>
            <tbody>
              {names.map((name) => {
                const s = numbers.destinations[name] ?? noDestinationStats();
                const state = stateOf.get(name);
                const inRules = Object.hasOwn(rules.rules?.destinations ?? {}, name);
                return (
                  <tr>
                    <th scope="row">
                      {inRules ? (
                        <a href={destinationPath(name)}>{name}</a>
                      ) : (
                        <>
                          <a href={`/console/calls?destination=${encodeURIComponent(name)}`}>{name}</a>
                          <span class="muted"> (not in the rules)</span>
                        </>
                      )}
                    </th>
                    <td class="lead" data-label="State">
                      {state === undefined ? <span class="muted">—</span> : <StateBadge state={state} />}
                    </td>
                    <td class="num" data-label="Delivered">
                      {s.delivered}
                    </td>
                    <td class="num" data-label="Retrying">
                      {s.retrying}
                    </td>
                    <td class="num" data-label="Held">
                      {s.held}
                    </td>
                    <td class="num" data-label="Dead">
                      {s.dead > 0 ? (
                        <a href={`/console/dead-letters?destination=${encodeURIComponent(name)}`}>{s.dead}</a>
                      ) : (
                        0
                      )}
                    </td>
                    <td class="num" data-label="p50">
                      <Ms ms={s.p50Ms} />
                    </td>
                    <td class="num" data-label="p95">
                      <Ms ms={s.p95Ms} />
                    </td>
                    <td data-label="Last success">
                      <Time at={s.lastDeliveredAt} />
                    </td>
                    <td data-label="Last failure">
                      <Time at={s.lastFailedAt} />
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </Scroll>
      )}

      {ruled.length > 0 && (
        <>
          <h2 id="pictures">Deliveries per hour</h2>
          <RangeChoice path="/console" params={params} range={range} at="pictures" />
          <p class="muted">
            Attempts per hour by how they ended (retried: failed, to be tried again), and the p95 of their latency.
          </p>
          <div class="charts">
            {ruled.map((name, i) => (
              <section class="card" aria-labelledby={`chart-${i}-h`}>
                <h3 id={`chart-${i}-h`}>
                  <a href={destinationPath(name)}>{name}</a>
                </h3>
                <HourlyChart id={`chart-${i}`} title={`${name}, ${rangeWords(range)}`} hours={hours[name] ?? []} />
              </section>
            ))}
          </div>
        </>
      )}

      <h2>Calls per Action, last 24 hours</h2>
      {actions.length === 0 ? (
        <p>No calls in the last 24 hours.</p>
      ) : (
        <Scroll label="Calls per Action">
          <table>
            <thead>
              <tr>
                <th scope="col">Action</th>
                <th scope="col" class="num">
                  Calls
                </th>
              </tr>
            </thead>
            <tbody>
              {actions.map(([action, count]) => (
                <tr>
                  <th scope="row">
                    <a href={`/console/calls?action=${encodeURIComponent(action)}&window=24h`}>{action}</a>
                  </th>
                  <td class="num">{count}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
      )}

      <h2>Rules</h2>
      <RulesSummary state={rules} />
    </Page>,
  );
}

const RulesSummary: FC<{ state: RulesState }> = ({ state }) => {
  if (state.stored === null) {
    return (
      <div class="advice">
        <p>
          No rules are stored: every call is accepted with 0 deliveries. <a href="/console/rules">Write the rules</a>.
        </p>
      </div>
    );
  }
  return (
    <>
      <dl class="facts">
        <dt>Version</dt>
        <dd>
          <code>{state.stored.hash}</code>
        </dd>
        <dt>Saved</dt>
        <dd>
          {state.stored.savedAt === undefined ? (
            <span class="muted">not recorded (put straight into KV, not through the console or the admin API)</span>
          ) : (
            <Time at={state.stored.savedAt} />
          )}
        </dd>
        {state.rules !== undefined && (
          <>
            <dt>Contents</dt>
            <dd>
              {`${Object.keys(state.rules.destinations).length} destinations, ${state.rules.routes.length} routes`}
            </dd>
          </>
        )}
      </dl>
      {state.issues.length > 0 && (
        <div class="problem" role="alert">
          <p>The stored document is invalid, so nothing is routed and every call is refused with 503:</p>
          <Issues issues={state.issues} />
        </div>
      )}
      {state.warnings.length > 0 ? (
        <div class="advice">
          <p>{`${state.warnings.length} warning${state.warnings.length === 1 ? "" : "s"}:`}</p>
          <Issues issues={state.warnings} />
        </div>
      ) : (
        state.issues.length === 0 && <p>No warnings.</p>
      )}
      <p>
        <a href="/console/rules">Open the rules</a>
      </p>
    </>
  );
};
