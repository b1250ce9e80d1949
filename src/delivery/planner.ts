import { RelayError } from "../errors.ts";
import { bodyAround, type Call, keyOf, type Notification, notificationText, warehouseOf } from "../extend/envelope.ts";
import type { CallRecord } from "../queues/call.ts";
import { BODY_KEY_LENGTH, type Claim, claimKey } from "../queues/claim.ts";
import { type Delivery, deliveriesMessage, WRAPPER_BYTES } from "../queues/delivery.ts";
import { MESSAGE_BUDGET, type Planned, plan, utf8Length } from "../queues/limits.ts";
import type { CompiledRules } from "../rules/matcher.ts";

/** Which notifications (by position) go to a destination, and which routes picked them. */
export interface Fanout {
  destination: string;
  indices: number[];
  routes: string[];
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
  const byDestination = new Map<string, { indices: number[]; routes: Set<string> }>();
  const matches = notifications.map((notification, index) => {
    const routes: string[] = [];
    const destinations = new Set<string>();
    for (const matched of compiled.match(notification)) {
      routes.push(matched.name);
      for (const destination of matched.to) {
        destinations.add(destination);
        let fanout = byDestination.get(destination);
        if (fanout === undefined) byDestination.set(destination, (fanout = { indices: [], routes: new Set() }));
        if (fanout.indices.at(-1) !== index) fanout.indices.push(index);
        fanout.routes.add(matched.name);
      }
    }
    return { routes, destinations: [...destinations] };
  });
  const fanouts = [...byDestination].map(([destination, f]) => ({
    destination,
    indices: f.indices,
    routes: [...f.routes],
  }));
  return { fanouts, matches };
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
    message(
      destination: string,
      routes: string[],
      deliveryId: string,
      indices: number[],
      part?: [number, number],
    ): PlannedDelivery {
      const body: Delivery = {
        v: 3,
        deliveryId,
        destination,
        routes,
        callId: id,
        indices,
        ...bodyAround(call, indices),
        ...(claims !== undefined && claims.length > 0 && { claims: [...claims] }),
        ...(part !== undefined && { part }),
        receivedAt,
      };
      return plan(body);
    },
    /** A message of `fanout` around no notification, its id and part number sized generously. */
    overhead(fanout: Fanout, single: boolean): number {
      const generous = single
        ? this.message(fanout.destination, fanout.routes, `${id}.${fanout.destination}.n99999`, [])
        : this.message(fanout.destination, fanout.routes, `${id}.${fanout.destination}.p9999`, [], [9999, 9999]);
      return generous.bytes + WRAPPER_BYTES.delivery;
    },
  };
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
      const overhead = s.overhead(fanout, compiled.rules.destinations[fanout.destination]?.mode === "single");
      if (overhead > MESSAGE_BUDGET) throw envelopeTooLarge(overhead);
      for (const index of fanout.indices) {
        if (claimed.has(index)) continue;
        if (overhead + rawBytes(index) > MESSAGE_BUDGET || overhead + s.sizeOf(index) > MESSAGE_BUDGET) {
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
    if (compiled.rules.destinations[destination]?.mode === "single") {
      for (const index of indices) {
        const single = s.message(destination, routes, `${id}.${destination}.n${index}`, [index]);
        if (single.bytes + WRAPPER_BYTES.delivery > MESSAGE_BUDGET) throw envelopeTooLarge(single.bytes);
        planned.push(single);
      }
      continue;
    }
    // Envelope mode: greedily fill parts in order. Ids and part numbers are sized generously first
    // (`.p9999`, [9999, 9999]) so that the final, shorter ones never push a part over budget.
    const overhead = s.overhead(fanout, false);
    const parts: number[][] = [];
    let current: number[] = [];
    let currentBytes = overhead;
    for (const index of indices) {
      const size = s.sizeOf(index);
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
      planned.push(s.message(destination, routes, deliveryId, part, split ? [k + 1, parts.length] : undefined));
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
