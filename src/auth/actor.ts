/**
 * Who is asking (docs/console.md, "Who may do what"): every request to /admin and /console gets one actor,
 * from one middleware (src/auth/identify.ts), and every change is recorded under it (src/ops/).
 */

/** `viewer` reads everything and changes nothing; `operator` also changes things. */
export const ROLES = ["viewer", "operator"] as const;
export type Role = (typeof ROLES)[number];

/** Where a request came in: the console's pages or the admin API. */
export type Via = "console" | "api";

export interface Actor {
  /** An email (Cloudflare Access), a service token's common name, or `admin-token` / `viewer-token`. */
  id: string;
  role: Role;
  via: Via;
}

/** Whether `actor` may do what needs `role`. */
export function allows(actor: Pick<Actor, "role">, role: Role): boolean {
  return ROLES.indexOf(actor.role) >= ROLES.indexOf(role);
}

/** Under Access, whether an email is an operator by OPERATORS (emails, or `*@domain` for a whole domain). */
export function isOperator(id: string, operators: readonly string[] | undefined): boolean {
  const email = id.toLowerCase();
  const domain = email.slice(email.lastIndexOf("@"));
  return (operators ?? []).some((pattern) =>
    pattern.startsWith("*@") ? domain === pattern.slice(1) : email === pattern,
  );
}
