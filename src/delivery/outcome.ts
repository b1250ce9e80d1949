/**
 * What one delivery attempt's result means, and when to try again: pure functions of their inputs.
 */
/**
 * What a receiver answered to a failed attempt, for the operator who inspects it (docs/console.md): its headers and
 * the start of its body, secrets the request carried masked.
 */
export interface ReceiverAnswer {
  headers: [string, string][];
  body: string;
}

export type AttemptResult =
  | { kind: "response"; status: number; retryAfter: string | null; answer?: ReceiverAnswer }
  | { kind: "timeout"; timeoutMs: number }
  | { kind: "network"; error: string };

export type Outcome =
  | { kind: "delivered" }
  | { kind: "retry"; reason: string; retryAfterSeconds?: number }
  | { kind: "permanent"; reason: string };

const MAX_DELAY_SECONDS = 86_400;

/** 2xx done; 408, 425, 429, 5xx, network error and timeout retry; 3xx, 410 and other 4xx are permanent. */
export function classify(result: AttemptResult, now = Date.now()): Outcome {
  if (result.kind === "timeout") return { kind: "retry", reason: `no answer within ${result.timeoutMs} ms` };
  if (result.kind === "network") return { kind: "retry", reason: `network error: ${result.error}` };
  const { status } = result;
  if (status >= 200 && status < 300) return { kind: "delivered" };
  if (status === 408 || status === 425 || status === 429 || status >= 500) {
    const retryAfterSeconds = parseRetryAfter(result.retryAfter, now);
    return retryAfterSeconds === undefined
      ? { kind: "retry", reason: `HTTP ${status}` }
      : { kind: "retry", reason: `HTTP ${status}`, retryAfterSeconds };
  }
  if (status >= 300 && status < 400) return { kind: "permanent", reason: `HTTP ${status}: redirects are not followed` };
  return { kind: "permanent", reason: `HTTP ${status}` };
}

/** `Retry-After` as whole seconds from now (delta-seconds or an HTTP date), capped at 24 h. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  let seconds: number;
  if (/^\d+$/.test(trimmed)) seconds = Number(trimmed);
  else {
    const date = Date.parse(trimmed);
    if (Number.isNaN(date) || !/[a-z]/i.test(trimmed)) return undefined;
    seconds = Math.ceil((date - now) / 1000);
  }
  return Math.min(Math.max(seconds, 0), MAX_DELAY_SECONDS);
}

/**
 * Seconds to wait after failed attempt number `attempt` (1-based): the schedule's entry (its last one
 * once past the end) with ±20% jitter so that retries of many messages spread out, capped at 24 h.
 */
export function backoffSeconds(attempt: number, schedule: readonly number[], random = Math.random()): number {
  if (schedule.length === 0) return 0;
  const base = schedule[Math.min(Math.max(attempt, 1), schedule.length) - 1]!;
  return Math.min(Math.round(base * (0.8 + 0.4 * random)), MAX_DELAY_SECONDS);
}

/**
 * The delay before the next attempt: the backoff, or the receiver's Retry-After when that is longer. A
 * Retry-After can only lengthen the wait (`0` or a date in the past changes nothing), capped at 24 h.
 */
export function nextDelaySeconds(
  outcome: Extract<Outcome, { kind: "retry" }>,
  attempt: number,
  schedule: readonly number[],
  random = Math.random(),
): number {
  return Math.max(backoffSeconds(attempt, schedule, random), outcome.retryAfterSeconds ?? 0);
}
