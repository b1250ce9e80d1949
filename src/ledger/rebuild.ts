import { bodyAround, storedCall } from "../extend/envelope.ts";
import type { Claim } from "../queues/claim.ts";
import { type Delivery, readDelivery } from "../queues/delivery.ts";
import { callTexts } from "./calls.ts";
import { STATUS_CODES } from "./keys.ts";
import { namesOf } from "./names.ts";
import { type DeliveryRow, deliveryIdsOf, type NotificationEntry, type PlanEntry, parsed } from "./rows.ts";

/**
 * The message each delivery would be sent again with (a resend, a replay): the one kept with it (a dead letter's),
 * else rebuilt from its call's text and the notifications it holds, exactly as the door planned it. "unreadable"
 * when what is kept cannot be read; undefined when there is nothing to send (not attempted yet, or the call's
 * text is gone). Rows need `payload` and their call's `claims` and `notifications`.
 */
export async function messagesOf(
  db: D1Database,
  payloads: R2Bucket | undefined,
  rows: readonly (DeliveryRow & { payload: string | null; claims: string | null; notifications?: string | null })[],
): Promise<(Delivery | "unreadable" | undefined)[]> {
  const rebuild = rows.filter(
    (row) => row.payload === null && row.stuck === null && row.status !== STATUS_CODES.pending,
  );
  const texts = await callTexts(
    db,
    payloads,
    rebuild.map((row) => row.call_id),
  );
  const ids = await deliveryIdsOf(db, rows);
  const plans = rows.map((row) => parsed<PlanEntry[]>(row.plan, []));
  const name = await namesOf(db, [...rows.map((r) => r.destination), ...plans.flat().flatMap((e) => e[2])]);
  return rows.map((row, i) => {
    if (row.payload !== null) return readPayload(row.payload) ?? "unreadable";
    if (row.stuck !== null) return "unreadable";
    if (row.status === STATUS_CODES.pending) return undefined;
    const text = texts.get(row.call_id);
    if (text === undefined) return undefined;
    if (text === null) return "unreadable";
    const plan = plans[i]!;
    const entry = plan.find((e) => e[0] === row.destination && e[1] === row.part);
    if (entry === undefined) return "unreadable";
    try {
      const claims = parsed<{ n?: Claim[] }>(row.claims, {}).n;
      const parts = plan.filter((e) => e[0] === row.destination && e[1] > 0).length;
      // Its business keys, so that a replay to a destination with `order: "key"` lines up behind its key too.
      const entries = parsed<NotificationEntry[]>(row.notifications ?? null, []);
      const keys = [...new Set(entry[3].flatMap((n) => (entries[n]?.[2] == null ? [] : [entries[n][2]!])))];
      return {
        v: 3,
        deliveryId: ids[i]!,
        destination: name(row.destination),
        routes: entry[2].map(name),
        callId: row.call_id,
        indices: entry[3],
        ...bodyAround(storedCall(text), entry[3]),
        ...(claims !== undefined && claims.length > 0 && { claims }),
        ...(row.part > 0 && { part: [row.part, parts] as [number, number] }),
        receivedAt: row.received_at,
        ...(row.run > 0 && { run: row.run }),
        ...(keys.length > 0 && { keys }),
      } satisfies Delivery;
    } catch {
      return "unreadable";
    }
  });
}

/** A delivery message kept as JSON text, or undefined when it cannot be read. */
function readPayload(payload: string): Delivery | undefined {
  try {
    return readDelivery(JSON.parse(payload));
  } catch {
    return undefined;
  }
}
