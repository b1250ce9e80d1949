/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { oneOfParam } from "../../admin/query.ts";
import { RelayError } from "../../errors.ts";
import type { Issue } from "../../issues.ts";
import { type DryRun, dryRunBody } from "../../ops/dry-run.ts";
import type { ConsoleEnv } from "../env.ts";
import { field } from "../forms.ts";
import { CsrfField, ErrorSummary, framed, Issues, List, noticeOf, Page, render, Scroll, Text } from "../layout.tsx";
import { SAMPLES, sampleText } from "../samples.ts";
import { Notifications, Verdicts } from "./calls.tsx";

/**
 * "Try a payload": the admin API's dry run (POST /admin/route) on a pasted envelope or a bundled sample, as
 * tables. No signature is needed and nothing is enqueued.
 */

/** GET /console/try (?sample=OrderCreated fills the editor with that sample). */
export function tryPage(c: Context<ConsoleEnv>): Promise<Response> {
  const sample = oneOfParam(c, "sample", [...SAMPLES.keys()]);
  return page(c, { text: sample === undefined ? "" : sampleText(sample)!, sample });
}

/** POST /console/try: runs the dry run on the posted envelope. */
export async function tryPayload(c: Context<ConsoleEnv>): Promise<Response> {
  const text = (await field(c, "envelope")) ?? "";
  const named = await field(c, "sample");
  const sample = named !== undefined && SAMPLES.has(named) ? named : undefined;
  if (text.trim() === "") {
    return page(c, { text, sample, problem: { message: "Paste an envelope first." }, status: 400 });
  }
  try {
    const run = await dryRunBody(new TextEncoder().encode(text), c.env, c.var.settings);
    return page(c, { text, sample, run });
  } catch (error) {
    if (!(error instanceof RelayError) || error.status >= 500) throw error;
    const issues = Array.isArray(error.details.issues) ? (error.details.issues as Issue[]) : [];
    return page(c, { text, sample, problem: { message: error.message, issues }, status: error.status });
  }
}

interface TryProps {
  text: string;
  sample?: string | undefined;
  run?: DryRun;
  problem?: { message: string; issues?: Issue[] };
  status?: ContentfulStatusCode;
}

function page(c: Context<ConsoleEnv>, props: TryProps): Promise<Response> {
  const { run, problem } = props;
  return render(
    c,
    <Page title="Try a payload" notice={noticeOf(c)} {...framed(c, "/console/try")}>
      {problem !== undefined && (
        <ErrorSummary id="envelope-problem" field={{ id: "envelope", label: "Go to the envelope" }}>
          <p>{problem.message}</p>
          {(problem.issues ?? []).length > 0 && <Issues issues={problem.issues!} />}
        </ErrorSummary>
      )}
      <p>
        How the stored rules route an envelope: no signature is needed and nothing is enqueued. To try rules before
        storing them, paste <code>{'{"envelope": {…}, "rules": {…}}'}</code>.
      </p>
      <form class="filters" method="get" action="/console/try">
        <div class="field">
          <label for="sample">Sample call</label>
          <select id="sample" name="sample">
            {[...SAMPLES.keys()].map((name) => (
              <option value={name} selected={name === props.sample}>
                {name}
              </option>
            ))}
          </select>
        </div>
        <div>
          <button type="submit" class="secondary">
            Load the sample
          </button>
        </div>
      </form>
      <form class="stack" method="post" action="/console/try">
        <CsrfField token={c.get("csrf")!} />
        {props.sample !== undefined && <input type="hidden" name="sample" value={props.sample} />}
        <label for="envelope">Envelope (JSON)</label>
        <textarea
          id="envelope"
          name="envelope"
          rows={16}
          spellcheck={false}
          aria-invalid={problem === undefined ? undefined : "true"}
          aria-describedby={problem === undefined ? undefined : "envelope-problem"}
        >
          {props.text}
        </textarea>
        <div>
          <button type="submit">Run the dry run</button>
        </div>
      </form>
      {run !== undefined && <Result run={run} />}
    </Page>,
    props.status ?? 200,
  );
}

/** How a delivery would be shaped (docs/rules.md, "Shaping deliveries"), or a dash. */
const Shaping: FC<{ delivery: DryRun["deliveries"][number] }> = ({ delivery: d }) => {
  const parts = [
    ...(d.coalesced !== undefined
      ? [`coalesced for ${d.coalesced.windowSeconds} s: ${d.coalesced.key.filter((k) => k !== null).join(" · ")}`]
      : []),
    ...(d.keys !== undefined && d.keys.length > 0 ? [`in order per key: ${d.keys.join(", ")}`] : []),
    ...(d.transformed !== undefined ? ["transformed (below)"] : []),
  ];
  return parts.length === 0 ? <span class="muted">—</span> : <List items={parts} />;
};

const Result: FC<{ run: DryRun }> = ({ run }) => (
  <section aria-labelledby="result">
    <h2 id="result">{`Call ${run.id}`}</h2>
    <h3>Notifications</h3>
    <Notifications rows={run.notifications} empty="The envelope holds no notifications." keys={false} />
    <h3>Deliveries that would be enqueued</h3>
    {run.deliveries.length === 0 ? (
      <p>None: the call would be accepted with 0 deliveries.</p>
    ) : (
      <>
        <Scroll label="Deliveries that would be enqueued">
          <table class="records">
            <thead>
              <tr>
                <th scope="col">Delivery id</th>
                <th scope="col">Destination</th>
                <th scope="col">Routes</th>
                <th scope="col" class="num">
                  Notifications
                </th>
                <th scope="col" class="num">
                  Bytes
                </th>
                <th scope="col">Shaped</th>
              </tr>
            </thead>
            <tbody>
              {run.deliveries.map((d) => (
                <tr>
                  <th scope="row" class="id mono">
                    {d.deliveryId}
                  </th>
                  <td data-label="Destination">{d.destination}</td>
                  <td data-label="Routes">
                    <List items={d.routes} />
                  </td>
                  <td class="num" data-label="Notifications">
                    {d.notifications}
                  </td>
                  <td class="num" data-label="Bytes">
                    {d.bytes}
                  </td>
                  <td data-label="Shaped">
                    <Shaping delivery={d} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </Scroll>
        {run.deliveries
          .filter((d) => d.transformed !== undefined)
          .map((d) => (
            <>
              <h4>{`What ${d.destination} would get for ${d.deliveryId}`}</h4>
              {"output" in d.transformed! ? (
                <Text label={`What ${d.destination} would get`} text={JSON.stringify(d.transformed.output, null, 2)} />
              ) : (
                <p class="problem">{`A dead letter transform_failed: ${d.transformed!.error}`}</p>
              )}
            </>
          ))}
        <p class="muted">{`Sent, it would be enqueued in ${run.batches} batch${run.batches === 1 ? "" : "es"}.`}</p>
      </>
    )}
    <h3>Routes that did not match</h3>
    <Verdicts verdicts={run.notifications} folded />
  </section>
);
