import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../../../scripts/lib/wrangler-dev.ts";
import { WRANGLER_OVERRIDE } from "../../../scripts/lib/wrangler-run.ts";
import { tempDir } from "../../temp.ts";
import { type FakeAccount, readAccount, readCalls, writeAccount } from "./state.ts";

const NODE = join(ROOT, "node_modules", ".bin", "node");
const FAKE = join(ROOT, "test", "scripts", "fake-wrangler", "wrangler.ts");

/**
 * A fresh pretend account and an executable that runs the fake wrangler on it; `env` points the scripts at it
 * (EXTEND_RELAY_WRANGLER). The folder goes when the test file is done.
 */
export function fakeAccount(account: Partial<FakeAccount> = {}) {
  const dir = tempDir("fake-wrangler");
  writeAccount(dir, {
    loggedIn: true,
    email: "ops@example.com",
    queues: [],
    deployed: false,
    secrets: [],
    rules: null,
    ...account,
  });
  const program = join(dir, "wrangler");
  writeFileSync(program, `#!/bin/sh\nexec '${NODE}' '${FAKE}' "$@"\n`, { mode: 0o755 });
  return {
    dir,
    env: { FAKE_WRANGLER_DIR: dir, [WRANGLER_OVERRIDE]: program },
    calls: () => readCalls(dir),
    account: () => readAccount(dir),
  };
}
