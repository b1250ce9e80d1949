import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, ROOT } from "../../scripts/lib/wrangler-dev.ts";
import { FIXTURES_DIR, runSendSample, sampleNames, withId } from "../../scripts/send-sample.ts";
import { tempDir } from "../temp.ts";

const fixture = (name: string) => readFileSync(join(FIXTURES_DIR, name), "utf8");

function capture() {
  const lines = { out: [] as string[], err: [] as string[] };
  return { lines, io: { out: (t: string) => lines.out.push(t), err: (t: string) => lines.err.push(t) } };
}

describe("withId", () => {
  it("changes only the Id's characters, keeping CRLF, indentation and everything else", () => {
    const text = fixture("multi-indented-crlf.json");
    const id = "0123456789abcdef0123456789abcdef";
    const replaced = withId(text, id);
    expect(replaced.length).toBe(text.length);
    expect(replaced.split("\r\n").length).toBe(text.split("\r\n").length);
    const before = JSON.parse(text);
    expect(JSON.parse(replaced)).toEqual({ ...before, Id: id });
    const changed = [...text].flatMap((c, i) => (c === replaced[i] ? [] : [i]));
    expect(changed.length).toBeGreaterThan(0);
    expect(changed.every((i) => i >= text.indexOf(before.Id) && i < text.indexOf(before.Id) + 32)).toBe(true);
  });

  it("replaces the envelope's Id, not an equal-looking nested one", () => {
    const text = '{"Notifications":[{"Action":"X","Details":{"Id":"nested"}}],"Id":"top"}';
    expect(JSON.parse(withId(text, "new"))).toEqual({
      Notifications: [{ Action: "X", Details: { Id: "nested" } }],
      Id: "new",
    });
  });
});

