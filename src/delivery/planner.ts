import { RelayError } from "../errors.ts";
import { bodyAround, type Call, keyOf, type Notification, notificationText, warehouseOf } from "../extend/envelope.ts";
import type { CallRecord } from "../queues/call.ts";
import { BODY_KEY_LENGTH, type Claim, claimKey } from "../queues/claim.ts";
import { type Delivery, deliveriesMessage, WRAPPER_BYTES } from "../queues/delivery.ts";
import { MESSAGE_BUDGET, type Planned, plan, utf8Length } from "../queues/limits.ts";
import { actionMatches, type CompiledRoute, type CompiledRules } from "../rules/matcher.ts";
import type { Coalesce } from "../rules/schema.ts";

/** A notification that goes to its destination coalesced (docs/rules.md, "Shaping deliveries"). */
export interface Coalesced {
  index: number;
  /** [Action, business key, warehouse] as JSON text: what must be equal for two notifications to coalesce. */
  key: string;
  window: number;
}

/** Which notifications (by position) go to a destination, and which routes picked them. */
export interface Fanout {
  destination: string;
  indices: number[];
  routes: string[];
  /** Those of `indices` that are coalesced: each then goes in a delivery of its own. */
  coalesced?: Coalesced[];
}

/** What the rules made of one call: per destination its notifications, and per notification its routes. */
export interface Routing {
  fanouts: Fanout[];
  /** For each notification, the routes that matched and the destinations they send it to (each once). */
  matches: { routes: string[]; destinations: string[] }[];
}

/**
 * Matches every notification of a call and groups the result by destination, in the order destinations
 * are first picked. A destination gets a notification once, however many routes pick it for it.
 */
export function route(compiled: CompiledRules, notifications: readonly Notification[]): Routing {
  const byDestination = new Map<string, { indices: number[]; routes: Set<string>; coalesced?: Coalesced[] }>();
  const matches = notifications.map((notification, index) => {
    const routes: string[] = [];
    const destinations = new Set<string>();
    const picked = compiled.match(notification);
    for (const matched of picked) {
      routes.push(matched.name);
      for (const destination of matched.to) {
        destinations.add(destination);
        let fanout = byDestination.get(destination);
        if (fanout === undefined) byDestination.set(destination, (fanout = { indices: [], routes: new Set() }));
        if (fanout.indices.at(-1) !== index) {
          fanout.indices.push(index);
          const coalesced = compiled.coalesces
            ? coalescedAs(compiled, destination, picked, notification, index)
            : undefined;
          if (coalesced !== undefined) (fanout.coalesced ??= []).push(coalesced);
        }
        fanout.routes.add(matched.name);
      }
    }
    return { routes, destinations: [...destinations] };
  });
  const fanouts = [...byDestination].map(([destination, f]) => ({
    destination,
    indices: f.indices,
    routes: [...f.routes],
    ...(f.coalesced !== undefined && { coalesced: f.coalesced }),
  }));
  return { fanouts, matches };
}

/**
 * Whether a notification goes to `destination` coalesced, and how: by the destination's `coalesce`, else by that
 * of the first route (in document order) that sends it there. A notification without a business key is never
 * coalesced: nothing says which others are about the same thing.
 */
function coalescedAs(
  compiled: CompiledRules,
  destination: string,
  picked: readonly CompiledRoute[],
  notification: Notification,
  index: number,
): Coalesced | undefined {
  const covers = (c: Coalesce | undefined) =>
    c?.actions.some((pattern) => actionMatches(pattern, notification.Action)) ? c : undefined;
  const config =
    covers(compiled.rules.destinations[destination]?.coalesce) ??
    picked.map((r) => (r.to.includes(destination) ? covers(r.coalesce) : undefined)).find((c) => c !== undefined);
  if (config === undefined) return undefined;
  const key = keyOf(notification);
  if (key === undefined) return undefined;
  return {
    index,
    key: JSON.stringify([notification.Action, key, warehouseOf(notification) ?? null]),
    window: config.windowSeconds,
  };
}

/** Per destination, the notifications a call sends it (route() without the per-notification view). */
export function fanOut(compiled: CompiledRules, notifications: readonly Notification[]): Fanout[] {
  return route(compiled, notifications).fanouts;
}

export type PlannedDelivery = Planned<Delivery>;

/** A call to plan: its envelope, and its text and outline (with claimed notifications as their marks). */
export type PlannedCall = Pick<Call, "envelope" | "text" | "outline">;

