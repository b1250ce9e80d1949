/** @jsxImportSource hono/jsx */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ConsoleEnv } from "../env.ts";
import { framed, Page, render } from "../layout.tsx";

const TITLES: Partial<Record<number, string>> = {
  400: "Bad request",
  403: "Refused",
  404: "Not found",
  409: "Not possible now",
  413: "Too large",
  422: "Invalid",
  429: "Too many attempts",
  500: "Something went wrong",
  503: "Unavailable",
};

/** An error as a page: its status, a title, the sentence (never a secret), and a way back. */
export function errorPage(
  c: Context<ConsoleEnv>,
  status: ContentfulStatusCode,
  message: string,
  options: { code?: string; parameter?: string; title?: string } = {},
): Promise<Response> {
  const signedIn = c.get("csrf") !== undefined;
  return render(
    c,
    <Page title={options.title ?? TITLES[status] ?? "Error"} {...framed(c)}>
      <div class="problem" role="alert">
        <p>{message}</p>
        {options.parameter !== undefined && (
          <p>
            Parameter: <code>{options.parameter}</code>
          </p>
        )}
        {options.code !== undefined && (
          <p class="muted">
            Code: <code>{options.code}</code>
          </p>
        )}
      </div>
      <p>{signedIn ? <a href="/console">Back to the overview</a> : <a href="/console/login">Sign in</a>}</p>
    </Page>,
    status,
  );
}
