/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import type { Child, FC, PropsWithChildren } from "hono/jsx";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { version } from "../../package.json";
import type { Issue } from "../issues.ts";
import type { AttemptView, CallStatus } from "../ledger/views.ts";
import type { ConsoleEnv } from "./env.ts";

/**
 * The frame of every console page: landmarks, a skip link, the navigation with the current page marked, the
 * sign-out form, and a notice after an action. Everything shown goes through hono/jsx, which escapes it.
 */

export const NAV = [
  { href: "/console", label: "Overview" },
  { href: "/console/calls", label: "Calls" },
  { href: "/console/dead-letters", label: "Dead letters" },
  { href: "/console/destinations", label: "Destinations" },
  { href: "/console/alerts", label: "Alerts" },
  { href: "/console/rules", label: "Rules" },
  { href: "/console/try", label: "Try a payload" },
  { href: "/console/activity", label: "Activity" },
] as const;

export type NavHref = (typeof NAV)[number]["href"];

export interface PageProps {
  title: string;
  /** The navigation item this page belongs to; none on the sign-in and error pages. */
  active?: NavHref | undefined;
  /** The session's CSRF token; absent when signed out (no navigation is shown then). */
  csrf?: string | undefined;
  /** Who is signed in, shown beside "Sign out". */
  actor?: { id: string; role: string } | undefined;
  notice?: Child;
  /** Reload the page every this many seconds (the opt-in auto-refresh of the overview and the calls list). */
  refresh?: number | undefined;
}

