import { Hono } from "hono";
import { bodyFor } from "../delivery/body.ts";
import { TransformFailed } from "../delivery/transform.ts";
import type { AppEnv } from "../env.ts";
import { RelayError } from "../errors.ts";
import type { CallSummary, CallTrace, DeliveryView, Page, Stats } from "../ledger/views.ts";
import { foundDelivery, resendDelivery } from "../ops/deliveries.ts";
import { opContext } from "../ops/record.ts";
import { ClaimUnreadable } from "../payloads.ts";
import { currentDestinations, destinationOf } from "../rules/destinations.ts";
import { described, query } from "./openapi.ts";
import type { DeliveryTrace, HourlyAnswer, ResendResult } from "./schemas.ts";

/**
 * GET /admin/deliveries/:id answers this: the delivery, its attempts, and the body it sends (or, when part of it
 * is kept in R2 and cannot be read now, why not).
 */
export type { DeliveryTrace };

const DAY = 86_400_000;

/** The trace half of the admin API (docs/admin-api.md): calls, deliveries, resend, stats. */
export const trace = new Hono<AppEnv>()
  .get("/calls", described("GET /admin/calls"), query("GET /admin/calls"), async (c) => {
    const page = await c.var.ledger.listCalls(c.req.valid("query"));
    return c.json(page satisfies Page<CallSummary>);
  })
  .get("/calls/:id", described("GET /admin/calls/:id"), async (c) => {
    const id = c.req.param("id");
    const trace = await c.var.ledger.getCall(id);
    if (trace === null) {
      throw new RelayError(
        "call_not_found",
        `The ledger has no call with Id ${id} (never accepted, or past retention).`,
      );
    }
    return c.json(trace satisfies CallTrace);
  })
  .get("/deliveries", described("GET /admin/deliveries"), query("GET /admin/deliveries"), async (c) => {
    const page = await c.var.ledger.listDeliveries(c.req.valid("query"));
    return c.json(page satisfies Page<DeliveryView>);
  })
  .get("/deliveries/:id", described("GET /admin/deliveries/:id"), async (c) => {
    const { message, unreadable: _, ...delivery } = await foundDelivery(c.env, c.req.param("id"));
    let body: Pick<DeliveryTrace, "body" | "bodyUnavailable"> = {};
    if (message !== undefined) {
      try {
        // What the receiver gets, shaped by the destination's transform as it stands in the rules now.
        const destinations = await currentDestinations(c.env, c.var.settings);
        const destination = destinationOf(destinations, message.destination);
        body = { body: JSON.parse(await bodyFor(message, 1, c.env.PAYLOADS, destination)) };
      } catch (error) {
        if (!(error instanceof ClaimUnreadable) && !(error instanceof TransformFailed)) throw error;
        body = { bodyUnavailable: error.message };
      }
    }
    return c.json({ ...delivery, ...body } satisfies DeliveryTrace);
  })
  .post("/deliveries/:id/replay", described("POST /admin/deliveries/:id/replay"), async (c) =>
    c.json((await resendDelivery(opContext(c), c.req.param("id"))) satisfies ResendResult, 202),
  )
  .get("/stats/hourly", described("GET /admin/stats/hourly"), query("GET /admin/stats/hourly"), async (c) => {
    const { destination, range } = c.req.valid("query");
    const until = Date.now();
    const destinations = await c.var.ledger.hourly({
      since: until - (range === "7d" ? 7 * DAY : DAY) + 3_600_000,
      until,
      ...(destination !== undefined && { destinations: [destination] }),
    });
    return c.json({ range, destinations } satisfies HourlyAnswer);
  })
  .get("/stats", described("GET /admin/stats"), query("GET /admin/stats"), async (c) => {
    const since = c.req.valid("query").since ?? Date.now() - DAY;
    return c.json((await c.var.ledger.stats(since)) satisfies Stats);
  });
