import { RelayError } from "../errors.ts";
import { bodyAround, type Call, keyOf, type Notification, notificationText, warehouseOf } from "../extend/envelope.ts";
import type { CallRecord } from "../queues/call.ts";
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

/**
 * The queue messages for one call: per destination one message (split in order when it would exceed the
 * message budget), or one per notification for destinations in `single` mode. Delivery ids are
 * `<Id>.<destination>`, with `.p<k>` for split parts and `.n<position>` in single mode, so a sender's
 * retry of the same call produces the same ids and receivers can deduplicate.
 */
export function planMessages(
  call: Call,
  fanouts: readonly Fanout[],
  compiled: CompiledRules,
  receivedAt: number,
): PlannedDelivery[] {
  const id = call.envelope.Id;
  // What one more notification adds to a message: its text inside the escaped body, a comma there, and its
  // position in `indices` with a comma.
  const sizes = new Map<number, number>();
  const sizeOf = (index: number): number => {
    let size = sizes.get(index);
    if (size === undefined) {
      size = utf8Length(JSON.stringify(notificationText(call, index))) - 2 + 1 + String(index).length + 1;
      sizes.set(index, size);
    }
    return size;
  };
  const message = (
    destination: string,
    routes: string[],
    deliveryId: string,
    indices: number[],
    part?: [number, number],
  ): PlannedDelivery => {
    const body: Delivery = {
      v: 3,
      deliveryId,
      destination,
      routes,
      callId: id,
      indices,
      ...bodyAround(call, indices),
      ...(part !== undefined && { part }),
      receivedAt,
    };
    return plan(body);
  };

  const planned: PlannedDelivery[] = [];
  for (const { destination, indices, routes } of fanouts) {
    if (compiled.rules.destinations[destination]?.mode === "single") {
      for (const index of indices) {
        const single = message(destination, routes, `${id}.${destination}.n${index}`, [index]);
        if (single.bytes + WRAPPER_BYTES.delivery > MESSAGE_BUDGET) throw tooLarge(index, single.bytes);
        planned.push(single);
      }
      continue;
    }

    // Envelope mode: greedily fill parts in order. Ids and part numbers are sized generously first
    // (`.p9999`, [9999, 9999]) so that the final, shorter ones never push a part over budget.
    const overhead =
      message(destination, routes, `${id}.${destination}.p9999`, [], [9999, 9999]).bytes + WRAPPER_BYTES.delivery;
    const parts: number[][] = [];
    let current: number[] = [];
    let currentBytes = overhead;
    for (const index of indices) {
      const size = sizeOf(index);
      if (overhead + size > MESSAGE_BUDGET) throw tooLarge(index, overhead + size);
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
      planned.push(message(destination, routes, deliveryId, part, split ? [k + 1, parts.length] : undefined));
    });
  }
  return planned;
}

/**
 * The call's record for the ledger (src/queues.ts, CallRecord), in as many parts as it needs; the part with the
 * summary comes last, so that enqueuing it last puts the call on record only once all of it is enqueued.
 */
export function planCallRecord(
  call: Call,
  routing: Routing,
  deliveries: readonly PlannedDelivery[],
  at: number,
): Planned<CallRecord>[] {
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
  };
  // Greedy parts within the message budget; a row that fits no part alone cannot occur (a notification's
  // row is a few hundred bytes at most, its text having been refused above that).
  const parts: CallRecord[] = [];
  const { summary: _, ...partHead } = head;
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
  // The call's text rides with the summary when it fits (most calls); else in parts of its own.
  const room = MESSAGE_BUDGET - utf8Length(JSON.stringify(parts[0])) - 100;
  if (utf8Length(JSON.stringify(call.text)) <= room) parts[0]!.text = call.text;
  else {
    const chunks = textChunks(call.text, MESSAGE_BUDGET - utf8Length(JSON.stringify(partHead)) - 100);
    for (const [part, chunk] of chunks.entries()) parts.push({ ...partHead, text: { part, of: chunks.length, chunk } });
  }
  // The first part built holds the summary; it goes last.
  return [...parts.slice(1), parts[0]!].map((part) => plan(part));
}

/** `text` cut into pieces whose JSON-escaped UTF-8 size is at most `budget` bytes each, never inside a pair. */
function textChunks(text: string, budget: number): string[] {
  const chunks: string[] = [];
  let start = 0;
  while (start < text.length) {
    let length = Math.min(text.length - start, Math.floor(budget / 2));
    for (;;) {
      let end = start + length;
      const code = text.charCodeAt(end - 1);
      if (end < text.length && code >= 0xd800 && code <= 0xdbff) end--; // keep a surrogate pair together
      const chunk = text.slice(start, end);
      if (utf8Length(JSON.stringify(chunk)) <= budget || length === 1) {
        chunks.push(chunk);
        start = end;
        break;
      }
      length = Math.max(1, Math.floor(length / 2));
    }
  }
  return chunks;
}

/**
 * Everything one accepted call puts on DELIVERIES, in sending order (src/queues/delivery.ts): its deliveries, and
 * its record for the ledger beside the last delivery when it fits (one message fewer per call), else after them in
 * parts of its own.
 */
export function planCall(
  call: Call,
  routing: Routing,
  deliveries: readonly PlannedDelivery[],
  at: number,
): Planned<unknown>[] {
  const records = planCallRecord(call, routing, deliveries, at);
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
export function senderAttempt(call: Call): string {
  const member = call.outline.members.findLast((m) => m.key === "Attempt");
  return member === undefined ? "null" : call.text.slice(member.value, member.end);
}

function tooLarge(index: number, bytes: number): RelayError {
  return new RelayError(
    "notification_too_large",
    `Notifications[${index}] needs ${bytes} bytes in a queue message; Cloudflare Queues allows ${MESSAGE_BUDGET}.`,
    { index, bytes, limit: MESSAGE_BUDGET },
  );
}
