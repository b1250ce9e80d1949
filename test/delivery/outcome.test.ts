import { describe, expect, it } from "vitest";
import { backoffSeconds, classify, nextDelaySeconds, parseRetryAfter } from "../../src/delivery/outcome.ts";
import { DEFAULT_RETRY_SCHEDULE } from "../../src/settings.ts";

const response = (status: number, retryAfter: string | null = null) => ({
  kind: "response" as const,
  status,
  retryAfter,
});

describe("outcome classes", () => {
  it.each([200, 201, 202, 204, 299])("%i is delivered", (status) => {
    expect(classify(response(status)).kind).toBe("delivered");
  });
  it.each([408, 425, 429, 500, 502, 503, 504, 599])("%i is retried", (status) => {
    expect(classify(response(status)).kind).toBe("retry");
  });
  it.each([301, 302, 307, 308, 400, 401, 403, 404, 409, 410, 413, 422])("%i is permanent", (status) => {
    expect(classify(response(status)).kind).toBe("permanent");
  });
  it("retries network errors and timeouts", () => {
    expect(classify({ kind: "network", error: "connection refused" })).toEqual({
      kind: "retry",
      reason: "network error: connection refused",
    });
    expect(classify({ kind: "timeout", timeoutMs: 5000 })).toEqual({
      kind: "retry",
      reason: "no answer within 5000 ms",
    });
  });
  it("says redirects are not followed", () => {
    expect(classify(response(302))).toEqual({ kind: "permanent", reason: "HTTP 302: redirects are not followed" });
  });
});

describe("Retry-After", () => {
  const now = Date.parse("2026-11-28T12:00:00Z");
  it("reads delta-seconds", () => {
    expect(parseRetryAfter("120", now)).toBe(120);
    expect(classify(response(429, "7"), now)).toEqual({ kind: "retry", reason: "HTTP 429", retryAfterSeconds: 7 });
  });
  it("reads an HTTP date", () => {
    expect(parseRetryAfter("Sat, 28 Nov 2026 12:05:00 GMT", now)).toBe(300);
    expect(parseRetryAfter("Sat, 28 Nov 2026 11:00:00 GMT", now)).toBe(0);
  });
  it("caps at 24 hours and ignores garbage", () => {
    expect(parseRetryAfter("999999", now)).toBe(86_400);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter("-5", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
  it("replaces the backoff when given", () => {
    expect(
      nextDelaySeconds({ kind: "retry", reason: "HTTP 503", retryAfterSeconds: 42 }, 1, DEFAULT_RETRY_SCHEDULE, 0.5),
    ).toBe(42);
    expect(nextDelaySeconds({ kind: "retry", reason: "HTTP 503" }, 1, DEFAULT_RETRY_SCHEDULE, 0.5)).toBe(10);
  });
});

describe("backoff", () => {
  it("follows the schedule and stays on its last step", () => {
    const mid = (attempt: number) => backoffSeconds(attempt, DEFAULT_RETRY_SCHEDULE, 0.5);
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 50].map(mid)).toEqual([
      10, 30, 120, 300, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400, 86400,
    ]);
  });
  it("jitters by ±20% and never exceeds 24 h", () => {
    expect(backoffSeconds(3, DEFAULT_RETRY_SCHEDULE, 0)).toBe(96);
    expect(backoffSeconds(3, DEFAULT_RETRY_SCHEDULE, 0.999999)).toBe(144);
    expect(backoffSeconds(12, DEFAULT_RETRY_SCHEDULE, 0.999999)).toBe(86_400);
  });
  it("uses a RETRY_SCHEDULE override", () => {
    expect(backoffSeconds(1, [1, 2], 0.5)).toBe(1);
    expect(backoffSeconds(5, [1, 2], 0.5)).toBe(2);
    expect(backoffSeconds(1, [0], 0.9)).toBe(0);
  });
});
