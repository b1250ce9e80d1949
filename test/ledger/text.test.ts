import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { getCallText } from "../../src/ledger/read.ts";
import { packText, unpackText } from "../../src/ledger/text.ts";
import { writeLedger } from "../../src/ledger/write.ts";
import type { CallRecord } from "../../src/queues/call.ts";
import { clearLedger, FIXTURES, freshId } from "../helpers.ts";

beforeEach(() => clearLedger());

const SAMPLE = FIXTURES["OrderCreated.json"]!;
const UNICODE = `{"Notifications":[{"Action":"CustomerChanged","Details":{"Name":"Åsa Öberg 😀","Note":"rad 1\\r\\nrad 2"}}],"Pad":"${"åäö ".repeat(200)}"}`;

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

  it("is stored as a BLOB per part and joined back in order; rows written as text before still read", async () => {
    const id = freshId();
    const third = Math.ceil(UNICODE.length / 3);
    const parts = [0, 1, 2].map((k) => UNICODE.slice(k * third, (k + 1) * third));
    // Parts arrive in any order, with the last delivery's message.
    await writeLedger(env.LEDGER, [textRecord(id, 2, 3, parts[2]!), textRecord(id, 0, 3, parts[0]!)]);
    expect(await getCallText(env.LEDGER, id)).toBeNull(); // not all of it yet
    await writeLedger(env.LEDGER, [textRecord(id, 1, 3, parts[1]!)]);
    expect(await getCallText(env.LEDGER, id)).toBe(UNICODE);
    const types = await env.LEDGER.prepare("SELECT typeof(chunk) AS t FROM call_text WHERE call_id = ?1 ORDER BY part")
      .bind(id)
      .all<{ t: string }>();
    expect(types.results.map((r) => r.t)).toEqual(["blob", "blob", "blob"]);

    const old = freshId();
    await env.LEDGER.prepare("INSERT INTO call_text (call_id, part, parts, chunk) VALUES (?1, 0, 1, ?2)")
      .bind(old, SAMPLE)
      .run();
    expect(await getCallText(env.LEDGER, old)).toBe(SAMPLE);
  });

  it("reads as missing when its stored bytes do not inflate, logged with the call's Id", async () => {
    const id = freshId();
    await env.LEDGER.prepare("INSERT INTO call_text (call_id, part, parts, chunk) VALUES (?1, 0, 1, ?2)")
      .bind(id, new Uint8Array([1, 2, 3, 4, 5]))
      .run();
    const error = vi.spyOn(console, "error").mockImplementation(() => {});
    expect(await getCallText(env.LEDGER, id)).toBeNull();
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
