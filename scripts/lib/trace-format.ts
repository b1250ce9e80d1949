/**
 * How `npm run trace` shows a call's trace (GET /admin/calls/:id) to a person: the call, its notifications
 * with their business keys and routes, then each delivery with its status, its full delivery id (what
 * receivers dedupe on), every attempt and, for a dead letter, why.
 *
 * The types are the admin API's JSON as a client sees it (docs/admin-api.md), not the relay's own: the
 * script reads what any relay version answers and tolerates fields it does not know.
 */

export interface TraceAttempt {
  attempt: number;
  at: string;
  status?: number;
  error?: string;
  durationMs?: number;
  outcome: "delivered" | "retry" | "dead_letter" | string;
  replay?: true;
}

export interface TraceDelivery {
  deliveryId: string;
  destination: string;
  status: "pending" | "retrying" | "held" | "delivered" | "dead" | string;
  notifications?: number[];
  attemptCount?: number;
  lastStatus?: number;
  lastError?: string;
  dead?: { reason: string; detail: string; at: string; source: string };
  attempts?: TraceAttempt[];
}

export interface TraceNotification {
  index: number;
  action: string;
  warehouse: string | null;
  key: string | null;
  routes: string[];
  destinations: string[];
}

export interface CallTrace {
  id: string;
  receivedAt: string;
  senderAttempts: unknown[];
  notifications: TraceNotification[];
  deliveries: TraceDelivery[];
}

/** Lines shown of a call's notifications and of its deliveries; the rest are counted (--json has all). */
export const SHOWN_NOTIFICATIONS = 20;
export const SHOWN_DELIVERIES = 20;

/** What the business key of a notification is, from its Action (the relay stores the key's value only). */
export function keyLabel(action: string): string {
  if (action.startsWith("CustomerInvoice")) return "invoice";
  if (action.startsWith("Customer")) return "customer";
  if (action.startsWith("Order") || action.startsWith("Picking")) return "order";
  if (action.startsWith("Purchase")) return "purchase";
  if (action.startsWith("Product") || action.endsWith("BalanceChanged")) return "product";
  if (action.startsWith("Offer")) return "offer";
  if (action.startsWith("PriceList")) return "price list";
  return "key";
}

/** `2026-12-01T20:06:31.474Z` → `2026-12-01 20:06:31Z`; with `sameDayAs` on the same UTC day, `20:06:31Z`. */
export function shownTime(iso: string, sameDayAs?: string): string {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/.test(iso)) return iso;
  if (sameDayAs !== undefined && sameDayAs.slice(0, 10) === iso.slice(0, 10)) return `${iso.slice(11, 19)}Z`;
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
}

const STATUS_ORDER = ["delivered", "pending", "held", "retrying", "dead"];

/** "2 deliveries, all delivered" · "3 deliveries: 1 delivered, 2 dead" · "no deliveries". */
export function deliverySummary(deliveries: readonly TraceDelivery[]): string {
  if (deliveries.length === 0) return "no deliveries";
  const counts = new Map<string, number>();
  for (const d of deliveries) counts.set(d.status, (counts.get(d.status) ?? 0) + 1);
  const noun = deliveries.length === 1 ? "delivery" : "deliveries";
  if (counts.size === 1) {
    const status = deliveries[0]!.status;
    return deliveries.length === 1 ? `1 delivery, ${status}` : `${deliveries.length} ${noun}, all ${status}`;
  }
  const rank = (s: string) => (STATUS_ORDER.includes(s) ? STATUS_ORDER.indexOf(s) : STATUS_ORDER.length);
  const parts = [...counts].sort(([a], [b]) => rank(a) - rank(b)).map(([status, n]) => `${n} ${status}`);
  return `${deliveries.length} ${noun}: ${parts.join(", ")}`;
}

function senderAttempts(values: readonly unknown[]): string {
  const shown = values.map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
  if (shown.length === 0) return "";
  return `sender attempt${shown.length === 1 ? "" : "s"} ${shown.join(", ")}`;
}

/** Deliveries in the order the call's notifications name their destinations (the rules' order), then by id. */
function ordered(trace: CallTrace): TraceDelivery[] {
  const order: string[] = [];
  for (const n of trace.notifications) for (const d of n.destinations) if (!order.includes(d)) order.push(d);
  const position = (d: TraceDelivery) => {
    const i = order.indexOf(d.destination);
    return i === -1 ? order.length : i;
  };
  return [...trace.deliveries].sort(
    (a, b) => position(a) - position(b) || (a.deliveryId < b.deliveryId ? -1 : a.deliveryId > b.deliveryId ? 1 : 0),
  );
}

function table(rows: string[][], indent: string): string[] {
  const widths: number[] = [];
  for (const row of rows) for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  return rows.map((row) =>
    `${indent}${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")}`.trimEnd(),
  );
}

