import { env } from "cloudflare:workers";
import { createHash, createHmac } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { bodyAround, notificationText, parseCall } from "../../src/extend/envelope.ts";
import { getCall, getCallText } from "../../src/ledger/calls.ts";
import { getDeadLetter } from "../../src/ledger/dead-letters.ts";
import { getDelivery } from "../../src/ledger/deliveries.ts";
import { claimKey } from "../../src/payloads.ts";
import { QUEUES } from "../../src/queues/names.ts";
import {
  admin,
  consume,
  deliveryMessage,
  EXAMPLE_RULES,
  eventually,
  freshId,
  postWebhook,
  putRules,
  sentDeliveries,
  signedPost,
} from "../helpers.ts";

/**
 * Notifications too large for a queue message (docs/delivery.md, "Large notifications"): the door keeps them in
 * R2 before it answers, their messages carry a claim, and the receiver gets exactly the bytes it would have got
 * inline, signed the same way. A claim that cannot be read is retried and ends as a dead letter saying why.
 */

const RULES = {
  ...EXAMPLE_RULES,
  destinations: { ...EXAMPLE_RULES.destinations, wms: { ...EXAMPLE_RULES.destinations.wms, maxAttempts: 2 } },
};

let received: { deliveryId: string; attempt: string; body: Uint8Array; signature: string | null }[];
beforeEach(async () => {
  await putRules(RULES);
  received = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const request = new Request(input, init);
    if (new URL(request.url).hostname === "wms.test") {
      received.push({
        deliveryId: request.headers.get("x-relay-delivery-id")!,
        attempt: request.headers.get("x-relay-attempt")!,
        body: new Uint8Array(await request.arrayBuffer()),
        signature: request.headers.get("ms-signature"),
      });
    }
    return new Response("ok");
  });
});
afterEach(() => vi.restoreAllMocks());

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A call as Extend would send it: a small order, and one whose Details carry `padding` characters. */
function largeCall(id: string, padding: number): string {
  return JSON.stringify(
    {
      Id: id,
      Attempt: 1,
      Properties: { NotificationId: crypto.randomUUID() },
      Notifications: [
        { Action: "OrderCreated", Details: { OrderNumber: "100", OrderType: "NormalOrder", Amount: 1.0e2 } },
        {
          Action: "OrderCreated",
          Details: { OrderNumber: "101", OrderType: "NormalOrder", Note: `Åsa ${"x".repeat(padding)}` },
        },
      ],
    },
    null,
    2,
  ).replaceAll("\n", "\r\n");
}

/** What wms receives at `attempt` for a call whose every notification goes to it: the sender's own text. */
const expectedBody = (call: string, attempt: number) => {
  const { head, tail } = bodyAround(parseCall(new TextEncoder().encode(call)), [0, 1]);
  return `${head}${attempt}${tail}`;
};

