import { type Context, Hono } from "hono";
import { bodyFor } from "../delivery/body.ts";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import { getCall, listCalls } from "../ledger/calls.ts";
import { listDeliveries } from "../ledger/deliveries.ts";
import type { ResendResult } from "../ledger/resend.ts";
import { stats } from "../ledger/stats.ts";
import {
  CALL_STATUSES,
  type CallSummary,
  type CallTrace,
  DELIVERY_STATUSES,
  type DeliveryView,
  type Page,
  type Stats,
} from "../ledger/views.ts";
import { foundDelivery, resendDelivery } from "../ops/deliveries.ts";
import { opContext } from "../ops/record.ts";
import { ClaimUnreadable } from "../payloads.ts";
import { cursorParam, limitParam, oneOfParam, textParam, timeParam } from "./query.ts";

/**
 * GET /admin/deliveries/:id answers this: the delivery, its attempts, and the body it sends (or, when part of it
 * is kept in R2 and cannot be read now, why not).
 */
export type DeliveryTrace = DeliveryView & { body?: unknown; bodyUnavailable?: string };

const DAY = 86_400_000;

async function showCall(c: Context<AppEnv>): Promise<Response> {
  const id = c.req.param("id")!;
  const trace = await getCall(c.env.LEDGER, id);
  if (trace === null) {
    throw new RelayError("call_not_found", `The ledger has no call with Id ${id} (never accepted, or past retention).`);
  }
  return c.json(trace satisfies CallTrace);
}

async function searchCalls(c: Context<AppEnv>): Promise<Response> {
  const page = await listCalls(c.env.LEDGER, {
    key: textParam(c, "key"),
    action: textParam(c, "action"),
    destination: textParam(c, "destination"),
    status: oneOfParam(c, "status", CALL_STATUSES),
    since: timeParam(c, "since"),
    until: timeParam(c, "until"),
    limit: limitParam(c),
    cursor: cursorParam(c),
  });
  return c.json(page satisfies Page<CallSummary>);
}

async function searchDeliveries(c: Context<AppEnv>): Promise<Response> {
  const page = await listDeliveries(c.env.LEDGER, {
    destination: textParam(c, "destination"),
    status: oneOfParam(c, "status", DELIVERY_STATUSES),
    since: timeParam(c, "since"),
    until: timeParam(c, "until"),
    limit: limitParam(c),
    cursor: cursorParam(c),
  });
  return c.json(page satisfies Page<DeliveryView>);
}

async function showDelivery(c: Context<AppEnv>): Promise<Response> {
  const { message, unreadable: _, ...delivery } = await foundDelivery(c.env, c.req.param("id")!);
  let body: Pick<DeliveryTrace, "body" | "bodyUnavailable"> = {};
  if (message !== undefined) {
    try {
      body = { body: JSON.parse(await bodyFor(message, 1, c.env.PAYLOADS)) };
    } catch (error) {
      if (!(error instanceof ClaimUnreadable)) throw error;
      body = { bodyUnavailable: error.message };
    }
  }
  return c.json({ ...delivery, ...body } satisfies DeliveryTrace);
}

async function resendOne(c: Context<AppEnv>): Promise<Response> {
  return c.json((await resendDelivery(opContext(c), c.req.param("id")!)) satisfies ResendResult, 202);
}

async function showStats(c: Context<AppEnv>): Promise<Response> {
  const since = timeParam(c, "since") ?? Date.now() - DAY;
  return c.json((await stats(c.env.LEDGER, c.env.PAYLOADS, since)) satisfies Stats);
}

/** The trace half of the admin API (docs/admin-api.md): calls, deliveries, resend, stats. */
export const trace = new Hono<AppEnv>()
  .get("/calls", searchCalls)
  .get("/calls/:id", showCall)
  .get("/deliveries", searchDeliveries)
  .get("/deliveries/:id", showDelivery)
  .post("/deliveries/:id/replay", resendOne)
  .get("/stats", showStats);