function notificationLines(trace: CallTrace, key: string | undefined): string[] {
  // Those carrying the key searched for are shown even past the first SHOWN_NOTIFICATIONS.
  const shown = trace.notifications.filter((n, i) => i < SHOWN_NOTIFICATIONS || (key !== undefined && n.key === key));
  const anyWarehouse = shown.some((n) => n.warehouse !== null && n.warehouse !== undefined);
  const rows = shown.map((n) => {
    const routed =
      n.routes.length === 0
        ? "no route matched"
        : `route${n.routes.length === 1 ? "" : "s"} ${n.routes.join(", ")} → ${n.destinations.join(", ") || "(none)"}`;
    return [
      `#${n.index}`,
      n.action,
      n.key === null || n.key === undefined ? "" : `${keyLabel(n.action)} ${n.key}`,
      ...(anyWarehouse ? [n.warehouse === null || n.warehouse === undefined ? "" : `warehouse ${n.warehouse}`] : []),
      routed,
    ];
  });
  const lines = table(rows, "  ");
  const more = trace.notifications.length - shown.length;
  if (more > 0) lines.push(`  … ${more} more notification${more === 1 ? "" : "s"} (--json shows all)`);
  return lines;
}

function attemptRows(d: TraceDelivery, receivedAt: string): string[][] {
  return (d.attempts ?? []).map((a) => {
    const outcome = a.outcome === "retry" ? "→ retry" : a.outcome === "dead_letter" ? "→ dead letter" : "";
    // The error says more when there was no HTTP status, or when it is not the dead letter's reason shown below.
    const error =
      a.error !== undefined && (a.status === undefined || (d.status !== "dead" && a.outcome !== "delivered"))
        ? a.error
        : undefined;
    return [
      `${a.replay === true ? "replay attempt" : "attempt"} ${a.attempt}`,
      shownTime(a.at, receivedAt),
      a.status === undefined ? "—" : String(a.status),
      a.durationMs === undefined ? "—" : `${a.durationMs} ms`,
      [outcome, error].filter((s) => s !== undefined && s !== "").join(": "),
    ];
  });
}

/** Right-aligns the duration column (index 3) of attempt rows. */
function alignDurations(rows: string[][]): string[][] {
  const width = Math.max(0, ...rows.map((r) => r[3]!.length));
  return rows.map((r) => r.map((cell, i) => (i === 3 ? cell.padStart(width) : cell)));
}

export interface FormatOptions {
  /** The relay's base URL, for the replay command of a dead letter. */
  url?: string;
  /** The business key searched for: its notifications are shown however many the call has. */
  key?: string;
}

/** A call's trace as lines for a person. */
export function formatTrace(trace: CallTrace, options: FormatOptions = {}): string[] {
  const header = [
    `Call ${trace.id}`,
    `received ${shownTime(trace.receivedAt)}`,
    senderAttempts(trace.senderAttempts ?? []),
    deliverySummary(trace.deliveries),
  ].filter((part) => part !== "");
  const lines = [header.join("  "), ...notificationLines(trace, options.key)];

  const deliveries = ordered(trace);
  const shown = deliveries.slice(0, SHOWN_DELIVERIES);
  const nameWidth = Math.max(0, ...shown.map((d) => d.destination.length));
  const statusWidth = Math.max(0, ...shown.map((d) => d.status.length));
  const indent = " ".repeat(2 + nameWidth + 2);
  // One attempt table for the whole call, so the columns line up from delivery to delivery.
  const rows = alignDurations(shown.flatMap((d) => attemptRows(d, trace.receivedAt)));
  const attemptLines = table(rows, indent);
  let next = 0;
  for (const d of shown) {
    lines.push(`  ${d.destination.padEnd(nameWidth)}  ${d.status.padEnd(statusWidth)}  ${d.deliveryId}`);
    const count = d.attempts?.length ?? 0;
    if (count === 0) {
      lines.push(`${indent}${d.status === "pending" ? "no attempt recorded yet" : "no attempt on record"}`);
    }
    lines.push(...attemptLines.slice(next, next + count));
    next += count;
    if (d.status === "dead" && d.dead !== undefined) {
      const source = d.dead.source !== "" && d.dead.source !== "relay" ? ` (from the ${d.dead.source})` : "";
      lines.push(`${indent}dead letter: ${d.dead.reason}${source}${d.dead.detail === "" ? "" : ` — ${d.dead.detail}`}`);
      if (options.url !== undefined) {
        lines.push(
          `${indent}replay: curl -s -X POST -H "Authorization: Bearer $ADMIN_TOKEN" ${options.url}/admin/deliveries/${encodeURIComponent(d.deliveryId)}/replay`,
        );
      }
    }
  }
  const more = deliveries.slice(shown.length);
  if (more.length > 0) lines.push(`  … ${deliverySummary(more).replace(/^(\d+)/, "$1 more")} (--json shows all)`);
  return lines;
}