export const Page: FC<PropsWithChildren<PageProps>> = ({ title, active, csrf, actor, notice, refresh, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      {refresh !== undefined && <meta http-equiv="refresh" content={String(refresh)} />}
      <title>{`${title} · extend-relay console`}</title>
      <link rel="stylesheet" href="/console/style.css" />
      <link rel="icon" href="data:," />
    </head>
    <body>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <div class="bar">
          <a class="brand" href="/console">
            extend-relay console
          </a>
          {csrf !== undefined && (
            <nav aria-label="Console">
              <ul>
                {NAV.map((item) => (
                  <li>
                    <a href={item.href} aria-current={item.href === active ? "page" : undefined}>
                      {item.label}
                    </a>
                  </li>
                ))}
              </ul>
            </nav>
          )}
          {csrf !== undefined && (
            <form method="post" action="/console/logout" class="who">
              <CsrfField token={csrf} />
              {actor !== undefined && (
                <span class="muted">
                  <Wrap text={actor.id} />
                  {` (${actor.role})`}
                </span>
              )}{" "}
              <button type="submit">Sign out</button>
            </form>
          )}
        </div>
      </header>
      <main id="main" tabindex={-1}>
        <h1>{title}</h1>
        {notice}
        {children}
      </main>
      <footer>extend-relay {version}</footer>
    </body>
  </html>
);

export const CsrfField: FC<{ token: string }> = ({ token }) => <input type="hidden" name="csrf" value={token} />;

/** Renders a page with its doctype; pages are never cached. */
export async function render(
  c: Context<ConsoleEnv>,
  page: Child,
  status: ContentfulStatusCode = 200,
): Promise<Response> {
  return c.html(html`<!doctype html>${page}`, status);
}

/** The props every signed-in page passes to Page. */
export function framed(
  c: Context<ConsoleEnv>,
  active?: NavHref,
): { active?: NavHref; csrf?: string; actor?: { id: string; role: string } } {
  const csrf = c.get("csrf");
  const actor = c.get("actor");
  return {
    ...(active !== undefined && { active }),
    ...(csrf !== undefined && { csrf }),
    ...(actor !== undefined && { actor: { id: actor.id, role: actor.role } }),
  };
}

/** Whether the actor may change things: a viewer is shown no form it cannot use (docs/console.md). */
export const canChange = (c: Context<ConsoleEnv>): boolean => c.get("actor")?.role === "operator";

export const Time: FC<{ at: string | null | undefined }> = ({ at }) =>
  at === null || at === undefined ? <span class="muted">—</span> : <time datetime={at}>{shortTime(at)}</time>;

/** `2026-12-01T20:47:06.118Z` → `2026-12-01 20:47:06Z`. */
export function shortTime(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export const Status: FC<{ status: CallStatus }> = ({ status }) => (
  <span class={`badge s-${status}`}>{status === "no_deliveries" ? "no deliveries" : status}</span>
);

export const Ms: FC<{ ms: number | null | undefined }> = ({ ms }) =>
  ms === null || ms === undefined ? <span class="muted">—</span> : <span>{`${ms} ms`}</span>;

/** A list as comma-separated text, or a dash. */
export const List: FC<{ items: readonly string[] }> = ({ items }) =>
  items.length === 0 ? <span class="muted">—</span> : <span>{items.join(", ")}</span>;

/**
 * Text that wraps at its punctuation, never inside a word: a URL, an email address, an actor. A break opportunity
 * (`<wbr>`) goes before each `/ . @ ? # & = _` (not inside `//`); browsers break after a `-` anyway. A part too
 * long for the line still wraps (`overflow-wrap`), as a last resort.
 */
export const Wrap: FC<{ text: string }> = ({ text }) => (
  <span class="wrap">
    {text.split(/(?<=[^/])(?=[/.@?#&=_])(?!\/\/)/).map((part, i) => (i === 0 ? part : [<wbr />, part]))}
  </span>
);

/**
 * An attempt's error as a person reads it: the relay records a network error with the JavaScript error's name
 * (`network error: Error: Network connection lost.`); the name says nothing, so it is left out here.
 */
export function readableError(error: string): string {
  return error.replace(/(^|: )(?:[A-Z][A-Za-z]*)?Error: /g, "$1");
}

/** Where a validation issue is in the text the person sent: its line, and the lines around it, numbered. */
export interface IssueLines {
  line: (path: string) => number | undefined;
  text: string;
}

/** Validation issues or warnings, each by its path (and line, when known, quoted with its neighbours). */
export const Issues: FC<{ issues: readonly Issue[]; lines?: IssueLines | undefined; id?: string }> = ({
  issues,
  lines,
  id,
}) => {
  const all = lines?.text.split("\n") ?? [];
  return (
    <ul class="issues">
      {issues.map((issue, i) => {
        const line = lines?.line(issue.path);
        return (
          <li id={id === undefined ? undefined : `${id}-${i + 1}`}>
            <code>{issue.path}</code>
            {line === undefined ? "" : <span class="muted">{` (line ${line})`}</span>}: {issue.message}
            {line !== undefined && all[line - 1] !== undefined && <Excerpt lines={all} line={line} />}
          </li>
        );
      })}
    </ul>
  );
};

/** Lines line-1 … line+1 of a text, numbered, the line itself marked: the editor shows no line numbers. */
const Excerpt: FC<{ lines: string[]; line: number }> = ({ lines, line }) => {
  const from = Math.max(1, line - 1);
  const to = Math.min(lines.length, line + 1);
  const width = String(to).length;
  return (
    <pre class="excerpt">
      {Array.from({ length: to - from + 1 }, (_, k) => from + k).map((n) => (
        <span class={n === line ? "here" : undefined}>
          {`${n === line ? ">" : " "}${String(n).padStart(width)} | ${lines[n - 1]!.slice(0, 160)}\n`}
        </span>
      ))}
    </pre>
  );
};

/**
 * What went wrong with a form, above it: focused when the page loads (`autofocus`, no script needed), so that
 * a keyboard or screen reader starts there and a phone shows it; a link leads to the field.
 */
export const ErrorSummary: FC<PropsWithChildren<{ id: string; field?: { id: string; label: string } }>> = ({
  id,
  field,
  children,
}) => (
  <div class="problem" role="alert" id={id} tabindex={-1} autofocus>
    {children}
    {field !== undefined && (
      <p>
        <a href={`#${field.id}`}>{field.label}</a>
      </p>
    )}
  </div>
);

/**
 * A table that scrolls sideways if it must, named for assistive technology. It is no Tab stop of its own: on a
 * phone its records are cards (`table.records`) and nothing is hidden sideways, and a browser makes a region
 * that does overflow reachable by keyboard itself.
 */
export const Scroll: FC<PropsWithChildren<{ label: string }>> = ({ label, children }) => (
  <section class="scroll" aria-label={label}>
    {children}
  </section>
);

/** A link to the page that asks before an action (Resend, Replay, Delete, Replay all), styled as a button. */
export const ActionLink: FC<PropsWithChildren<{ href: string; label?: string; danger?: boolean }>> = ({
  href,
  label,
  danger,
  children,
}) => (
  <a class={`button ${danger === true ? "danger" : "secondary"}`} href={href} aria-label={label}>
    {children}
  </a>
);

/** A delivery's attempts, oldest first: number (and whether a replay), time, status, error, duration, outcome. */
export const Attempts: FC<{ attempts: readonly AttemptView[] | undefined; label: string; empty: string }> = ({
  attempts,
  label,
  empty,
}) =>
  (attempts ?? []).length === 0 ? (
    <p>{empty}</p>
  ) : (
    <>
      <Scroll label={label}>
        <table class="records">
          <thead>
            <tr>
              <th scope="col" class="num">
                Attempt
              </th>
              <th scope="col">Time</th>
              <th scope="col" class="num">
                Status
              </th>
              <th scope="col">Error</th>
              <th scope="col" class="num">
                Duration
              </th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {(attempts ?? []).map((a) => (
              <tr>
                <th scope="row" class="num" data-label="Attempt">
                  {a.attempt}
                  {a.replay === true && <span class="muted"> (replay)</span>}
                </th>
                <td data-label="Time">
                  <Time at={a.at} />
                </td>
                <td class="num" data-label="Status">
                  {a.status ?? <span class="muted">—</span>}
                </td>
                <td class="why" data-label="Error">
                  {a.error === undefined ? <span class="muted">—</span> : readableError(a.error)}
                </td>
                <td class="num" data-label="Duration">
                  <Ms ms={a.durationMs} />
                </td>
                <td data-label="Outcome">
                  {a.outcome.replace("_", " ")}
                  {a.rules !== undefined && (
                    <span class="muted">{` (shaped by rules ${typeof a.rules === "number" ? `v${a.rules}` : a.rules})`}</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </Scroll>
      {(attempts ?? []).map((a) => a.answer !== undefined && <Answer attempt={a} answer={a.answer} />)}
    </>
  );

/**
 * A failed attempt's answer as the relay kept it: the receiver's headers and the first 2 KB of its body, every
 * secret the request carried masked. Folded: it is for looking into a failure.
 */
const Answer: FC<{ attempt: AttemptView; answer: NonNullable<AttemptView["answer"]> }> = ({ attempt, answer }) => (
  <details class="answer">
    <summary>{`Attempt ${attempt.attempt}: the receiver's answer${attempt.status === undefined ? "" : ` (HTTP ${attempt.status})`}`}</summary>
    <Text
      label={`Attempt ${attempt.attempt}: headers of the answer`}
      text={answer.headers.map(([name, value]) => `${name}: ${value}`).join("\n") || "(no headers)"}
    />
    {answer.body === "" ? (
      <p class="muted">An empty body.</p>
    ) : (
      <Text label={`Attempt ${attempt.attempt}: the start of the answer's body`} text={answer.body} />
    )}
  </details>
);

/** Lines beyond which a text is shown in a box of its own that scrolls (and so is a Tab stop); below, in full. */
const LONG_TEXT_LINES = 24;

/**
 * A block of text (a document, a body). A short one is shown in full; a long one in a box that scrolls within
 * the page, focusable so that a keyboard can scroll it (it surely overflows: more lines than the box holds).
 */
export const Text: FC<{ label: string; text: string }> = ({ label, text }) => (
  <TextBox label={label} lines={text.split("\n").length}>
    <pre>{text}</pre>
  </TextBox>
);

/** The box of Text, for a text already marked up (a diff). */
export const TextBox: FC<PropsWithChildren<{ label: string; lines: number; class?: string }>> = ({
  label,
  lines,
  class: extra,
  children,
}) => {
  const long = lines > LONG_TEXT_LINES;
  return (
    <section
      class={["text", long ? "long" : undefined, extra].filter(Boolean).join(" ")}
      aria-label={label}
      tabindex={long ? 0 : undefined}
    >
      {children}
    </section>
  );
};

/** "Newest" and "Next page" under a list, or nothing on a list of one page. */
export const Pager: FC<{ newest?: string | undefined; next?: string | undefined }> = ({ newest, next }) =>
  newest === undefined && next === undefined ? null : (
    <nav aria-label="Pages" class="pager">
      {newest !== undefined && <a href={newest}>Newest</a>}
      {next !== undefined && <a href={next}>Next page</a>}
    </nav>
  );

/** How often the overview and the calls list may reload themselves (`?refresh=`, seconds); off unless asked. */
export const REFRESH_SECONDS = ["30", "60"] as const;

/** The opt-in auto-refresh: a link that turns it on (`?refresh=30`), or says it is on with a link that stops it. */
export const AutoRefresh: FC<{ path: string; params: URLSearchParams; every: string | undefined }> = ({
  path,
  params,
  every,
}) => {
  const other = new URLSearchParams([...params].filter(([key]) => key !== "refresh" && key !== "cursor"));
  const href = (extra: Record<string, string>) => {
    const query = new URLSearchParams([...other, ...Object.entries(extra)]).toString();
    return query === "" ? path : `${path}?${query}`;
  };
  return (
    <p class="refresh">
      {every === undefined ? (
        <a href={href({ refresh: "30" })}>Refresh every 30 seconds</a>
      ) : (
        <>
          {`This page reloads itself every ${every} seconds. `}
          <a href={href({})}>Stop refreshing</a>
        </>
      )}
    </p>
  );
};

/** What the console says after an action it redirected from; only these texts, never anything the request sent. */
const NOTICES = {
  signed_in: () => "You are signed in.",
  signed_out: () => "You are signed out.",
  signed_out_everywhere: () => "Every console session has ended, yours too.",
  resent: () => "The delivery was sent again; it shows as pending until its first attempt.",
  replayed: () => "The dead letter was sent again; it shows as pending on its call until its first attempt.",
  replayed_all: (n: number) => `${n} dead letter${n === 1 ? " was" : "s were"} sent again.`,
  replayed_more: (n: number) =>
    `${n} dead letter${n === 1 ? " was" : "s were"} sent again, and more remain: use “Replay all” again.`,
  deleted: () => "The dead letter was deleted.",
  paused: () =>
    "Paused: its deliveries are held in arrival order and none is sent until it is resumed (in effect everywhere within 2 seconds).",
  resumed: () => "Resumed: what it held goes out now, in arrival order.",
  probed: () =>
    "The probe is on its way: its oldest held delivery goes now. If it succeeds the destination resumes and the rest follow in order.",
  job_replay: (n: number) => `The bulk replay started on ${n} deliver${n === 1 ? "y" : "ies"}; this page follows it.`,
  job_delete: (n: number) => `The bulk delete started on ${n} dead letter${n === 1 ? "" : "s"}; this page follows it.`,
  rules_saved: (n: number) =>
    n === 0
      ? "The rules are saved, and every new call is routed by them."
      : `The rules are saved. Every new call is routed by them within ${n} seconds.`,
  rules_restored: (n: number) => `Version ${n} of the rules is back in force, stored as a new version.`,
} as const;

export type NoticeCode = keyof typeof NOTICES;

/**
 * The notice travels in a short-lived cookie, not in the address: it shows once, on the page the action
 * redirects to, and not again on a reload or a bookmark. Over https the cookie is `__Host-` (this host only).
 */
const noticeCookie = (c: Context) =>
  new URL(c.req.url).protocol === "https:" ? "__Host-console_notice" : "console_notice";
const NOTICE_OPTIONS = { httpOnly: true, secure: true, sameSite: "Strict", path: "/" } as const;

/** Redirects (303) to `path`, whose page then shows the notice `code` once. */
export function redirectWithNotice(
  c: Context<ConsoleEnv>,
  path: string,
  code: NoticeCode,
  extra: { n?: number; skipped?: number } = {},
): Response {
  setCookie(c, noticeCookie(c), `${code}.${extra.n ?? 0}.${extra.skipped ?? 0}`, { ...NOTICE_OPTIONS, maxAge: 60 });
  return c.redirect(path, 303);
}

/** The notice an action left for this page (and the cookie that held it removed), or nothing. */
export function noticeOf(c: Context<ConsoleEnv>): Child {
  const raw = getCookie(c, noticeCookie(c));
  if (raw === undefined) return undefined;
  deleteCookie(c, noticeCookie(c), NOTICE_OPTIONS);
  const [, code = "", n = "0", skipped = "0"] = /^([a-z_]{1,40})\.(\d{1,6})\.(\d{1,6})$/.exec(raw) ?? [];
  if (!Object.hasOwn(NOTICES, code)) return undefined;
  return (
    <div class="notice" role="status">
      <p>{NOTICES[code as NoticeCode](Number(n))}</p>
      {Number(skipped) > 0 && (
        <p>{`${skipped} could not be replayed (no readable message); open them in the list below to read or delete them.`}</p>
      )}
    </div>
  );
}
