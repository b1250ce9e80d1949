/**
 * One JSON object per event on stdout (Workers Logs / `wrangler tail` pick it up). Callers pass ids,
 * counts and codes only: never bodies, never secrets.
 */
export type LogLevel = "info" | "warn" | "error";

export function log(level: LogLevel, event: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
