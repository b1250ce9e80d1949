/**
 * The fake wrangler's account (test/scripts/fake-wrangler/wrangler.ts): a JSON file in the folder that
 * FAKE_WRANGLER_DIR names, beside calls.jsonl, one line per invocation.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface FakeAccount {
  loggedIn: boolean;
  email: string;
  /** Queue names in the account. */
  queues: string[];
  /** `queues list` shows at most this many (one page of the API's list); default: all. */
  listLimit?: number;
  /** The longest retention the plan allows (the free plan: 86400); default 1209600. */
  maxRetention?: number;
  /** Whether the Worker has been deployed (and its KV namespace and D1 database provisioned). */
  deployed: boolean;
  /** Secret names set on the Worker. */
  secrets: string[];
  /** The value of KV key "rules", or null. */
  rules: string | null;
  /** When set, `wrangler deploy` fails with this error. */
  deployError?: string;
}

export interface FakeCall {
  args: string[];
  /** For `d1 execute --file`: the file's content when it was called. */
  file?: string;
}

export function accountFile(dir: string): string {
  return join(dir, "account.json");
}

export function callsFile(dir: string): string {
  return join(dir, "calls.jsonl");
}

export function readAccount(dir: string): FakeAccount {
  return JSON.parse(readFileSync(accountFile(dir), "utf8")) as FakeAccount;
}

export function writeAccount(dir: string, account: FakeAccount): void {
  writeFileSync(accountFile(dir), `${JSON.stringify(account, null, 2)}\n`);
}

export function recordCall(dir: string, call: FakeCall): void {
  appendFileSync(callsFile(dir), `${JSON.stringify(call)}\n`);
}

export function readCalls(dir: string): FakeCall[] {
  if (!existsSync(callsFile(dir))) return [];
  return readFileSync(callsFile(dir), "utf8")
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as FakeCall);
}
