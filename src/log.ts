/**
 * One JSON object per event on stdout (Workers Logs / `wrangler tail` pick it up). Callers pass ids,
 * counts and codes only: never bodies, never secrets.
 */
export type LogLevel = "info" | "warn" | "error";
export const LOG_LEVELS: readonly LogLevel[] = ["info", "warn", "error"];

// Set from the LOG_LEVEL var when the settings are parsed (src/settings.ts); one per isolate.
let threshold = 0;

export function setLogLevel(level: LogLevel): void {
  threshold = LOG_LEVELS.indexOf(level);
}

export function log(level: LogLevel, event: string, fields: Record<string, unknown> = {}): void {
  if (LOG_LEVELS.indexOf(level) < threshold) return;
  const line = JSON.stringify({ level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
