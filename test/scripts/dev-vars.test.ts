/**
 * .dev.vars as wrangler reads it (dotenv 16), and secrets handed to `wrangler dev` through its env file
 * arriving in the Worker byte for byte.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ensureDevVars, parseDevVars, readDevVars } from "../../scripts/lib/dev-vars.ts";
import { envFileLine, startWranglerDev } from "../../scripts/lib/wrangler-dev.ts";
import { tempDir } from "../temp.ts";

describe("parseDevVars", () => {
  it("keeps backslashes in double quotes literally, and does not throw on them", () => {
    expect(parseDevVars('KEY="C:\\p\\s3cr3t"')).toEqual({ KEY: "C:\\p\\s3cr3t" });
    expect(parseDevVars('KEY="a\\"b\\u0041\\t"')).toEqual({ KEY: 'a\\"b\\u0041\\t' });
  });

  it("turns \\n and \\r into a newline and a carriage return in double quotes only", () => {
    expect(parseDevVars('KEY="one\\ntwo\\rthree"')).toEqual({ KEY: "one\ntwo\rthree" });
    expect(parseDevVars("KEY=one\\ntwo")).toEqual({ KEY: "one\\ntwo" });
    expect(parseDevVars("KEY=`one\\ntwo`")).toEqual({ KEY: "one\\ntwo" });
  });

  it("keeps single-quoted values literally, # and quotes of the other kinds included", () => {
    expect(parseDevVars("KEY='a\\nb # not a comment \"x\" $HOME'")).toEqual({ KEY: 'a\\nb # not a comment "x" $HOME' });
  });

  it("strips an inline comment and surrounding whitespace from an unquoted value", () => {
    expect(parseDevVars("KEY =   some value   # the comment\nOTHER=x")).toEqual({ KEY: "some value", OTHER: "x" });
    expect(parseDevVars("# KEY=commented out\nEMPTY=\n")).toEqual({ EMPTY: "" });
  });

  it("accepts an `export ` prefix and CRLF line ends", () => {
    expect(parseDevVars("export KEY=value\r\n  export OTHER='x'\r\n")).toEqual({ KEY: "value", OTHER: "x" });
  });

  it("reads a quoted value across lines, as dotenv does", () => {
    expect(parseDevVars('KEY="first\nsecond"\nNEXT=1')).toEqual({ KEY: "first\nsecond", NEXT: "1" });
  });
});

describe("envFileLine", () => {
  it("single-quotes the value, so parseDevVars reads back everything but the escaped $", () => {
    const value = 'C:\\p\\s3cr3t "quoted" `tick` # hash\\n';
    expect(parseDevVars(envFileLine("KEY", value))).toEqual({ KEY: value });
    expect(envFileLine("KEY", "a$b${c}")).toBe("KEY='a\\$b\\${c}'");
  });

  it("refuses what the env file cannot carry, naming the key and never the value", () => {
    for (const value of ["it's-s3cr3t", "s3cr3t\nline", "s3cr3t\rline", "s3cr3t\\"]) {
      expect(() => envFileLine("MY_SECRET", value)).toThrow(/^secret MY_SECRET cannot be written/);
      try {
        envFileLine("MY_SECRET", value);
      } catch (error) {
        expect((error as Error).message).not.toContain("s3cr3t");
      }
    }
    expect(() => envFileLine("BAD NAME", "x")).toThrow('secret name "BAD NAME" is not a valid env-file name');
  });
});

describe("startWranglerDev secrets", () => {
  it("gives the Worker each secret exactly as passed, and refuses an unwritable one before starting", async () => {
    const dir = tempDir("echo");
    writeFileSync(join(dir, "worker.js"), "export default { fetch: (request, env) => Response.json(env) };\n");
    const config = join(dir, "wrangler.toml");
    writeFileSync(config, 'name = "echo-env"\nmain = "worker.js"\ncompatibility_date = "2025-01-01"\n');
    const secrets = {
      BACKSLASHES: "C:\\p\\s3cr3t\\n",
      QUOTES: '"double" `back`',
      DOLLARS: "$HOME ${PATH} \\$x $",
      HASH: "  padded # not a comment  ",
      EMPTY: "",
    };
    await expect(startWranglerDev({ config, secrets: { BAD: "it's" } })).rejects.toThrow(
      /^secret BAD cannot be written/,
    );
    const dev = await startWranglerDev({ config, secrets });
    try {
      const env = (await (await fetch(dev.url)).json()) as Record<string, string>;
      expect(env).toEqual(secrets);
    } finally {
      await dev.stop();
    }
  }, 120_000);

  it("does the same with no devtools session (wrangler's own API), printing the Worker's console lines", async () => {
    const dir = tempDir("echo-nodevtools");
    writeFileSync(
      join(dir, "worker.js"),
      'export default { fetch: (request, env) => { console.log(JSON.stringify({ event: "echoed" })); return Response.json(env); } };\n',
    );
    const config = join(dir, "wrangler.toml");
    writeFileSync(config, 'name = "echo-env"\nmain = "worker.js"\ncompatibility_date = "2025-01-01"\n');
    const lines: string[] = [];
    const dev = await startWranglerDev({
      config,
      devtools: false,
      vars: { PLAIN: "a var" },
      secrets: { DOLLARS: "$HOME ${PATH} \\$x $", QUOTES: '"double" `back`' },
      onOutput: (line) => lines.push(line),
    });
    try {
      const env = (await (await fetch(dev.url)).json()) as Record<string, string>;
      expect(env).toEqual({ PLAIN: "a var", DOLLARS: "$HOME ${PATH} \\$x $", QUOTES: '"double" `back`' });
      await expect.poll(() => lines.some((line) => line.includes('{"event":"echoed"}'))).toBe(true);
    } finally {
      await dev.stop();
    }
    expect(dev.process.exitCode !== null || dev.process.signalCode !== null).toBe(true);
  }, 120_000);
});

describe("ensureDevVars", () => {
  it("creates .dev.vars with random 64-hex tokens, and gives an older file's short token a random one", () => {
    const dir = tempDir("dev-vars");
    const example = join(dir, "example");
    const path = join(dir, ".dev.vars");
    writeFileSync(example, "EXTEND_WEBHOOK_SECRET=s\nADMIN_TOKEN=dev-admin-token-replaced-by-npm-run-dev-000\n");
    expect(ensureDevVars(path, example)).toEqual({ created: true, replaced: ["ADMIN_TOKEN", "VIEWER_TOKEN"] });
    const created = readDevVars(path);
    expect(created.ADMIN_TOKEN).toMatch(/^[0-9a-f]{64}$/);
    expect(created.VIEWER_TOKEN).toMatch(/^[0-9a-f]{64}$/);
    expect(created.EXTEND_WEBHOOK_SECRET).toBe("s");
    expect(ensureDevVars(path, example)).toEqual({ created: false, replaced: [] });
    expect(readDevVars(path)).toEqual(created);
    writeFileSync(path, `ADMIN_TOKEN=dev-admin-token\nVIEWER_TOKEN=${"v".repeat(40)}\n`);
    expect(ensureDevVars(path, example)).toEqual({ created: false, replaced: ["ADMIN_TOKEN"] });
    expect(readDevVars(path).ADMIN_TOKEN).toMatch(/^[0-9a-f]{64}$/);
    expect(readDevVars(path).VIEWER_TOKEN).toBe("v".repeat(40));
  });
});
