/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { Child, FC } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { versionParam } from "../../admin/rules.ts";
import { RelayError } from "../../errors.ts";
import type { Issue } from "../../issues.ts";
import type { RulesVersion } from "../../ledger/rules-history.ts";
import { opContext } from "../../ops/record.ts";
import { restoreRules, saveRules } from "../../ops/rules.ts";
import { canonicalLines, lineDiff, withContext } from "../../rules/diff.ts";
import { readStoredRules, type StoredRules } from "../../rules/save.ts";
import { type Rules, type TextValidation, validateRulesText } from "../../rules/schema.ts";
import { hostPolicy } from "../../settings.ts";
import type { ConsoleEnv } from "../env.ts";
import { field } from "../forms.ts";
import { lineFinder } from "../json-lines.ts";
import {
  CsrfField,
  canChange,
  ErrorSummary,
  framed,
  Issues,
  noticeOf,
  Page,
  redirectWithNotice,
  render,
  Scroll,
  Text,
  TextBox,
  Time,
  Wrap,
} from "../layout.tsx";
import { rulesState } from "../rules-state.ts";
import { errorPage } from "./errors.tsx";

/**
 * The rules editor: the stored document in a text area; "Check" validates it on the server (issues by path
 * and line); "Save" asks for confirmation, then stores it as PUT /admin/rules does (src/ops/rules.ts), as a
 * new version of the rules history. Below it the history: every version, each with a line diff against the
 * rules in force and a restore. A viewer sees the document and the history, no form. The document names
 * secrets; their values never appear here.
 */

const NONE = "none";
/** Versions the Rules page lists (the newest); each version's page links to the ones around it. */
const HISTORY_SHOWN = 30;
const BLANK = JSON.stringify({ version: 1, destinations: {}, routes: [] }, null, 2);

/** GET /console/rules */
export async function rulesPage(c: Context<ConsoleEnv>): Promise<Response> {
  const state = await rulesState(c);
  return editor(c, {
    text: state.stored?.text ?? BLANK,
    base: state.stored?.hash ?? NONE,
    stored: state.stored,
    storedWarnings: state.warnings,
    storedIssues: state.issues,
  });
}

interface EditorProps {
  text: string;
  base: string;
  stored: StoredRules | null;
  storedWarnings?: Issue[];
  storedIssues?: Issue[];
  checked?: TextValidation;
  /** Why nothing was saved (a 409), with what to compare. */
  problem?: { message: Child; diffs?: Child };
  status?: ContentfulStatusCode;
}

async function editor(c: Context<ConsoleEnv>, props: EditorProps): Promise<Response> {
  const history = await c.var.ledger.listVersions({ limit: HISTORY_SHOWN });
  const csrf = c.get("csrf")!;
  const { checked } = props;
  const lines = { line: lineFinder(props.text), text: props.text };
  return render(
    c,
    <Page title="Rules" notice={noticeOf(c)} {...framed(c, "/console/rules")}>
      {props.problem !== undefined && (
        <ErrorSummary id="save-problem" field={{ id: "document", label: "Go to your text" }}>
          <p>{props.problem.message}</p>
        </ErrorSummary>
      )}
      <StoredFacts stored={props.stored} />
      {props.problem?.diffs}
      {(props.storedIssues ?? []).length > 0 && (
        <div class="problem">
          <p>The stored document is invalid, so nothing is routed:</p>
          <Issues issues={props.storedIssues!} />
        </div>
      )}
      {checked !== undefined && !checked.ok && (
        <ErrorSummary id="document-issues" field={{ id: "document", label: "Go to the document" }}>
          <p>{`The document is invalid (${checked.issues.length} issue${checked.issues.length === 1 ? "" : "s"}); nothing was stored:`}</p>
          <Issues issues={checked.issues} lines={lines} id="issue" />
        </ErrorSummary>
      )}
      {checked?.ok === true && (
        <div class="notice" role="status">
          <p>The document is valid. Nothing is stored until you save it.</p>
        </div>
      )}
      {(checked?.warnings ?? props.storedWarnings ?? []).length > 0 && (
        <div class="advice">
          <p>{checked === undefined ? "Warnings about the stored document:" : "Warnings:"}</p>
          <Issues issues={checked?.warnings ?? props.storedWarnings ?? []} lines={checked && lines} />
        </div>
      )}
      {canChange(c) ? (
        <form class="stack" method="post" action="/console/rules">
          <CsrfField token={csrf} />
          <input type="hidden" name="base" value={props.base} />
          <label for="document">Rules document (JSON)</label>
          <p class="hint" id="document-hint">
            Secrets are named, as <code>{'{"secret": "NAME"}'}</code>, never written here. See docs/rules.md for the
            fields.
          </p>
          <textarea
            id="document"
            name="document"
            rows={30}
            spellcheck={false}
            aria-describedby={checked !== undefined && !checked.ok ? "document-hint document-issues" : "document-hint"}
            aria-invalid={checked !== undefined && !checked.ok ? "true" : undefined}
          >
            {props.text}
          </textarea>
          <div class="actions">
            <button type="submit" name="intent" value="check" class="secondary">
              Check
            </button>
            <button type="submit" name="intent" value="save">
              Save…
            </button>
          </div>
        </form>
      ) : (
        <>
          <h2>The document</h2>
          <Text label="The rules document" text={props.text} />
        </>
      )}
      <h2>History</h2>
      <History versions={history.items} inForce={props.stored?.hash} more={history.next !== undefined} />
    </Page>,
    props.status ?? (checked !== undefined && !checked.ok ? 422 : 200),
  );
}

