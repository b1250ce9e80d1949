/** `npm run dev`'s options as a person types them (a real process): a bad port is named before anything starts. */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../scripts/lib/wrangler-dev.ts";

describe("npm run dev options", () => {
  it("exits 2 naming --port or --receiver-port when it is not a port number", () => {
    for (const [option, value] of [
      ["--port", "abc"],
      ["--port", "65536"],
      ["--port", "80.5"],
      ["--receiver-port", "abc"],
    ]) {
      const run = spawnSync(join(ROOT, "node_modules", ".bin", "node"), ["scripts/dev.ts", option!, value!], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(run.status, `${option} ${value}`).toBe(2);
      expect(run.stderr).toBe(`npm run dev failed: ${option} must be a port number from 1 to 65535 (got "${value}")\n`);
      expect(run.stdout).toBe("");
    }
  });
});
