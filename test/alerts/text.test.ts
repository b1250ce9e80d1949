import { describe, expect, it } from "vitest";
import { alertText } from "../../src/alerts/text.ts";

/** What an alert says (docs/alerts.md): counts of one read as one, not as many. */
describe("alert texts", () => {
  const at = Date.parse("2026-12-08T10:00:00Z");

  it("say one failed attempt and one held delivery in the singular", () => {
    const paused = alertText(
      {
        id: "p",
        type: "destination_paused",
        destination: "pim",
        count: 1,
        firstAt: at,
        lastAt: at,
        lastStatus: 503,
        reason: "circuit",
        probeAt: at + 3_600_000,
        held: 1,
      },
      undefined,
    );
    expect(paused.subject).toBe("extend-relay: pim is paused after 1 failed attempt");
    expect(paused.text).toContain("pim is paused: 1 attempt in a row failed since");
    const recovered = alertText(
      {
        id: "r",
        type: "destination_recovered",
        destination: "pim",
        count: 1,
        firstAt: at,
        lastAt: at + 60_000,
        held: 1,
      },
      undefined,
    );
    expect(recovered.text).toContain("after 1 failed attempt in a row");
    expect(recovered.text).toContain("1 held delivery is going out in arrival order.");
  });

  it("say several in the plural", () => {
    const paused = alertText(
      {
        id: "p",
        type: "destination_paused",
        destination: "pim",
        count: 20,
        firstAt: at,
        lastAt: at,
        reason: "circuit",
        held: 3,
      },
      undefined,
    );
    expect(paused.subject).toBe("extend-relay: pim is paused after 20 failed attempts");
    expect(paused.text).toContain("20 attempts in a row failed");
  });
});