describe("a notification too large for a queue message", () => {
  it("is kept in R2 before the answer, claimed in its messages, and delivered byte-exact with a valid signature", async () => {
    const id = freshId();
    const call = largeCall(id, 300_000);
    const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
    const response = await signedPost(call);
    expect(response.status).toBe(202);
    // R2 holds the notification's own text, with its SHA-256, under a key of its call.
    const notification = call.slice(
      call.indexOf('{\r\n      "Action": "OrderCreated",\r\n      "Details": {\r\n        "OrderNumber": "101"'),
    );
    const stored = await env.PAYLOADS.get(claimKey(id, "n1"));
    const kept = await stored!.text();
    expect(notification.startsWith(kept)).toBe(true);
    expect(kept.endsWith("}")).toBe(true);
    const [delivery] = sentDeliveries(sendBatch).filter((d) => d.destination === "wms");
    expect(delivery!.claims).toEqual([
      {
        key: claimKey(id, "n1"),
        bytes: new TextEncoder().encode(kept).byteLength,
        sha256: createHash("sha256").update(kept).digest("hex"),
      },
    ]);
    // The message itself stays small: the claim's mark stands where the text was.
    expect(JSON.stringify(delivery).length).toBeLessThan(3000);
    await eventually(() => expect(received).toHaveLength(1));
    const [got] = received;
    expect(text(got!.body)).toBe(expectedBody(call, 1));
    expect(got!.signature).toBe(
      `sha256=${createHmac("sha256", "wms-test-secret").update(got!.body).digest("hex").toUpperCase()}`,
    );
  });

  it("is on record in the ledger and sent again byte-exact by a resend", async () => {
    const id = freshId();
    const call = largeCall(id, 200_000);
    expect((await signedPost(call)).status).toBe(202);
    await eventually(async () =>
      expect((await getCall(env.LEDGER, id))?.deliveries.find((d) => d.destination === "wms")?.status).toBe(
        "delivered",
      ),
    );
    // The ledger's copy of the call's text keeps the mark, not the 200 KB.
    expect((await getCallText(env.LEDGER, env.PAYLOADS, id))!.length).toBeLessThan(2000);
    const trace = await (await admin(`/deliveries/${id}.wms`)).json<{ body: unknown }>();
    expect(trace.body).toEqual(JSON.parse(expectedBody(call, 1)));
    const resent = await admin(`/deliveries/${id}.wms/replay`, { method: "POST" });
    expect(resent.status).toBe(202);
    await eventually(() => expect(received).toHaveLength(2));
    expect(text(received[1]!.body)).toBe(expectedBody(call, 1));
  });

  it("that cannot be read back is retried like a failed attempt, then a dead letter naming why", async () => {
    const id = freshId();
    const call = largeCall(id, 150_000);
    // The object disappears before the first attempt.
    const put = env.PAYLOADS.put.bind(env.PAYLOADS);
    vi.spyOn(env.PAYLOADS, "put").mockImplementation(async (key, value, options) => {
      const result = await put(key, value, options);
      if (key === claimKey(id, "n1")) await env.PAYLOADS.delete(key);
      return result;
    });
    expect((await signedPost(call)).status).toBe(202);
    const dead = await eventually(async () => {
      const found = await getDeadLetter(env.LEDGER, env.PAYLOADS, `${id}.wms`);
      expect(found).not.toBeNull();
      return found as { record: { reason: string; detail: string; attempts: number } };
    }, 20_000);
    expect(dead.record).toMatchObject({ reason: "claim_unreadable", attempts: 2 });
    expect(dead.record.detail).toContain(`the object ${claimKey(id, "n1")} is missing from PAYLOADS`);
    expect(received).toHaveLength(0); // never a truncated or empty body
    // Counted as the relay's failure, not the receiver's.
    const delivery = await getDelivery(env.LEDGER, env.PAYLOADS, `${id}.wms`);
    expect(delivery!.attempts!.every((a) => a.status === undefined)).toBe(true);
  });

  it("whose object changed is refused for its SHA-256, never sent", async () => {
    const id = freshId();
    const call = largeCall(id, 140_000);
    const put = env.PAYLOADS.put.bind(env.PAYLOADS);
    vi.spyOn(env.PAYLOADS, "put").mockImplementation(async (key, value, options) => {
      const result = await put(key, value, options);
      if (key === claimKey(id, "n1")) await put(key, "{}");
      return result;
    });
    expect((await signedPost(call)).status).toBe(202);
    const dead = await eventually(async () => {
      const found = await getDeadLetter(env.LEDGER, env.PAYLOADS, `${id}.wms`);
      expect(found).not.toBeNull();
      return found as { record: { reason: string; detail: string } };
    }, 20_000);
    expect(dead.record.reason).toBe("claim_unreadable");
    expect(dead.record.detail).toContain("SHA-256");
    expect(received).toHaveLength(0);
  });
});

/** The bodies the door kept as they streamed in (src/ingress/body.ts). */
async function keptBodies(): Promise<string[]> {
  return (await env.PAYLOADS.list({ prefix: "claims/bodies/" })).objects.map((o) => o.key);
}

describe("a body over 1 MiB", () => {
  beforeEach(async () => {
    for (const key of await keptBodies()) await env.PAYLOADS.delete(key);
  });

  it("goes on to R2 whole as it streams, and its claims say where each notification's bytes are in it", async () => {
    const id = freshId();
    const call = largeCall(id, 1_200_000).replace('"Amount"', '"Åmount ✓ 𝄞"');
    const bytes = new TextEncoder().encode(call);
    const sendBatch = vi.spyOn(env.DELIVERIES, "sendBatch");
    expect((await signedPost(bytes)).status).toBe(202);
    const [key] = await keptBodies();
    expect(new Uint8Array(await (await env.PAYLOADS.get(key!))!.arrayBuffer())).toEqual(bytes);
    expect(await env.PAYLOADS.head(claimKey(id, "n1"))).toBeNull(); // no second copy
    const notification = notificationText(parseCall(bytes), 1);
    const offset = new TextEncoder().encode(call.slice(0, call.indexOf(notification))).byteLength;
    const [delivery] = sentDeliveries(sendBatch).filter((d) => d.destination === "wms");
    expect(delivery!.claims).toEqual([
      {
        key,
        offset,
        bytes: new TextEncoder().encode(notification).byteLength,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      },
    ]);
    await eventually(() => expect(received).toHaveLength(1));
    expect(text(received[0]!.body)).toBe(expectedBody(call, 1));
    expect(received[0]!.signature).toBe(
      `sha256=${createHmac("sha256", "wms-test-secret").update(received[0]!.body).digest("hex").toUpperCase()}`,
    );
  });

  it("that begins with a byte order mark is claimed past it", async () => {
    const id = freshId();
    const call = largeCall(id, 1_100_000);
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(call)]);
    expect((await signedPost(bytes)).status).toBe(202);
    await eventually(() => expect(received).toHaveLength(1));
    expect(text(received[0]!.body)).toBe(expectedBody(call, 1));
  });

  it("is deleted when the call is refused, or when no notification needs a claim", async () => {
    const refused = await postWebhook(largeCall(freshId(), 1_100_000), { "ms-signature": `sha256=${"0".repeat(64)}` });
    expect(refused.status).toBe(401);
    const small = Array.from({ length: 600 }, (_, i) => ({
      Action: "OrderCreated",
      Details: { OrderNumber: `S-${i}`, OrderType: "NormalOrder", Note: "n".repeat(2000) },
    }));
    const accepted = await signedPost(JSON.stringify({ Id: freshId(), Attempt: 1, Notifications: small }));
    expect(accepted.status).toBe(202);
    await eventually(async () => expect(await keptBodies()).toEqual([]));
  });
});

