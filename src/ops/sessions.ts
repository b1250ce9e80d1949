import { deleteAllSessions, listSessions } from "../ledger/sessions.ts";
import { type OpContext, recorded } from "./record.ts";

/** "Sign out everywhere" (`sessions.end_all`): every console session ends at once, this one included. */
export async function endAllSessions(op: OpContext): Promise<{ ended: number }> {
  const live = await listSessions(op.env.LEDGER, op.now);
  return recorded(op, { action: "sessions.end_all", detail: { sessions: live.length } }, async () => ({
    ended: await deleteAllSessions(op.env.LEDGER),
  }));
}
