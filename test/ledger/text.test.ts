import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { getCallText } from "../../src/ledger/calls.ts";
import { packText, unpackText } from "../../src/ledger/texts.ts";
import { writeLedger } from "../../src/ledger/write.ts";
import type { CallRecord } from "../../src/queues/call.ts";
import { clearLedger, FIXTURES, freshId } from "../helpers.ts";

beforeEach(() => clearLedger());

const SAMPLE = FIXTURES["OrderCreated.json"]!;
const UNICODE = `{"Notifications":[{"Action":"CustomerChanged","Details":{"Name":"Åsa Öberg 😀","Note":"rad 1\\r\\nrad 2"}}],"Pad":"${"åäö ".repeat(200)}"}`;

const SUMMARY = { notifications: 0, deliveries: 0, actions: [], keys: [] };

function textRecord(id: string, part: number, of: number, chunk: string): CallRecord {
  return { kind: "call", v: 1, id, at: Date.now(), attempt: "1", outcome: "accepted", text: { part, of, chunk } };
}

describe("a call's text in the ledger", () => {
  it("is deflated when that is smaller and reads back exactly, Unicode and CRLF included", async () => {
    for (const text of [SAMPLE, UNICODE]) {
      const packed = packText(text);
      expect(packed).toBeInstanceOf(Uint8Array);
      expect((packed as Uint8Array).byteLength).toBeLessThan(new TextEncoder().encode(text).byteLength);
      expect(unpackText(packed)).toBe(text);
      // D1 hands BLOBs back as arrays of numbers.
      expect(unpackText([...(packed as Uint8Array)])).toBe(text);
    }
  });

  it("stays text when short or when deflating would not make it smaller", async () => {
    expect(packText('{"Id":"x"}')).toBe('{"Id":"x"}');
    // 128 printable characters from a fixed pseudo-random sequence (mulberry32, seed 1): DEFLATE makes them
    // 130 bytes, so they stay text.
    let a = 1;
    const next = () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return (t ^ (t >>> 14)) >>> 0;
    };
    const noise = Array.from({ length: 128 }, () => String.fromCharCode(0x21 + (next() % 94))).join("");
    expect(packText(noise)).toBe(noise);
  });

  it("goes to R2 with the other calls of its write, one object, each text read back by its range", async () => {
    const ids = [freshId(), freshId(), freshId()];
    const texts = [SAMPLE, UNICODE, '{"Id":"short"}'];
    const put = vi.spyOn(env.PAYLOADS, "put");
    await writeLedger(
      env.LEDGER,
      env.PAYLOADS,
      ids.map((id, i) => ({ ...textRecord(id, 0, 1, texts[i]!), summary: SUMMARY, text: texts[i]! })),
    );
    expect(put).toHaveBeenCalledTimes(1);
    expect(String(put.mock.calls[0]![0])).toMatch(/^ledger\/texts\/\d{4}-\d{2}-\d{2}\//);
    for (const [i, id] of ids.entries()) expect(await getCallText(env.LEDGER, env.PAYLOADS, id)).toBe(texts[i]);
    // Nothing of the texts is in D1.
    expect(await env.LEDGER.prepare("SELECT COUNT(*) AS n FROM ledger_text_parts").first("n")).toBe(0);
  });

  it("stays in D1 when R2 does not take it, and reads back the same", async () => {
    const id = freshId();
    const put = vi.spyOn(env.PAYLOADS, "put").mockRejectedValue(new Error("R2 is down"));
    vi.spyOn(console, "warn").mockImplementation(() => {});
    await writeLedger(env.LEDGER, env.PAYLOADS, [
      { ...textRecord(id, 0, 1, UNICODE), summary: SUMMARY, text: UNICODE },
    ]);
    expect(put).toHaveBeenCalled();
    put.mockRestore();
    expect(await getCallText(env.LEDGER, env.PAYLOADS, id)).toBe(UNICODE);
  });

  it("of relay 0.1, in parts, is kept in D1 as BLOBs and joined back in order once all are there", async () => {
    const id = freshId();
    const third = Math.ceil(UNICODE.length / 3);
    const parts = [0, 1, 2].map((k) => UNICODE.slice(k * third, (k + 1) * third));
    // Parts arrive in any order, with the last delivery's message.
    await writeLedger(env.LEDGER, env.PAYLOADS, [textRecord(id, 2, 3, parts[2]!), textRecord(id, 0, 3, parts[0]!)]);
    expect(await getCallText(env.LEDGER, env.PAYLOADS, id)).toBeNull(); // not all of it yet
    await writeLedger(env.LEDGER, env.PAYLOADS, [textRecord(id, 1, 3, parts[1]!)]);
    expect(await getCallText(env.LEDGER, env.PAYLOADS, id)).toBe(UNICODE);
    const types = await env.LEDGER.prepare("SELECT typeof(chunk) AS t FROM ledger_text_parts ORDER BY part").all<{
      t: string;
    }>();
    expect(types.results.map((r) => r.t)).toEqual(["blob", "blob", "blob"]);
  });

  it("reads as missing when its stored bytes do not inflate, logged with the call's Id", async () => {
    const id = freshId();
    await writeLedger(env.LEDGER, env.PAYLOADS, [textRecord(id, 0, 2, "x")]);
    await env.LEDGER.prepare(
      "INSERT INTO ledger_text_parts (call, part, parts, chunk) VALUES ((SELECT seq FROM ledger_calls WHERE id = ?1), 1, 2, ?2)",
    )
      .bind(id, new Uint8Array([1, 2, 3, 4, 5]))
      .run();
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    expect(await getCallText(env.LEDGER, env.PAYLOADS, id)).toBeNull();
    expect(error.mock.calls.map(([line]) => JSON.parse(String(line)))).toContainEqual(
      expect.objectContaining({ event: "call_text_unreadable", callId: id }),
    );
    error.mockRestore();
  });

  it("refuses bytes that do not inflate, rather than returning something else", async () => {
    expect(() => unpackText(new Uint8Array([1, 2, 3, 4, 5]))).toThrow();
    expect(() => unpackText(42)).toThrow(/neither text nor bytes/);
  });
});