/**
 * What a call's messages weigh: a message around some of its notifications, and what one more notification adds
 * (its text inside the escaped body, a comma there, and its position in `indices` with a comma).
 */
function sizing(call: PlannedCall, claims: readonly Claim[] | undefined, receivedAt: number) {
  const id = call.envelope.Id;
  const sizes = new Map<number, number>();
  return {
    sizeOf(index: number): number {
      let size = sizes.get(index);
      if (size === undefined) {
        size = utf8Length(JSON.stringify(notificationText(call, index))) - 2 + 1 + String(index).length + 1;
        sizes.set(index, size);
      }
      return size;
    },
    /** What ordering adds to a message for notification `index`: its key in `keys` (0 without one). */
    keyBytes(index: number): number {
      const key = keyOf(call.envelope.Notifications[index]!);
      return key === undefined ? 0 : utf8Length(JSON.stringify(key)) + 1;
    },
    message(
      destination: string,
      routes: string[],
      deliveryId: string,
      indices: number[],
      shaping: { part?: [number, number]; ordered?: boolean; coalesced?: Coalesced } = {},
    ): PlannedDelivery {
      const keys = shaping.ordered === true ? keysOf(call, indices) : [];
      const body: Delivery = {
        v: 3,
        deliveryId,
        destination,
        routes,
        callId: id,
        indices,
        ...bodyAround(call, indices),
        ...(claims !== undefined && claims.length > 0 && { claims: [...claims] }),
        ...(shaping.part !== undefined && { part: shaping.part }),
        receivedAt,
        ...(keys.length > 0 && { keys }),
        ...(shaping.coalesced !== undefined && {
          coalesce: { key: shaping.coalesced.key, window: shaping.coalesced.window },
        }),
      };
      return plan(body);
    },
    /**
     * A message of `fanout` around no notification, its id and part number sized generously, and room for an
     * ordered destination's `keys` and a coalesced notification's `coalesce` (whose key is at most an Action, a
     * business key of 200 characters and a warehouse).
     */
    overhead(fanout: Fanout, single: boolean, ordered: boolean): number {
      const generous = single
        ? this.message(fanout.destination, fanout.routes, `${id}.${fanout.destination}.n99999`, [])
        : this.message(fanout.destination, fanout.routes, `${id}.${fanout.destination}.p9999`, [], {
            part: [9999, 9999],
          });
      const coalesce = fanout.coalesced === undefined ? 0 : COALESCE_ROOM;
      return generous.bytes + WRAPPER_BYTES.delivery + (ordered ? 10 : 0) + coalesce;
    },
  };
}

/** Room for a coalesced delivery's `coalesce` member in a message: `,"coalesce":{"key":…,"window":3600}`. */
const COALESCE_ROOM = 1200;

/** The business keys of the notifications at `indices`, each once, in order. */
function keysOf(call: PlannedCall, indices: readonly number[]): string[] {
  const keys = new Set<string>();
  for (const index of indices) {
    const key = keyOf(call.envelope.Notifications[index]!);
    if (key !== undefined) keys.add(key);
  }
  return [...keys];
}

/**
 * The notifications of a call that cannot ride in a queue message (docs/delivery.md, "Large notifications"): those
 * that, alone in a message to one of their destinations, would pass its budget. They are kept in R2 instead, and
 * every message of the call carries their claims, which the budget then counts in, so a few rounds settle it.
 * 413 `envelope_too_large` when the call's other members alone would not fit.
 */
export function claimsNeeded(call: Call, fanouts: readonly Fanout[], compiled: CompiledRules): number[] {
  const claimed = new Set<number>();
  // A notification's text in UTF-8: escaping it for a message never makes it smaller, so one whose text alone
  // passes the budget is claimed without escaping megabytes to measure them.
  const raw = new Map<number, number>();
  const rawBytes = (index: number) => {
    let bytes = raw.get(index);
    if (bytes === undefined) raw.set(index, (bytes = utf8Length(notificationText(call, index))));
    return bytes;
  };
  for (;;) {
    const placeholders = [...claimed]
      .sort((a, b) => a - b)
      .map((index) => placeholderClaim(call, index, rawBytes(index)));
    const s = sizing(call, placeholders, 0);
    let added = false;
    for (const fanout of fanouts) {
      const config = compiled.rules.destinations[fanout.destination];
      const single = config?.mode === "single" || fanout.coalesced !== undefined;
      const ordered = config?.order === "key";
      const overhead = s.overhead(fanout, single, ordered);
      if (overhead > MESSAGE_BUDGET) throw envelopeTooLarge(overhead);
      for (const index of fanout.indices) {
        if (claimed.has(index)) continue;
        const size = s.sizeOf(index) + (ordered ? s.keyBytes(index) : 0);
        if (overhead + rawBytes(index) > MESSAGE_BUDGET || overhead + size > MESSAGE_BUDGET) {
          claimed.add(index);
          added = true;
        }
      }
    }
    if (!added) return [...claimed].sort((a, b) => a - b);
  }
}

