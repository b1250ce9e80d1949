/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ConsoleEnv } from "../env.ts";
import { noticeOf, Page, render } from "../layout.tsx";

/** The sign-in form, with a problem above it after a refused attempt. */
export function loginPage(
  c: Context<ConsoleEnv>,
  { next, problem, status = 200 }: { next: string; problem?: string; status?: ContentfulStatusCode },
): Promise<Response> {
  return render(
    c,
    <Page title="Sign in" notice={noticeOf(c)}>
      <div class="login">
        {problem !== undefined && (
          <div class="problem" role="alert">
            <p>{problem}</p>
          </div>
        )}
        <form class="stack" method="post" action="/console/login">
          <input type="hidden" name="next" value={next} />
          <label for="token">
            Admin token <span class="hint">(the relay's ADMIN_TOKEN secret)</span>
          </label>
          <input type="password" id="token" name="token" required autocomplete="current-password" autofocus />
          <div>
            <button type="submit">Sign in</button>
          </div>
        </form>
        <p class="muted">A session lasts 8 hours, or until the token changes.</p>
      </div>
    </Page>,
    status,
  );
}

/** ADMIN_TOKEN is not set: there is nothing to sign in with. */
export function consoleOffPage(c: Context<ConsoleEnv>): Promise<Response> {
  return render(
    c,
    <Page title="The console is off">
      <div class="problem" role="alert">
        <p>The console is off until the ADMIN_TOKEN secret is set.</p>
      </div>
      <p>
        Set it with <code>npx wrangler secret put ADMIN_TOKEN</code> (locally: in <code>.dev.vars</code>), then sign in
        with its value. The same token opens the admin API.
      </p>
    </Page>,
    503,
  );
}