describe("deliveries of large claims", () => {
  it("are built one at a time when together they would hold more than the isolate can spare", async () => {
    // Three deliveries of a 9 MiB claim in one batch: each holds about 36 MiB while built and sent.
    let open = 0;
    let most = 0;
    const mine = new Set<string>();
    vi.mocked(globalThis.fetch).mockImplementation(async (input, init) => {
      // Only this test's deliveries count (others' may still be under way).
      const request = new Request(input, init);
      if (!mine.has(request.headers.get("x-relay-delivery-id")!)) return new Response("ok");
      open++;
      most = Math.max(most, open);
      await request.arrayBuffer();
      await new Promise((resolve) => setTimeout(resolve, 100));
      open--;
      return new Response("ok");
    });
    const note = "y".repeat(9 * 1024 * 1024);
    const messages = await Promise.all(
      ["a", "b", "c"].map(async () => {
        const id = freshId();
        const key = claimKey(id, "n0");
        const notification = JSON.stringify({
          Action: "OrderCreated",
          Details: { OrderType: "NormalOrder", Note: note },
        });
        await env.PAYLOADS.put(key, notification);
        const claim = {
          key,
          bytes: notification.length,
          sha256: createHash("sha256").update(notification).digest("hex"),
        };
        const call = JSON.stringify({ Id: id, Attempt: 1, Notifications: [{ Action: "OrderCreated", Details: {} }] });
        const plain = deliveryMessage("wms", {}, call);
        return {
          ...plain,
          head: plain.head,
          tail: plain.tail.replace('{"Action":"OrderCreated","Details":{}}', "\u00000\u0000"),
          claims: [claim],
        };
      }),
    );
    for (const m of messages) mine.add(m.deliveryId);
    const result = await consume(QUEUES.deliveries, messages);
    expect(result.explicitAcks).toHaveLength(3);
    expect(most).toBe(1);
    // Small deliveries are not held back by it.
    most = 0;
    const small = [deliveryMessage("wms"), deliveryMessage("wms"), deliveryMessage("wms")];
    for (const m of small) mine.add(m.deliveryId);
    await consume(QUEUES.deliveries, small);
    expect(most).toBe(3);
  });
});

describe("a call too large for its record", () => {
  it("keeps its text in R2 too, and every part of every delivery goes out and can be sent again", async () => {
    const id = freshId();
    // 600 notifications of 2 KB: none too large for a message, the call too large for its record.
    const notifications = Array.from({ length: 600 }, (_, i) => ({
      Action: "OrderCreated",
      Details: { OrderNumber: `R-${i}`, OrderType: "NormalOrder", Note: "n".repeat(2000) },
    }));
    const call = JSON.stringify({ Id: id, Attempt: 1, Properties: {}, Notifications: notifications });
    expect((await signedPost(call)).status).toBe(202);
    expect(await env.PAYLOADS.head(claimKey(id, "text"))).not.toBeNull();
    await eventually(async () => {
      const trace = await getCall(env.LEDGER, id);
      expect(trace?.deliveries.filter((d) => d.destination === "wms").every((d) => d.status === "delivered")).toBe(
        true,
      );
    }, 20_000);
    const numbers = received.flatMap((r) =>
      (JSON.parse(text(r.body)).Notifications as { Details: { OrderNumber: string } }[]).map(
        (n) => n.Details.OrderNumber,
      ),
    );
    expect(numbers).toEqual(notifications.map((n) => n.Details.OrderNumber));
    expect(await getCallText(env.LEDGER, env.PAYLOADS, id)).toBe(call);
    const first = received[0]!;
    expect((await admin(`/deliveries/${first.deliveryId}/replay`, { method: "POST" })).status).toBe(202);
    await eventually(() => expect(received.filter((r) => r.deliveryId === first.deliveryId)).toHaveLength(2));
    const again = received.filter((r) => r.deliveryId === first.deliveryId)[1]!;
    expect(text(again.body)).toBe(text(first.body));
  });
});