/**
 * A claim no smaller in a message than the real one will be, whether its object is the notification or the body
 * it came in (src/ingress/body.ts), for planning before it is made.
 */
export function placeholderClaim(call: Call, index: number, bytes = utf8Length(notificationText(call, index))): Claim {
  return {
    key: claimKey(call.envelope.Id, `n${index}`).padEnd(BODY_KEY_LENGTH, "~"),
    offset: 999_999_999, // nine digits: bodies are at most 100 MiB
    bytes,
    sha256: "0".repeat(64),
  };
}

/**
 * The queue messages for one call: per destination one message (split in order when it would exceed the
 * message budget), or one per notification for destinations in `single` mode. Delivery ids are
 * `<Id>.<destination>`, with `.p<k>` for split parts and `.n<position>` in single mode, so a sender's
 * retry of the same call produces the same ids and receivers can deduplicate. `claims`: the call's notifications
 * kept in R2, whose marks stand in `call`'s text (src/queues/claim.ts).
 */
export function planMessages(
  call: PlannedCall,
  fanouts: readonly Fanout[],
  compiled: CompiledRules,
  receivedAt: number,
  claims?: readonly Claim[],
): PlannedDelivery[] {
  const id = call.envelope.Id;
  const s = sizing(call, claims, receivedAt);
  const planned: PlannedDelivery[] = [];
  for (const fanout of fanouts) {
    const { destination, indices, routes } = fanout;
    const config = compiled.rules.destinations[destination];
    const ordered = config?.order === "key";
    // Coalesced notifications go in deliveries of their own, as every notification does in single mode.
    const coalesced = fanout.coalesced === undefined ? undefined : new Map(fanout.coalesced.map((c) => [c.index, c]));
    const single = config?.mode === "single";
    const alone = single ? indices : coalesced === undefined ? [] : indices.filter((i) => coalesced.has(i));
    for (const index of alone) {
      const one = s.message(destination, routes, `${id}.${destination}.n${index}`, [index], {
        ordered,
        ...(coalesced?.has(index) === true && { coalesced: coalesced.get(index)! }),
      });
      if (one.bytes + WRAPPER_BYTES.delivery > MESSAGE_BUDGET) throw envelopeTooLarge(one.bytes);
      planned.push(one);
    }
    const rest = single ? [] : coalesced === undefined ? indices : indices.filter((i) => !coalesced.has(i));
    if (rest.length === 0) continue;
    // Envelope mode: greedily fill parts in order. Ids and part numbers are sized generously first
    // (`.p9999`, [9999, 9999]) so that the final, shorter ones never push a part over budget.
    const overhead = s.overhead({ ...fanout, coalesced: undefined }, false, ordered);
    const parts: number[][] = [];
    let current: number[] = [];
    let currentBytes = overhead;
    for (const index of rest) {
      const size = s.sizeOf(index) + (ordered ? s.keyBytes(index) : 0);
      if (overhead + size > MESSAGE_BUDGET) throw envelopeTooLarge(overhead + size);
      if (current.length > 0 && currentBytes + size > MESSAGE_BUDGET) {
        parts.push(current);
        current = [];
        currentBytes = overhead;
      }
      current.push(index);
      currentBytes += size;
    }
    parts.push(current);
    parts.forEach((part, k) => {
      const split = parts.length > 1;
      const deliveryId = split ? `${id}.${destination}.p${k + 1}` : `${id}.${destination}`;
      planned.push(
        s.message(destination, routes, deliveryId, part, {
          ordered,
          ...(split && { part: [k + 1, parts.length] as [number, number] }),
        }),
      );
    });
  }
  return planned;
}

/** Where a call's text goes in its record: in it, or (too large to ride in a queue message) kept in R2. */
export type TextPlace = { inline: true } | { claim: Claim };

/**
 * The call's record for the ledger (src/queues/call.ts, CallRecord), in as many parts as its rows need; the part
 * with the summary comes last, so that enqueuing it last puts the call on record only once all of it is enqueued.
 * The text rides with the summary, or is kept in R2 when it does not fit there: undefined then, until the caller
 * has kept it and asks again with its claim.
 */
