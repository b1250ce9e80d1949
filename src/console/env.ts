import type { AppEnv } from "../env.ts";
import type { Session } from "./session.ts";

/** What console handlers see: the app's bindings and settings, the session and its CSRF token once signed in. */
export interface ConsoleEnv {
  Bindings: AppEnv["Bindings"];
  Variables: AppEnv["Variables"] & {
    session?: Session;
    csrf?: string;
    /** The posted form, read once (src/console/forms.ts). */
    form?: URLSearchParams;
    /** The ADMIN_TOKEN, present past the "console is off" check. */
    token: string;
  };
}
