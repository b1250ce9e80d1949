/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { FC } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { RelayError } from "../../errors.ts";
import type { Issue } from "../../issues.ts";
import { readStoredRules, restorePreviousRules, type StoredRules, saveRules } from "../../rules/save.ts";
import { type Rules, type TextValidation, validateRulesText } from "../../rules/schema.ts";
import type { ConsoleEnv } from "../env.ts";
import { field } from "../forms.ts";
import { lineFinder } from "../json-lines.ts";
import { CsrfField, framed, Issues, noticeOf, Page, render, Text, Time, withNotice } from "../layout.tsx";
import { rulesState } from "../rules-state.ts";
import { errorPage } from "./errors.tsx";

/**
 * The rules editor: the stored document in a text area; "Check" validates it on the server (issues by path
 * and line); "Save" asks for confirmation, then stores it as PUT /admin/rules does, keeping the document it
 * replaces so that one step can undo it. The document names secrets; their values never appear here.
 */

const NONE = "none";
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
  problem?: string;
  status?: ContentfulStatusCode;
}

async function editor(c: Context<ConsoleEnv>, props: EditorProps): Promise<Response> {
  const previous = await readStoredRules(c.env.RULES, "previous");
  const csrf = c.get("csrf")!;
  const { checked } = props;
  const lines = lineFinder(props.text);
  return render(
    c,
    <Page title="Rules" notice={noticeOf(c)} {...framed(c, "/console/rules")}>
      <StoredFacts stored={props.stored} />
      {props.problem !== undefined && (
        <div class="problem" role="alert">
          <p>{props.problem}</p>
        </div>
      )}
      {(props.storedIssues ?? []).length > 0 && (
        <div class="problem">
          <p>The stored document is invalid, so nothing is routed:</p>
          <Issues issues={props.storedIssues!} />
        </div>
      )}
      {checked !== undefined && !checked.ok && (
        <div class="problem" role="alert" id="document-issues">
          <p>{`The document is invalid (${checked.issues.length} issue${checked.issues.length === 1 ? "" : "s"}); nothing was stored:`}</p>
          <Issues issues={checked.issues} lines={lines} id="issue" />
        </div>
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
      <h2>Undo</h2>
      {previous === null ? (
        <p>No previous version is kept yet: the first save through the console or the admin API keeps one.</p>
      ) : (
        <form class="actions" method="post" action="/console/rules/restore">
          <CsrfField token={csrf} />
          <span>
            {`Previous version ${previous.hash}`}
            {previous.savedAt !== undefined && (
              <>
                {", saved "}
                <Time at={previous.savedAt} />
              </>
            )}
          </span>
          <button type="submit" class="secondary">
            Restore the previous version…
          </button>
        </form>
      )}
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
        <code>{stored.hash}</code>
      </dd>
      <dt>Saved</dt>
      <dd>
        {stored.savedAt === undefined ? (
          <span class="muted">not recorded (written around the console and the admin API)</span>
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
  const checked = validateRulesText(text, c.env);
  const stored = await readStoredRules(c.env.RULES);
  if ((await field(c, "intent")) !== "save" || !checked.ok) return editor(c, { text, base, stored, checked });
  const current = stored === null ? undefined : validateRulesText(stored.text, {});
  const changes = current?.ok === true ? changesBetween(current.rules, checked.rules) : undefined;
  const csrf = c.get("csrf")!;
  return render(
    c,
    <Page title="Save the rules?" {...framed(c, "/console/rules")}>
      <p>{`${Object.keys(checked.rules.destinations).length} destinations, ${checked.rules.routes.length} routes. They replace version ${stored?.hash ?? "(none)"}, which is kept as the previous version.`}</p>
      {changes !== undefined && changes.length > 0 && (
        <>
          <h2>Changes</h2>
          <ul>
            {changes.map((change) => (
              <li>{change}</li>
            ))}
          </ul>
        </>
      )}
      <h2>Warnings</h2>
      {checked.warnings.length === 0 ? (
        <p>None.</p>
      ) : (
        <div class="advice">
          <Issues issues={checked.warnings} lines={lineFinder(text)} />
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

/** What a save would change, by name: destinations and routes added, removed or changed. */
function changesBetween(before: Rules, after: Rules): string[] {
  const out: string[] = [];
  const compare = (kind: string, a: Record<string, unknown>, b: Record<string, unknown>) => {
    for (const name of Object.keys(b)) {
      if (!Object.hasOwn(a, name)) out.push(`${kind} ${name} is added`);
      else if (JSON.stringify(a[name]) !== JSON.stringify(b[name])) out.push(`${kind} ${name} is changed`);
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
  if (stored === "changed") {
    return editor(c, {
      text,
      base,
      stored: await readStoredRules(c.env.RULES),
      problem:
        "The stored rules changed since you opened them, so nothing was saved. Your text is below; compare it with the stored version (open the Rules page in another tab), then save again.",
      status: 409,
    });
  }
  const checked = validateRulesText(text, c.env);
  if (!checked.ok) return editor(c, { text, base, stored, checked });
  try {
    await saveRules(c.env, checked.document);
  } catch (error) {
    if (error instanceof RelayError && error.code === "rules_invalid") {
      return editor(c, { text, base, stored, checked: { ok: false, issues: issuesIn(error), warnings: [] } });
    }
    throw error;
  }
  return c.redirect(withNotice("/console/rules", "rules_saved"), 303);
}

const issuesIn = (error: RelayError) => (error.details.issues as Issue[] | undefined) ?? [];

/** POST /console/rules/restore: asks to confirm putting the previous version back. */
export async function confirmRestore(c: Context<ConsoleEnv>): Promise<Response> {
  const [stored, previous] = await Promise.all([
    readStoredRules(c.env.RULES),
    readStoredRules(c.env.RULES, "previous"),
  ]);
  if (previous === null) return errorPage(c, 404, "There is no previous version of the rules to restore.");
  const checked = validateRulesText(previous.text, c.env);
  const csrf = c.get("csrf")!;
  return render(
    c,
    <Page title="Restore the previous version?" {...framed(c, "/console/rules")}>
      <p>
        {`Version ${previous.hash}`}
        {previous.savedAt !== undefined && (
          <>
            {", saved "}
            <Time at={previous.savedAt} />
          </>
        )}
        {`, replaces version ${stored?.hash ?? "(none)"}, which becomes the previous version (so this can be undone too).`}
      </p>
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
          <form class="actions" method="post" action="/console/rules/restore/confirm">
            <CsrfField token={csrf} />
            <input type="hidden" name="base" value={stored?.hash ?? NONE} />
            <input type="hidden" name="previous" value={previous.hash} />
            <button type="submit">Restore it</button>
            <a href="/console/rules">Cancel</a>
          </form>
        </>
      ) : (
        <div class="problem" role="alert">
          <p>The previous version does not validate any more, so it cannot be restored:</p>
          <Issues issues={checked.issues} />
        </div>
      )}
      <h2>The previous version</h2>
      <Text label="The previous version" text={previous.text} />
    </Page>,
  );
}

/** POST /console/rules/restore/confirm: puts the previous version back (src/rules/save.ts). */
export async function restoreRules(c: Context<ConsoleEnv>): Promise<Response> {
  const [stored, previous] = await Promise.all([unchanged(c), readStoredRules(c.env.RULES, "previous")]);
  if (stored === "changed" || previous?.hash !== (await field(c, "previous"))) {
    return errorPage(c, 409, "The rules changed since you asked, so nothing was restored. Open the Rules page again.");
  }
  await restorePreviousRules(c.env);
  return c.redirect(withNotice("/console/rules", "rules_restored"), 303);
}
