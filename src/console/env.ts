import type { AppEnv } from "../env.ts";

/** What console handlers see: the app's bindings, settings and actor, and once identified the forms' CSRF token. */
export interface ConsoleEnv {
  Bindings: AppEnv["Bindings"];
  Variables: AppEnv["Variables"] & {
    /** The CSRF token of the actor's forms (src/auth/sessions.ts); absent when nobody is signed in. */
    csrf?: string;
    /** The posted form, read once (src/console/forms.ts). */
    form?: URLSearchParams;
  };
}
