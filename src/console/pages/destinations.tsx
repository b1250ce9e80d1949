/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import { stats } from "../../ledger/read.ts";
import type { Destination } from "../../rules/schema.ts";
import type { ConsoleEnv } from "../env.ts";
import { framed, noticeOf, Page, render } from "../layout.tsx";
import { currentRules } from "../rules-state.ts";
import { pausedOf } from "./overview.tsx";

const DAY = 86_400_000;

/** Fields a destination may carry once flow control and alerts exist; shown when the rules have them. */
const LATER_FIELDS = [
  ["techContact", "Tech contact"],
  ["rateLimit", "Rate limit"],
  ["concurrency", "Concurrency"],
  ["circuit", "Circuit breaker"],
] as const;

/** A secret is shown by its name only, never its value. */
const secretOrText = (value: string | { secret: string }) =>
  typeof value === "string" ? value : `secret ${value.secret}`;

/** GET /console/destinations: every destination of the current rules, its settings, and its last 24 hours. */
export async function destinationsPage(c: Context<ConsoleEnv>): Promise<Response> {
  const [rules, numbers] = await Promise.all([currentRules(c), stats(c.env.LEDGER, Date.now() - DAY)]);
  const destinations = "rules" in rules ? Object.entries(rules.rules.destinations) : [];
  return render(
    c,
    <Page title="Destinations" notice={noticeOf(c)} {...framed(c, "/console/destinations")}>
      {"problem" in rules && (
        <div class="problem" role="alert">
          <p>{rules.problem}</p>
        </div>
      )}
      {"rules" in rules && destinations.length === 0 && (
        <p>
          The rules name no destinations. <a href="/console/rules">Add one in the rules</a>.
        </p>
      )}
      <div class="cards">
        {destinations.map(([name, destination]) => {
          const s = numbers.destinations[name];
          return (
            <section class="card" aria-labelledby={`destination-${name}`}>
              <h2 id={`destination-${name}`}>{name}</h2>
              <DestinationFacts destination={destination} />
              <p>
                {s === undefined
                  ? "Last 24 hours: no deliveries."
                  : `Last 24 hours: ${s.delivered} delivered, ${s.retrying} retrying, ${s.held} held, ${s.dead} dead, ${s.pending} pending.`}{" "}
                <a href={`/console/calls?destination=${encodeURIComponent(name)}`}>Its calls</a>
              </p>
              {/* Flow control: pause / resume buttons go here once the relay can pause a destination. */}
              <p class="muted">
                {s !== undefined && pausedOf(s) === true ? "Paused. " : "Not paused. "}
                Pause / resume: coming with flow control.
              </p>
            </section>
          );
        })}
      </div>
    </Page>,
  );
}

const DestinationFacts: FC<{ destination: Destination }> = ({ destination }) => {
  const extra = destination as Destination & Record<string, unknown>;
  const headers = Object.entries(destination.headers);
  return (
    <dl class="facts">
      <dt>URL</dt>
      <dd class="id">{secretOrText(destination.url)}</dd>
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
      {headers.length > 0 && (
        <>
          <dt>Headers</dt>
          <dd class="id">{headers.map(([header, value]) => `${header}: ${secretOrText(value)}`).join("; ")}</dd>
        </>
      )}
      {LATER_FIELDS.filter(([key]) => extra[key] !== undefined).map(([key, label]) => (
        <>
          <dt>{label}</dt>
          <dd class="id">{describe(extra[key])}</dd>
        </>
      ))}
      {destination.description !== undefined && (
        <>
          <dt>Description</dt>
          <dd>{destination.description}</dd>
        </>
      )}
    </dl>
  );
};

/** `{"perSecond": 10, "burst": 20}` → `perSecond 10, burst 20`; a string as it is. */
function describe(value: unknown): string {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    return Object.entries(value)
      .map(([key, v]) => `${key} ${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
      .join(", ");
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}