const StoredFacts: FC<{ stored: StoredRules | null }> = ({ stored }) =>
  stored === null ? (
    <p>No rules are stored yet: every call is accepted with 0 deliveries.</p>
  ) : (
    <dl class="facts">
      <dt>Version</dt>
      <dd>
        {stored.version !== undefined && `${stored.version} · `}
        <code>{stored.hash}</code>
      </dd>
      <dt>Saved</dt>
      <dd>
        {stored.savedAt === undefined ? (
          <span class="muted">not recorded (put straight into KV, not through the console or the admin API)</span>
        ) : (
          <Time at={stored.savedAt} />
        )}
      </dd>
    </dl>
  );

/** POST /console/rules: "Check" shows the issues; "Save…" shows them too, or asks to confirm. */
export async function editRules(c: Context<ConsoleEnv>): Promise<Response> {
  const text = (await field(c, "document")) ?? "";
  const base = (await field(c, "base")) ?? NONE;
  const checked = validateRulesText(text, c.env, hostPolicy(c.var.settings));
  const stored = await readStoredRules(c.env.RULES);
  if ((await field(c, "intent")) !== "save" || !checked.ok) return editor(c, { text, base, stored, checked });
  // Someone saved since this text's base: say so now, not after the confirmation.
  if (base !== (stored?.hash ?? NONE)) return conflict(c, text, base);
  const current = stored === null ? undefined : validateRulesText(stored.text, {});
  const changes = current?.ok === true ? changesBetween(current.rules, checked.rules) : undefined;
  const csrf = c.get("csrf")!;
  return render(
    c,
    <Page title="Save the rules?" {...framed(c, "/console/rules")}>
      <p>{`${Object.keys(checked.rules.destinations).length} destinations, ${checked.rules.routes.length} routes. They replace version ${stored?.hash ?? "(none)"}, which stays in the history.`}</p>
      <h2>Changes</h2>
      {changes === undefined ? (
        <p>The rules in force cannot be read, so the changes are shown line by line only.</p>
      ) : changes.length === 0 ? (
        <p>None: the same rules as those in force.</p>
      ) : (
        <ul class="changes">
          {changes.map((change) => (
            <li>{change}</li>
          ))}
        </ul>
      )}
      <h3>Line by line</h3>
      <p class="muted">Lines only in force are marked -, lines only in your text +; keys are sorted.</p>
      <Diff from={stored?.text} to={text} label="Changes from the rules in force" />
      <h2>Warnings</h2>
      {checked.warnings.length === 0 ? (
        <p>None.</p>
      ) : (
        <div class="advice">
          <Issues issues={checked.warnings} lines={{ line: lineFinder(text), text }} />
        </div>
      )}
      <div class="actions">
        <form method="post" action="/console/rules/save">
          <CsrfField token={csrf} />
          <input type="hidden" name="base" value={base} />
          <input type="hidden" name="document" value={text} />
          <button type="submit">Save the rules</button>
        </form>
        <form method="post" action="/console/rules">
          <CsrfField token={csrf} />
          <input type="hidden" name="base" value={base} />
          <input type="hidden" name="document" value={text} />
          <input type="hidden" name="intent" value="check" />
          <button type="submit" class="secondary">
            Back to the editor
          </button>
        </form>
      </div>
      <h2>The document</h2>
      <Text label="The document to save" text={text} />
    </Page>,
  );
}

