import { describe, expect, it } from "vitest";
import { lineFinder } from "../../src/console/json-lines.ts";

describe("the line of an issue's path in the rules editor", () => {
  const text = `{
  "version": 1,
  "destinations": {
    "wms": { "url": "https://wms.test/a\\"b", "signing": { "scheme": "none" } }
  },
  "routes": [
    { "name": "a", "actions": ["OrderCreated"], "to": ["wms"] },
    {
      "name": "b",
      "where": { "Details.OrderType": "NormalOrder" },
      "to": [
        "nowhere"
      ]
    }
  ]
}`;
  const line = lineFinder(text);

  it("is where the value (or its key) starts, for paths as issues write them", () => {
    expect(line("(root)")).toBe(1);
    expect(line("version")).toBe(2);
    expect(line("destinations.wms.signing.scheme")).toBe(4);
    expect(line("routes[0].to[0]")).toBe(7);
    expect(line("routes[1].where.Details.OrderType")).toBe(10);
    expect(line("routes[1].to[0]")).toBe(12);
  });

  it("falls back to the nearest parent for a member that is missing", () => {
    expect(line("routes[1].actions")).toBe(8);
    expect(line("destinations.crm.url")).toBe(3);
  });

  it("knows no lines in a text that is not JSON, and always ends", () => {
    for (const broken of ["{ nope", '{"a": [1, 2', '{"a": "unterminated', "", "]"]) {
      expect(lineFinder(broken)("a")).toBeUndefined();
    }
  });
});
