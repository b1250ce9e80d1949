import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { numericValue, parseJson, parseJsonBody } from "../src/json.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("JSON that keeps the sender's digits", () => {
  it.each([
    "12345678901234567890",
    "100.50",
    "1.0e2",
    "1E400",
    "-0",
    "-0.0",
    "0.1000000000000000055511151231257827",
    "9007199254740993",
  ])("writes %s back exactly as it came", (number) => {
    const text = `{"a":[${number}],"b":{"c":${number}}}`;
    expect(JSON.stringify(parseJsonBody(bytes(text)))).toBe(text);
    expect(JSON.stringify(parseJson(text))).toBe(text);
  });

  it("leaves plain numbers plain, and compares a kept number by its value", () => {
    const parsed = parseJson('{"a":42,"b":-7,"c":100.50}') as Record<string, unknown>;
    expect(parsed.a).toBe(42);
    expect(parsed.b).toBe(-7);
    expect(JSON.isRawJSON(parsed.c)).toBe(true);
    expect(numericValue(parsed.c)).toBe(100.5);
    expect(numericValue("100.50")).toBe("100.50");
  });

  it("does not mistake digits inside strings for numbers", () => {
    const text = '{"a":"1.0e2","b":"12345678901234567890","c":"\\"1.5"}';
    const parsed = parseJson(text) as Record<string, unknown>;
    expect(parsed).toEqual({ a: "1.0e2", b: "12345678901234567890", c: '"1.5' });
  });

  it("round-trips any JSON number text, wherever it sits", () => {
    const integer = fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String);
    const decimal = fc
      .tuple(integer, fc.stringMatching(/^[0-9]{1,20}$/), fc.option(fc.integer({ min: -400, max: 400 })))
      .map(([i, f, e]) => `${i}.${f}${e === null ? "" : `e${e}`}`);
    fc.assert(
      fc.property(fc.array(fc.oneof(integer, decimal), { minLength: 1, maxLength: 8 }), (numbers) => {
        const text = `{"n":[${numbers.join(",")}],"s":"${numbers[0]}"}`;
        expect(JSON.stringify(parseJson(text))).toBe(text);
      }),
      { numRuns: 500 },
    );
  });
});