describe("send-sample against a stand-in relay", () => {
  const received: { headers: IncomingHttpHeaders; body: Buffer }[] = [];
  let status = 202;
  let server: Server;
  let url: string;
  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (c: Buffer) => chunks.push(c));
      request.on("end", () => {
        received.push({ headers: request.headers, body: Buffer.concat(chunks) });
        response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ status: "accepted" }));
      });
    });
    await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`;
  });
  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  it("signs the exact bytes it sends, with a fresh Id each time", async () => {
    const { io, lines } = capture();
    received.length = 0;
    expect(await runSendSample(["OrderCreated", "--url", url, "--secret", "s3cret"], io)).toBe(0);
    expect(await runSendSample(["ordercreated", "--url", url, "--secret", "s3cret"], io)).toBe(0);
    const [first, second] = received;
    for (const r of [first!, second!]) {
      const expected = `sha256=${createHmac("sha256", "s3cret").update(r.body).digest("hex").toUpperCase()}`;
      expect(r.headers["ms-signature"]).toBe(expected);
      expect(JSON.parse(r.body.toString()).Notifications).toEqual(
        JSON.parse(fixture("OrderCreated.json")).Notifications,
      );
    }
    const ids = [first!, second!].map((r) => JSON.parse(r.body.toString()).Id);
    expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids).not.toContain(JSON.parse(fixture("OrderCreated.json")).Id);
    expect(lines.out[0]).toContain(`Id ${ids[0]}  → 202 {"status":"accepted"}`);
  });

  it("--keep-id sends the sample byte for byte; --all sends every sample", async () => {
    received.length = 0;
    expect(await runSendSample(["multi-indented-crlf", "--keep-id", "--url", url, "--secret", "s"], capture().io)).toBe(
      0,
    );
    expect(received[0]!.body.toString()).toBe(fixture("multi-indented-crlf.json"));
    received.length = 0;
    expect(await runSendSample(["--all", "--url", url, "--secret", "s"], capture().io)).toBe(0);
    expect(received).toHaveLength(sampleNames().length);
  });

  it("sends a file given by path", async () => {
    received.length = 0;
    const { io } = capture();
    expect(await runSendSample(["fixtures/extend/unicode.json", "--url", url, "--secret", "s"], io, ROOT)).toBe(0);
    expect(JSON.parse(received[0]!.body.toString()).Notifications).toEqual(
      JSON.parse(fixture("unicode.json")).Notifications,
    );
  });

  it("exits 1 when the relay answers other than 2xx", async () => {
    status = 401;
    try {
      expect(await runSendSample(["OrderCreated", "--url", url, "--secret", "wrong"], capture().io)).toBe(1);
    } finally {
      status = 202;
    }
  });
});

describe("send-sample mistakes", () => {
  it("lists the samples and exits 2 for an unknown Action", async () => {
    const { io, lines } = capture();
    expect(await runSendSample(["OrderCreatd", "--secret", "s"], io)).toBe(2);
    expect(lines.err.join("\n")).toContain('"OrderCreatd" is neither a sample nor a file');
    expect(lines.err.join("\n")).toContain("  OrderCreated\n");
    expect(lines.err.join("\n")).toContain("  PurchasePartiallyDelivered");
  });

  it("exits 2 with a hint when the relay is not running", async () => {
    const { io, lines } = capture();
    const url = `http://127.0.0.1:${await freePort()}/webhook`;
    expect(await runSendSample(["OrderCreated", "--url", url, "--secret", "s"], io)).toBe(2);
    expect(lines.err.join("\n")).toContain(`cannot reach the relay at ${url} (ECONNREFUSED)`);
    expect(lines.err.join("\n")).toContain("npm run dev");
  });

  it("exits 2 naming a file that is not JSON or has no Id, before sending anything", async () => {
    const dir = tempDir("send-sample");
    const url = `http://127.0.0.1:${await freePort()}/webhook`;
    writeFileSync(join(dir, "broken.json"), "not json\n");
    writeFileSync(join(dir, "no-id.json"), '{"Notifications":[]}\n');
    for (const [name, problem] of [
      ["broken.json", "it is not JSON ("],
      ["no-id.json", 'the sample has no string "Id" to replace'],
    ] as const) {
      const { io, lines } = capture();
      expect(await runSendSample([join(dir, name), "--url", url, "--secret", "s"], io)).toBe(2);
      expect(lines.err.join("\n")).toContain(`error: cannot give ${join(dir, name)} a fresh Id: ${problem}`);
      expect(lines.err.join("\n")).not.toContain("cannot reach the relay");
    }
  });

  it("exits 2 for a folder given as the sample, without a stack", async () => {
    const dir = tempDir("send-sample");
    mkdirSync(join(dir, "folder.json"));
    const { io, lines } = capture();
    expect(await runSendSample([join(dir, "folder.json"), "--secret", "s"], io)).toBe(2);
    expect(lines.err.join("\n")).toContain(`"${join(dir, "folder.json")}" is neither a sample nor a file`);
  });

  it("exits 2 for a --url that is not http(s), before sending anything", async () => {
    for (const url of ["127.0.0.1:8787/webhook", "ftp://127.0.0.1/webhook", "not a url"]) {
      const { io, lines } = capture();
      expect(await runSendSample(["OrderCreated", "--url", url, "--secret", "s"], io), url).toBe(2);
      expect(lines.err.join("\n")).toBe(
        `error: --url ${url} is not an http:// or https:// URL, e.g. http://127.0.0.1:8787/webhook`,
      );
    }
  });

  it('names fetch\'s own reason when it has no error code, not just "fetch failed"', async () => {
    // Port 1 is on fetch's blocked-port list: it refuses without trying, with cause "bad port".
    const { io, lines } = capture();
    expect(await runSendSample(["OrderCreated", "--url", "http://127.0.0.1:1/webhook", "--secret", "s"], io)).toBe(2);
    expect(lines.err.join("\n")).toContain("cannot reach the relay at http://127.0.0.1:1/webhook (bad port)");
  });

  it("exits 2 without a sample or with both a sample and --all", async () => {
    expect(await runSendSample([], capture().io)).toBe(2);
    expect(await runSendSample(["OrderCreated", "--all"], capture().io)).toBe(2);
  });
});
