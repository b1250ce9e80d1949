import { describe, expect, it } from "vitest";
import { parseJsonBody } from "../src/json.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const slices = (text: string, key = "Notifications") => {
  const { outline } = parseJsonBody(bytes(text), key);
  return {
    members: outline.members.map((m) => [m.key, text.slice(m.start, m.end), text.slice(m.value, m.end)]),
    elements: outline.elements.map(([start, end]) => text.slice(start, end)),
  };
};

describe("the outline of a JSON body", () => {
  it("finds each top-level member and each element of the named array, as written", () => {
    const text = '{ "Id" : "a,b}" ,"N":[ {"x":[1,{"y":"]"}]} ,\r\n 2.50 , "s\\"," ], "z":{"N":[9]} }';
    expect(slices(text).elements).toEqual([]); // no member is called Notifications here
    expect(slices(text, "N")).toEqual({
      members: [
        ["Id", '"Id" : "a,b}"', '"a,b}"'],
        ["N", '"N":[ {"x":[1,{"y":"]"}]} ,\r\n 2.50 , "s\\"," ]', '[ {"x":[1,{"y":"]"}]} ,\r\n 2.50 , "s\\"," ]'],
        ["z", '"z":{"N":[9]}', '{"N":[9]}'],
      ],
      elements: ['{"x":[1,{"y":"]"}]}', "2.50", '"s\\","'],
    });
  });

  it("takes the last of a repeated member, as JSON.parse does, and decodes escaped keys", () => {
    const text = '{"N":[1,2],"\\u004e":[3]}';
    expect(slices(text, "N").elements).toEqual(["3"]);
    expect(JSON.parse(text).N).toEqual([3]);
  });

  it("reads strings that end in escaped backslashes", () => {
    const text = '{"a":"x\\\\","N":["\\\\\\"",4]}';
    expect(slices(text, "N").elements).toEqual(['"\\\\\\""', "4"]);
  });

  it("has nothing to say about a body that is not an object", () => {
    expect(slices("[1,2]", "N")).toEqual({ members: [], elements: [] });
  });

  it("refuses nesting past 64 levels before parsing, and counts brackets outside strings only", () => {
    expect(() => parseJsonBody(bytes(`${"[".repeat(65)}${"]".repeat(65)}`))).toThrow(/64 levels/);
    expect(parseJsonBody(bytes(`["${"[".repeat(100)}"]`)).value).toEqual(["[".repeat(100)]);
  });
});
