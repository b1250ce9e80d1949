import type { Env } from "../env.ts";
import { getActivity, listActivity, pausingRow } from "./activity.ts";
import { listAlertsSent } from "./alerts.ts";
import { getCall, getCallText, hasCall, listCalls } from "./calls.ts";
import { deadLetterCounts, getDeadLetter, listDeadLetters } from "./dead-letters.ts";
import { getDelivery, listDeliveries } from "./deliveries.ts";
import { hourly } from "./hourly.ts";
import { getJob, listJobs } from "./jobs.ts";
import { getVersion, latestVersion, listVersions, versionsOf } from "./rules-history.ts";
import { deleteSession, findSession, insertSession, listSessions, touchSession } from "./sessions.ts";
import { stats } from "./stats.ts";

// biome-ignore lint/suspicious/noExplicitAny: the rest of any signature, kept as it is by `Bound`.
type Fn<First> = (first: First, ...rest: any[]) => unknown;
type Bound<T, First> = {
  [K in keyof T]: T[K] extends (first: First, ...rest: infer A) => infer R ? (...rest: A) => R : never;
};

function bound<First, T extends Record<string, Fn<First>>>(first: First, fns: T): Bound<T, First> {
  return Object.fromEntries(
    Object.entries(fns).map(([name, fn]) => [name, (...rest: unknown[]) => fn(first, ...rest)]),
  ) as Bound<T, First>;
}

/**
 * The storage room as the admin API and the console get it (`c.var.ledger`, set in src/app.ts): the ledger's reads
 * and the sessions' rows, bound to this request's D1 database (and R2 bucket, for what may be kept there). Their SQL
 * stays in `ledger/`; what changes the ledger on an operator's behalf goes through `ops/`.
 */
export function ledgerRoom(env: Env) {
  const rows = env.LEDGER;
  return {
    ...bound(rows, {
      listCalls,
      getCall,
      hasCall,
      listDeliveries,
      listDeadLetters,
      deadLetterCounts,
      hourly,
      listJobs,
      getJob,
      listAlertsSent,
      listActivity,
      getActivity,
      pausingRow,
      listVersions,
      getVersion,
      latestVersion,
      versionsOf,
      insertSession,
      findSession,
      touchSession,
      deleteSession,
      listSessions,
    }),
    getCallText: (id: string) => getCallText(rows, env.PAYLOADS, id),
    getDelivery: (id: string) => getDelivery(rows, env.PAYLOADS, id),
    getDeadLetter: (id: string) => getDeadLetter(rows, env.PAYLOADS, id),
    stats: (since: number) => stats(rows, env.PAYLOADS, since),
  };
}

export type LedgerRoom = ReturnType<typeof ledgerRoom>;
