/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
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
}

export const Page: FC<PropsWithChildren<PageProps>> = ({ title, active, csrf, actor, notice, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
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
              {actor !== undefined && <span class="muted">{`${actor.id} (${actor.role})`}</span>}{" "}
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

/** Validation issues or warnings, each by its path (and line, when known). */
export const Issues: FC<{ issues: readonly Issue[]; lines?: (path: string) => number | undefined; id?: string }> = ({
  issues,
  lines,
  id,
}) => (
  <ul class="issues">
    {issues.map((issue, i) => {
      const line = lines?.(issue.path);
      return (
        <li id={id === undefined ? undefined : `${id}-${i + 1}`}>
          <code>{issue.path}</code>
          {line === undefined ? "" : <span class="muted">{` (line ${line})`}</span>}: {issue.message}
        </li>
      );
    })}
  </ul>
);

/** A table that scrolls sideways on a narrow screen, named for assistive technology. */
export const Scroll: FC<PropsWithChildren<{ label: string }>> = ({ label, children }) => (
  <section class="scroll" aria-label={label} tabindex={0}>
    {children}
  </section>
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
    <Scroll label={label}>
      <table>
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
              <th scope="row" class="num">
                {a.attempt}
                {a.replay === true && <span class="muted"> (replay)</span>}
              </th>
              <td>
                <Time at={a.at} />
              </td>
              <td class="num">{a.status ?? <span class="muted">—</span>}</td>
              <td class="why">{a.error ?? <span class="muted">—</span>}</td>
              <td class="num">
                <Ms ms={a.durationMs} />
              </td>
              <td>
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
  );

/** A block of text (a document, a body) that scrolls within the page; focusable so a keyboard can scroll it. */
export const Text: FC<{ label: string; text: string }> = ({ label, text }) => (
  <section class="text" aria-label={label} tabindex={0}>
    <pre>{text}</pre>
  </section>
);

/** What the console says after an action it redirected from (`?notice=`); only these texts, never the query's. */
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
    "Paused: its deliveries are held in arrival order and none is attempted until it is resumed (every consumer sees it within 2 s).",
  resumed: () => "Resumed: what it held goes out now, in arrival order.",
  rules_saved: () => "The rules are saved. This isolate routes by them at once; the others within RULES_CACHE_SECONDS.",
  rules_restored: (n: number) => `Version ${n} of the rules is back in force, stored as a new version.`,
} as const;

export type NoticeCode = keyof typeof NOTICES;

export function noticeOf(c: Context<ConsoleEnv>): Child {
  const code = c.req.query("notice");
  if (code === undefined || !Object.hasOwn(NOTICES, code)) return undefined;
  const n = Number(/^\d{1,6}$/.test(c.req.query("n") ?? "") ? c.req.query("n") : 0);
  const skipped = Number(/^\d{1,6}$/.test(c.req.query("skipped") ?? "") ? c.req.query("skipped") : 0);
  return (
    <div class="notice" role="status">
      <p>{NOTICES[code as NoticeCode](n)}</p>
      {skipped > 0 && (
        <p>{`${skipped} could not be replayed (no readable message); open them in the list below to read or delete them.`}</p>
      )}
    </div>
  );
}

/** `path?notice=code&…`: where an action redirects to. */
export function withNotice(path: string, code: NoticeCode, extra: Record<string, string | number> = {}): string {
  const url = new URL(path, "https://console.invalid");
  url.searchParams.set("notice", code);
  for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, String(value));
  return `${url.pathname}${url.search}`;
}
