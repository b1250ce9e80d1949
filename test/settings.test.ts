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
        SECRET_HOSTS: undefined,
        DESTINATION_HOSTS: undefined,
        ACCESS_TEAM_DOMAIN: undefined,
        ACCESS_AUD: undefined,
        OPERATORS: undefined,
        CONSOLE_TOKEN_SIGN_IN: undefined,
        CONSOLE_SESSION_HOURS: 8,
        CONSOLE_IDLE_MINUTES: 30,
        ACTIVITY_RETENTION_DAYS: 400,
        DEV_CLOCK: undefined,
        LOG_LEVEL: "info",
        webhookSecrets: [],
      },
      problems: [],
      logged: [],
    });
  });

  it("reads the current secret first, then the previous one", () => {
    const { settings } = parse({ EXTEND_WEBHOOK_SECRET: "new", EXTEND_WEBHOOK_SECRET_PREVIOUS: "old" });
    expect(settings.webhookSecrets).toEqual(["new", "old"]);
  });

  it("keeps the ledger 1 to 90 days", () => {
    expect(parse({ LEDGER_RETENTION_DAYS: "90" }).settings.LEDGER_RETENTION_DAYS).toBe(90);
    expect(parse({ LEDGER_RETENTION_DAYS: "0" }).problems).toEqual([
      "LEDGER_RETENTION_DAYS must be a whole number from 1 to 90",
    ]);
  });

  it("reads the alert settings: silence off by 0 or empty, the public URL without a trailing slash", () => {
    expect(parse({ SENDER_SILENCE_MINUTES: "0" }).settings.SENDER_SILENCE_MINUTES).toBe(0);
    expect(parse({ SENDER_SILENCE_MINUTES: "90" }).settings.SENDER_SILENCE_MINUTES).toBe(90);
    expect(parse({ PUBLIC_URL: "https://relay.example.com/" }).settings.PUBLIC_URL).toBe("https://relay.example.com");
    expect(parse({ ALERT_EMAIL_FROM: " relay@example.com " }).settings.ALERT_EMAIL_FROM).toBe("relay@example.com");
  });

  it("reads SECRET_HOSTS as secret → hosts, DESTINATION_HOSTS as a list, and both ACCESS_ vars or neither", () => {
    const { settings } = parse({
      SECRET_HOSTS: '{"WMS_SECRET": "WMS.example.com", "SHOP_SECRET": ["shop.example.com", "*.shop.example.com"]}',
      DESTINATION_HOSTS: "wms.example.com, *.shop.example.com",
    });
    expect([...settings.SECRET_HOSTS!]).toEqual([
      ["WMS_SECRET", ["wms.example.com"]],
      ["SHOP_SECRET", ["shop.example.com", "*.shop.example.com"]],
    ]);
    expect(settings.DESTINATION_HOSTS).toEqual(["wms.example.com", "*.shop.example.com"]);
    for (const bad of ['["WMS_SECRET"]', '{"WMS_SECRET": []}', '{"WMS_SECRET": "https://wms.example.com"}', "{"]) {
      expect(parse({ SECRET_HOSTS: bad }).problems, bad).toEqual([
        expect.stringMatching(/^SECRET_HOSTS must be a JSON object/),
      ]);
    }
    expect(parse({ ACCESS_TEAM_DOMAIN: "https://team.cloudflareaccess.com" }).problems).toEqual([
      "ACCESS_AUD must be set when ACCESS_TEAM_DOMAIN is (Cloudflare Access needs both)",
    ]);
    expect(parse({ ACCESS_TEAM_DOMAIN: "http://team.cloudflareaccess.com", ACCESS_AUD: "a" }).problems).toHaveLength(1);
    expect(parse({ ACCESS_TEAM_DOMAIN: "http://127.0.0.1:9999", ACCESS_AUD: "a" }).problems).toEqual([]);
    expect(parse({ OPERATORS: "ann@example.com, *@ops.example.com" }).settings.OPERATORS).toEqual([
      "ann@example.com",
      "*@ops.example.com",
    ]);
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
    // The answer is public: it names the var and what it must be, never the value (the log keeps that).
    expect((error as RelayError).message).not.toContain(`"${value}"`);
    expect(JSON.stringify((error as RelayError).toJSON())).not.toContain(JSON.stringify(`"${value}"`).slice(1, -1));
  });

  it("logs the bad value once at error (settings_invalid), where only the operator reads it", () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    expect(() => settingsOf({ RETRY_SCHEDULE: "10,30,2m-private" })).toThrow(RelayError);
    expect(error.mock.calls.map(([line]) => JSON.parse(line as string))).toEqual([
      {
        level: "error",
        event: "settings_invalid",
        problems: [
          'RETRY_SCHEDULE must be comma-separated whole seconds from 0 to 86400 (Queues\' longest delay), got "10,30,2m-private"',
        ],
      },
    ]);
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
