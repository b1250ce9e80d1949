/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ConsoleEnv } from "../env.ts";
import { ErrorSummary, noticeOf, Page, render } from "../layout.tsx";

/** The sign-in form, with a problem above it after a refused attempt. */
export function loginPage(
  c: Context<ConsoleEnv>,
  {
    next,
    problem,
    status = 200,
    form = true,
  }: { next: string; problem?: string; status?: ContentfulStatusCode; form?: boolean },
): Promise<Response> {
  return render(
    c,
    <Page title="Sign in" notice={noticeOf(c)}>
      <div class="login">
        {problem !== undefined && (
          <ErrorSummary id="sign-in-problem">
            <p>{problem}</p>
          </ErrorSummary>
        )}
        {form ? (
          <>
            <form class="stack" method="post" action="/console/login">
              <input type="hidden" name="next" value={next} />
              <label for="token">
                Token <span class="hint">(the relay's ADMIN_TOKEN, or VIEWER_TOKEN to look only)</span>
              </label>
              <input
                type="password"
                id="token"
                name="token"
                required
                autocomplete="current-password"
                autofocus={problem === undefined}
              />
              <div>
                <button type="submit">Sign in</button>
              </div>
            </form>
            <p class="muted">
              {`A session ends after ${c.var.settings.CONSOLE_IDLE_MINUTES} minutes without use, after ${c.var.settings.CONSOLE_SESSION_HOURS} hours, at sign-out, or when the token changes.`}
            </p>
          </>
        ) : (
          <p>
            This relay is behind Cloudflare Access: open <a href="/console">the console</a> through your Access sign-in.
          </p>
        )}
      </div>
    </Page>,
    status,
  );
}

/** No way in is configured (or a token is too short): there is nothing to sign in with. */
export function consoleOffPage(c: Context<ConsoleEnv>): Promise<Response> {
  return render(
    c,
    <Page title="The console is off">
      <div class="problem" role="alert">
        <p>
          The console is off until a way in is set: the ADMIN_TOKEN secret (and optionally VIEWER_TOKEN), at least 32
          characters each, or Cloudflare Access.
        </p>
      </div>
      <p>
        Set a token with <code>npx wrangler secret put ADMIN_TOKEN</code> (locally: in <code>.dev.vars</code>), then
        sign in with its value. The same tokens open the admin API. docs/console.md says how to set up Access.
      </p>
    </Page>,
    503,
  );
}