export function planCallRecord(
  call: PlannedCall,
  routing: Routing,
  deliveries: readonly PlannedDelivery[],
  at: number,
  text: TextPlace,
  claims?: readonly Claim[],
): Planned<CallRecord>[] | undefined {
  const { envelope } = call;
  const notifications = envelope.Notifications.map((notification, i) => ({
    i,
    action: notification.Action,
    warehouse: warehouseOf(notification) ?? null,
    key: keyOf(notification) ?? null,
    routes: routing.matches[i]!.routes,
    destinations: routing.matches[i]!.destinations,
  }));
  const rows = {
    deliveries: deliveries.map(({ body }) => ({
      id: body.deliveryId,
      destination: body.destination,
      routes: body.routes,
      indices: body.indices,
    })),
    notifications,
  };
  const head: CallRecord = {
    kind: "call",
    v: 2,
    id: envelope.Id,
    at,
    attempt: senderAttempt(call),
    outcome: "accepted",
    summary: {
      notifications: envelope.Notifications.length,
      deliveries: deliveries.length,
      actions: [...new Set(notifications.map((n) => n.action))],
      keys: [...new Set(notifications.flatMap((n) => (n.key === null ? [] : [n.key])))],
    },
    ...(claims !== undefined && claims.length > 0 && { claims: [...claims] }),
    ...("claim" in text && { textClaim: text.claim }),
  };
  // Greedy parts within the message budget; a row that fits no part alone cannot occur (a notification's row is a
  // few hundred bytes at most).
  const parts: CallRecord[] = [];
  const { summary: _, claims: __, textClaim: ___, ...partHead } = head;
  let current: CallRecord = { ...head };
  let bytes = utf8Length(JSON.stringify(current)) + 40;
  for (const kind of ["deliveries", "notifications"] as const) {
    for (const row of rows[kind] as object[]) {
      const size = utf8Length(JSON.stringify(row)) + 1;
      if (bytes + size > MESSAGE_BUDGET) {
        parts.push(current);
        current = { ...partHead };
        bytes = utf8Length(JSON.stringify(current)) + 40;
      }
      ((current[kind] ??= []) as object[]).push(row);
      bytes += size;
    }
  }
  parts.push(current);
  if ("inline" in text) {
    const room = MESSAGE_BUDGET - utf8Length(JSON.stringify(parts[0])) - 100;
    if (utf8Length(JSON.stringify(call.text)) > room) return undefined;
    parts[0]!.text = call.text;
  }
  // The first part built holds the summary; it goes last.
  return [...parts.slice(1), parts[0]!].map((part) => plan(part));
}

/**
 * Everything one accepted call puts on DELIVERIES, in sending order (src/queues/delivery.ts): its deliveries, and
 * its record for the ledger beside the last delivery when it fits (one message fewer per call), else after them in
 * parts of its own. Undefined when the call's text does not fit its record: keep it in R2 and ask again.
 */
export function planCall(
  call: PlannedCall,
  routing: Routing,
  deliveries: readonly PlannedDelivery[],
  at: number,
  text: TextPlace,
  claims?: readonly Claim[],
): Planned<unknown>[] | undefined {
  const records = planCallRecord(call, routing, deliveries, at, text, claims);
  if (records === undefined) return undefined;
  const last = deliveries.at(-1);
  const record = records.length === 1 ? records[0]! : undefined;
  const messages = deliveries.map((delivery) => deliveriesMessage(delivery));
  if (
    record !== undefined &&
    last !== undefined &&
    last.bytes + record.bytes + WRAPPER_BYTES.withCall <= MESSAGE_BUDGET
  ) {
    return [...messages.slice(0, -1), deliveriesMessage(last, record)];
  }
  return [...messages, ...records];
}

/** The sender's `Attempt` as the sender wrote it (JSON text), "null" when absent. */
export function senderAttempt(call: Pick<Call, "text" | "outline">): string {
  const member = call.outline.members.findLast((m) => m.key === "Attempt");
  return member === undefined ? "null" : call.text.slice(member.value, member.end);
}

function envelopeTooLarge(bytes: number): RelayError {
  return new RelayError(
    "envelope_too_large",
    `The call's members besides its notifications need ${bytes} bytes in a queue message; Cloudflare Queues allows ${MESSAGE_BUDGET}.`,
    { bytes, limit: MESSAGE_BUDGET },
  );
}
