import { afterEach, describe, expect, it, vi } from "vitest";
import { RelayError } from "../src/errors.ts";
import { log, setLogLevel } from "../src/log.ts";
import { consumerSettings, DEFAULT_RETRY_SCHEDULE, parseSettings, settingsOf } from "../src/settings.ts";

const parse = (vars: Record<string, string | undefined>) => parseSettings(vars);

afterEach(() => {
  setLogLevel("info");
  vi.restoreAllMocks();
});

describe("settings", () => {
  it("defaults every var that is absent or empty", () => {
    expect(parse({ MAX_BODY_BYTES: "", RETRY_SCHEDULE: " " })).toEqual({
      settings: {
        MAX_BODY_BYTES: 10 * 1_048_576,
        MAX_HELD_PER_DESTINATION: 100_000,
        RULES_CACHE_SECONDS: 30,
        LEDGER_RETENTION_DAYS: 14,
        DEAD_LETTER_TTL_SECONDS: 1_209_600,
        RETRY_SCHEDULE: DEFAULT_RETRY_SCHEDULE,
        ALERT_COOLDOWN_MINUTES: 60,
        SENDER_SILENCE_MINUTES: 0,
        PUBLIC_URL: undefined,
        ALERT_EMAIL_FROM: undefined,
        LOG_LEVEL: "info",
        webhookSecrets: [],
      },
      problems: [],
    });
  });

  it("reads the current secret first, then the previous one", () => {
    const { settings } = parse({ EXTEND_WEBHOOK_SECRET: "new", EXTEND_WEBHOOK_SECRET_PREVIOUS: "old" });
    expect(settings.webhookSecrets).toEqual(["new", "old"]);
  });

  it("keeps the ledger 1 to 90 days", () => {
    expect(parse({ LEDGER_RETENTION_DAYS: "90" }).settings.LEDGER_RETENTION_DAYS).toBe(90);
    expect(parse({ LEDGER_RETENTION_DAYS: "0" }).problems).toEqual([
      'LEDGER_RETENTION_DAYS must be a whole number from 1 to 90, got "0"',
    ]);
  });

  it("reads the alert settings: silence off by 0 or empty, the public URL without a trailing slash", () => {
    expect(parse({ SENDER_SILENCE_MINUTES: "0" }).settings.SENDER_SILENCE_MINUTES).toBe(0);
    expect(parse({ SENDER_SILENCE_MINUTES: "90" }).settings.SENDER_SILENCE_MINUTES).toBe(90);
    expect(parse({ PUBLIC_URL: "https://relay.example.com/" }).settings.PUBLIC_URL).toBe("https://relay.example.com");
    expect(parse({ ALERT_EMAIL_FROM: " relay@example.com " }).settings.ALERT_EMAIL_FROM).toBe("relay@example.com");
  });

  it("parses RETRY_SCHEDULE as comma-separated seconds", () => {
    expect(parse({ RETRY_SCHEDULE: "1, 2,30" }).settings.RETRY_SCHEDULE).toEqual([1, 2, 30]);
  });

  it.each([
    ["MAX_BODY_BYTES", "1MB"],
    ["MAX_BODY_BYTES", "100"],
    ["RULES_CACHE_SECONDS", "-1"],
    ["LEDGER_RETENTION_DAYS", "91"],
    ["DEAD_LETTER_TTL_SECONDS", "1.5"],
    ["RETRY_SCHEDULE", "10,,20"],
    ["RETRY_SCHEDULE", "10,30,2m"],
    ["RETRY_SCHEDULE", "90000"],
    ["LOG_LEVEL", "verbose"],
    ["ALERT_COOLDOWN_MINUTES", "0"],
    ["ALERT_COOLDOWN_MINUTES", "1441"],
    ["SENDER_SILENCE_MINUTES", "5"],
    ["PUBLIC_URL", "relay.example.com"],
    ["PUBLIC_URL", "ftp://relay.example.com"],
    ["ALERT_EMAIL_FROM", "alerts at example.com"],
  ])("refuses %s=%j at the door with 503 misconfigured naming it", (name, value) => {
    let error: unknown;
    try {
      settingsOf({ [name]: value });
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(RelayError);
    expect(error).toMatchObject({ status: 503, code: "misconfigured" });
    expect((error as RelayError).message).toContain(name);
    expect((error as RelayError).message).toContain(value);
  });

  it("gives the queue consumers the other settings as set and the bad one's default, logging it once at error", () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    const env = { RETRY_SCHEDULE: "10,30,2m", RULES_CACHE_SECONDS: "5" };
    const settings = consumerSettings(env);
    expect(settings.RETRY_SCHEDULE).toEqual(DEFAULT_RETRY_SCHEDULE);
    expect(settings.RULES_CACHE_SECONDS).toBe(5);
    consumerSettings(env);
    expect(error.mock.calls.map(([line]) => JSON.parse(line as string))).toEqual([
      { level: "error", event: "settings_invalid", problems: [expect.stringContaining("RETRY_SCHEDULE")] },
    ]);
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
