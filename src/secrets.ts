/**
 * The relay's own secrets, and the one test for "is this secret set". Rules may never name the relay's
 * secrets (docs/rules.md): whoever can write the rules could otherwise send them to a URL of their choosing.
 */
export const RELAY_SECRETS = [
  "EXTEND_WEBHOOK_SECRET",
  "EXTEND_WEBHOOK_SECRET_PREVIOUS",
  "ADMIN_TOKEN",
  /** The read-only token (docs/console.md, "Who may do what"). */
  "VIEWER_TOKEN",
  /** Where every alert is posted (docs/alerts.md); its URL is its credential. */
  "ALERT_WEBHOOK",
] as const;
export type RelaySecret = (typeof RELAY_SECRETS)[number];

export function isRelaySecret(name: string): boolean {
  return (RELAY_SECRETS as readonly string[]).includes(name);
}

/** A secret's value, or undefined when it is unset or empty. */
export function secretValue(env: object, name: string): string | undefined {
  const value = (env as Record<string, unknown>)[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}