/** A value as a change shows it: JSON, cut at 80 characters. */
function shown(value: unknown): string {
  const text = value === undefined ? "(none)" : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/** The fields of a destination or route that differ: `maxAttempts 3 → 4`, `url "…" → "…"`. */
function fieldChanges(before: unknown, after: unknown): string[] {
  if (typeof before !== "object" || before === null || typeof after !== "object" || after === null) {
    return [`${shown(before)} → ${shown(after)}`];
  }
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((key) => JSON.stringify(a[key]) !== JSON.stringify(b[key]))
    .map((key) => `${key} ${shown(a[key])} → ${shown(b[key])}`);
}

/**
 * What a save would change, by name, field by field: destinations and routes added, removed or changed (the
 * fields as the schema reads them, defaults filled in).
 */
function changesBetween(before: Rules, after: Rules): string[] {
  const out: string[] = [];
  const compare = (kind: string, a: Record<string, unknown>, b: Record<string, unknown>) => {
    for (const name of Object.keys(b)) {
      if (!Object.hasOwn(a, name)) out.push(`${kind} ${name} is added`);
      else if (JSON.stringify(a[name]) !== JSON.stringify(b[name])) {
        out.push(`${kind} ${name}: ${fieldChanges(a[name], b[name]).join("; ")}`);
      }
    }
    for (const name of Object.keys(a)) if (!Object.hasOwn(b, name)) out.push(`${kind} ${name} is removed`);
  };
  compare("destination", before.destinations, after.destinations);
  const byName = (rules: Rules) => Object.fromEntries(rules.routes.map((r) => [r.name, r]));
  compare("route", byName(before), byName(after));
  return out;
}

/** Refuses a save or a restore when the stored document changed since the page was made. */
async function unchanged(c: Context<ConsoleEnv>): Promise<StoredRules | null | "changed"> {
  const stored = await readStoredRules(c.env.RULES);
  return ((await field(c, "base")) ?? NONE) === (stored?.hash ?? NONE) ? stored : "changed";
}

/** POST /console/rules/save: the confirmed save, with the same code as PUT /admin/rules. */
export async function saveRulesFromConsole(c: Context<ConsoleEnv>): Promise<Response> {
  const text = (await field(c, "document")) ?? "";
  const base = (await field(c, "base")) ?? NONE;
  const stored = await unchanged(c);
  if (stored === "changed") return conflict(c, text, base);
  const checked = validateRulesText(text, c.env, hostPolicy(c.var.settings));
  if (!checked.ok) return editor(c, { text, base, stored, checked });
  try {
    await saveRules(opContext(c), hostPolicy(c.var.settings), checked.document);
  } catch (error) {
    if (error instanceof RelayError && error.code === "rules_invalid") {
      return editor(c, { text, base, stored, checked: { ok: false, issues: issuesIn(error), warnings: [] } });
    }
    throw error;
  }
  return redirectWithNotice(c, "/console/rules", "rules_saved", { n: c.var.settings.RULES_CACHE_SECONDS });
}

/**
 * A save over someone else's newer one (409): who saved and when, what they changed since the text you started
 * from, and how your text differs from theirs, on this page. Your text stays in the editor, now based on theirs:
 * "Save…" again asks first, listing what it would undo.
 */
async function conflict(c: Context<ConsoleEnv>, text: string, base: string): Promise<Response> {
  const stored = await readStoredRules(c.env.RULES);
  const [latest, baseVersions] = await Promise.all([
    c.var.ledger.latestVersion(),
    base === NONE ? new Map<string, number>() : c.var.ledger.versionsOf([base]),
  ]);
  const theirs = latest !== null && latest.hash === stored?.hash ? latest : undefined;
  const baseNumber = baseVersions.get(base);
  const started = baseNumber === undefined ? null : await c.var.ledger.getVersion(baseNumber);
  return editor(c, {
    text,
    base: stored?.hash ?? NONE,
    stored,
    problem: {
      message: (
        <>
          {"Someone saved the rules after you opened them, so nothing was saved"}
          {theirs !== undefined && (
            <>
              {": "}
              <Wrap text={theirs.actor} />
              {`, ${theirs.via === "api" ? "through the admin API" : theirs.via === "console" ? "in the console" : "straight into KV"}, at `}
              <Time at={theirs.savedAt} />
              {`, version ${theirs.version}`}
            </>
          )}
          {
            ". What they changed and how your text differs are below. Your text is in the editor: change it, or save it as it is to replace theirs (the next page lists what that undoes)."
          }
        </>
      ),
      diffs: (
        <>
          {started !== null && (
            <>
              <h2>What they changed</h2>
              <p class="muted">From the rules you started from (-) to the rules now in force (+).</p>
              <Diff from={started.text} to={stored?.text ?? ""} label="What they changed" />
            </>
          )}
          <h2>Your text against the rules now in force</h2>
          <p class="muted">Lines only in force are marked -, lines only in your text +.</p>
          <Diff from={stored?.text} to={text} label="Your text against the rules in force" />
        </>
      ),
    },
    status: 409,
  });
}

const issuesIn = (error: RelayError) => (error.details.issues as Issue[] | undefined) ?? [];

/** The history as a table: version, when, who, how, and which one is in force. */
const History: FC<{ versions: RulesVersion[]; inForce: string | undefined; more: boolean }> = ({
  versions,
  inForce,
  more,
}) =>
  versions.length === 0 ? (
    <p>No version is kept yet: the first save through the console or the admin API starts the history.</p>
  ) : (
    <Scroll label="Rules history">
      <table class="records">
        <caption class="muted">{more ? `The newest ${versions.length} versions` : "Newest first"}</caption>
        <thead>
          <tr>
            <th scope="col" class="num">
              Version
            </th>
            <th scope="col">Saved</th>
            <th scope="col">By</th>
            <th scope="col">How</th>
            <th scope="col">Text</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr>
              <th scope="row" class="num" data-label="Version">
                <a href={`/console/rules/versions/${v.version}`}>{String(v.version)}</a>
              </th>
              <td data-label="Saved">
                <Time at={v.savedAt} />
              </td>
              <td data-label="By">
                <Wrap text={v.actor} />
              </td>
              <td data-label="How">{howSaved(v)}</td>
              <td class="lead" data-label="Text">
                <code>{v.hash}</code>
                {v.hash === inForce && (
                  <>
                    {" "}
                    <span class="badge s-delivered">in force</span>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );

const howSaved = (v: RulesVersion) =>
  v.via === "kv"
    ? "found in KV"
    : `${v.restoredFrom !== undefined ? `restored version ${v.restoredFrom}` : "saved"} (${v.via === "api" ? "admin API" : "console"})`;

/** A version, or the 404 page. */
async function versionOf(c: Context<ConsoleEnv>) {
  const number = versionParam(c.req.param("version"), "version")!;
  const found = await c.var.ledger.getVersion(number);
  if (found === null) {
    throw new RelayError("rules_version_not_found", `The rules history has no version ${number}.`);
  }
  return found;
}

/** The line diff from the rules in force (-) to `text` (+), with 3 lines of context. */
const Diff: FC<{ from: string | undefined; to: string; label?: string }> = ({
  from,
  to,
  label = "Changes from the rules in force",
}) => {
  const parse = (text: string) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  };
  const lines = lineDiff(from === undefined ? [] : canonicalLines(parse(from)), canonicalLines(parse(to)));
  if (lines.every((line) => line.startsWith(" "))) return <p>It holds the same rules as the version in force.</p>;
  const shownLines = withContext(lines, 3);
  return (
    <TextBox label={label} lines={shownLines.length} class="diff">
      <pre>
        {shownLines.map((line) => (
          <span class={line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : undefined}>{`${line}\n`}</span>
        ))}
      </pre>
    </TextBox>
  );
};

/** GET /console/rules/versions/:version: a version, what it changes against the rules in force, a restore. */
export async function versionPage(c: Context<ConsoleEnv>): Promise<Response> {
  const [version, stored] = await Promise.all([versionOf(c), readStoredRules(c.env.RULES)]);
  const csrf = c.get("csrf")!;
  return render(
    c,
    <Page title={`Rules version ${version.version}`} {...framed(c, "/console/rules")}>
      <dl class="facts">
        <dt>Saved</dt>
        <dd>
          <Time at={version.savedAt} />
        </dd>
        <dt>By</dt>
        <dd>
          <Wrap text={version.actor} />
          {` (${version.role})`}
        </dd>
        <dt>How</dt>
        <dd>{howSaved(version)}</dd>
        <dt>Text</dt>
        <dd>
          <code>{version.hash}</code>
          {version.hash === stored?.hash ? " (in force now)" : ""}
        </dd>
      </dl>
      <nav aria-label="Versions" class="actions">
        {version.version > 1 && <a href={`/console/rules/versions/${version.version - 1}`}>Older version</a>}
        <a href={`/console/rules/versions/${version.version + 1}`}>Newer version</a>
        <a href="/console/rules">The rules in force</a>
      </nav>
      <h2>Changes from the rules in force</h2>
      <p class="muted">Lines only in force are marked -, lines only in this version +; keys are sorted.</p>
      <Diff from={stored?.text} to={version.text} />
      {canChange(c) && version.hash !== stored?.hash && (
        <form class="actions" method="post" action={`/console/rules/versions/${version.version}/restore`}>
          <CsrfField token={csrf} />
          <button type="submit" class="secondary">{`Restore version ${version.version}…`}</button>
        </form>
      )}
      <h2>The document</h2>
      <Text label={`Rules version ${version.version}`} text={version.text} />
    </Page>,
  );
}

/** POST /console/rules/versions/:version/restore: asks to confirm, with its warnings (or why it cannot be). */
export async function confirmRestore(c: Context<ConsoleEnv>): Promise<Response> {
  const [version, stored] = await Promise.all([versionOf(c), readStoredRules(c.env.RULES)]);
  const checked = validateRulesText(version.text, c.env, hostPolicy(c.var.settings));
  const csrf = c.get("csrf")!;
  return render(
    c,
    <Page title={`Restore version ${version.version}?`} {...framed(c, "/console/rules")}>
      <p>{`Version ${version.version} (${version.hash}) replaces the rules in force (${stored?.hash ?? "none"}); it is stored as a new version, so this can be undone too.`}</p>
      {checked.ok ? (
        <>
          <h2>Warnings</h2>
          {checked.warnings.length === 0 ? (
            <p>None.</p>
          ) : (
            <div class="advice">
              <Issues issues={checked.warnings} />
            </div>
          )}
          <form class="actions" method="post" action={`/console/rules/versions/${version.version}/restore/confirm`}>
            <CsrfField token={csrf} />
            <input type="hidden" name="base" value={stored?.hash ?? NONE} />
            <button type="submit">Restore it</button>
            <a href={`/console/rules/versions/${version.version}`}>Cancel</a>
          </form>
        </>
      ) : (
        <div class="problem" role="alert">
          <p>This version does not validate any more, so it cannot be restored:</p>
          <Issues issues={checked.issues} />
        </div>
      )}
      <h2>Changes from the rules in force</h2>
      <Diff from={stored?.text} to={version.text} />
    </Page>,
    checked.ok ? 200 : 422,
  );
}

/** POST /console/rules/versions/:version/restore/confirm: restores it (src/ops/rules.ts, as the admin API does). */
export async function restoreVersion(c: Context<ConsoleEnv>): Promise<Response> {
  const version = await versionOf(c);
  if ((await unchanged(c)) === "changed") {
    return errorPage(c, 409, "The rules changed since you asked, so nothing was restored. Open the version again.");
  }
  try {
    await restoreRules(opContext(c), hostPolicy(c.var.settings), version.version);
  } catch (error) {
    if (error instanceof RelayError && error.code === "rules_invalid") {
      return errorPage(
        c,
        422,
        `${error.message} ${issuesIn(error)
          .map((i) => `${i.path}: ${i.message}`)
          .join("; ")}`,
      );
    }
    throw error;
  }
  return redirectWithNotice(c, "/console/rules", "rules_restored", { n: version.version });
}
