import { afterEach, describe, expect, it, vi } from "vitest";
import { RelayError } from "../src/errors.ts";
import { log, setLogLevel } from "../src/log.ts";
import { DEFAULT_RETRY_SCHEDULE, type Env, parseSettings } from "../src/settings.ts";

const bindings = {} as Pick<Env, "RULES" | "STATE" | "DELIVERIES" | "DEAD_LETTERS">;
const parse = (vars: Partial<Env>) => parseSettings({ ...bindings, ...vars } as Env);

afterEach(() => {
  setLogLevel("info");
  vi.restoreAllMocks();
});

describe("settings", () => {
  it("defaults every var that is absent or empty", () => {
    expect(parse({ MAX_BODY_BYTES: "", RETRY_SCHEDULE: " " })).toEqual({
      maxBodyBytes: 1_048_576,
      rulesCacheSeconds: 30,
      dedupTtlSeconds: 86_400,
      deadLetterTtlSeconds: 1_209_600,
      retrySchedule: DEFAULT_RETRY_SCHEDULE,
      logLevel: "info",
      webhookSecrets: [],
    });
  });

  it("reads the current secret first, then the previous one", () => {
    const settings = parse({ EXTEND_WEBHOOK_SECRET: "new", EXTEND_WEBHOOK_SECRET_PREVIOUS: "old" });
    expect(settings).toMatchObject({ webhookSecrets: ["new", "old"] });
  });

  it("takes DEDUP_TTL_SECONDS=0 as memory-only dedupe and KV's shortest expiry as the least TTL", () => {
    expect(parse({ DEDUP_TTL_SECONDS: "0" })).toMatchObject({ dedupTtlSeconds: 0 });
    expect(parse({ DEDUP_TTL_SECONDS: "60" })).toMatchObject({ dedupTtlSeconds: 60 });
    const error = parse({ DEDUP_TTL_SECONDS: "59" }) as RelayError;
    expect(error.message).toContain('DEDUP_TTL_SECONDS must be 0 (off) or a whole number from 60 to 2592000, got "59"');
  });

  it("parses RETRY_SCHEDULE as comma-separated seconds", () => {
    expect(parse({ RETRY_SCHEDULE: "1, 2,30" })).toMatchObject({ retrySchedule: [1, 2, 30] });
  });

  it.each([
    ["MAX_BODY_BYTES", "1MB"],
    ["MAX_BODY_BYTES", "100"],
    ["RULES_CACHE_SECONDS", "-1"],
    ["DEDUP_TTL_SECONDS", "30"],
    ["DEAD_LETTER_TTL_SECONDS", "1.5"],
    ["RETRY_SCHEDULE", "10,,20"],
    ["RETRY_SCHEDULE", "90000"],
    ["LOG_LEVEL", "verbose"],
  ])("refuses %s=%j with 503 misconfigured naming it", (name, value) => {
    const result = parse({ [name]: value });
    expect(result).toBeInstanceOf(RelayError);
    const error = result as RelayError;
    expect(error.status).toBe(503);
    expect(error.code).toBe("misconfigured");
    expect(error.message).toContain(name);
    expect(error.message).toContain(value);
  });
});

describe("LOG_LEVEL", () => {
  it("drops events below the level and keeps the rest", () => {
    const info = vi.spyOn(console, "log").mockImplementation(() => {});
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    setLogLevel("warn");
    log("info", "ingress", { id: "a" });
    log("warn", "delivery_attempt", { deliveryId: "b" });
    expect(info).not.toHaveBeenCalled();
    expect(warn.mock.calls.map(([line]) => JSON.parse(line as string))).toEqual([
      { level: "warn", event: "delivery_attempt", deliveryId: "b" },
    ]);
    setLogLevel("info");
    log("info", "ingress", { id: "c" });
    expect(info).toHaveBeenCalledTimes(1);
  });
});
