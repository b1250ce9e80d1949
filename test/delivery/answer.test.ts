import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ANSWER_BODY_BYTES } from "../../src/delivery/senders.ts";
import { resetGateCache } from "../../src/gate/client.ts";
import { QUEUES } from "../../src/queues/names.ts";
import { consume, deliveryMessage, EXAMPLE_RULES, eventually, putRules } from "../helpers.ts";

/**
 * A failed attempt's answer (docs/console.md): the receiver's headers and the first 2 KB of its body are kept with
 * the attempt for the operator to inspect, with every secret the request carried masked; a success keeps nothing.
 */
beforeEach(async () => {
  resetGateCache();
  await putRules(EXAMPLE_RULES);
});
afterEach(() => vi.restoreAllMocks());

async function answerOf(deliveryId: string): Promise<{ headers: [string, string][]; body: string } | null> {
  const callId = deliveryId.split(".")[0]!;
  return eventually(async () => {
    const row = await env.LEDGER.prepare(
      "SELECT a.answer FROM ledger_attempts a JOIN ledger_calls c ON c.seq = a.call WHERE c.id = ?1",
    )
      .bind(callId)
      .first<{ answer: string | null }>();
    expect(row).not.toBeNull();
    return row!.answer === null ? null : JSON.parse(row!.answer);
  });
}

describe("a failed attempt's answer", () => {
  it("keeps the receiver's headers and the start of its body, the request's secrets masked", async () => {
    const apiKey = env.SHOP_API_KEY as string;
    vi.spyOn(globalThis, "fetch").mockResolvedValue(
      new Response(`{"error":"bad key ${apiKey}"}${"x".repeat(5000)}`, {
        status: 500,
        headers: { "x-request-id": "r-42", "x-echo": `key=${apiKey}` },
      }),
    );
    const shop = deliveryMessage("shop");
    await consume(QUEUES.deliveries, [shop]);
    const answer = (await answerOf(shop.deliveryId))!;
    expect(answer.headers).toContainEqual(["x-request-id", "r-42"]);
    expect(answer.headers).toContainEqual(["x-echo", "key=[secret SHOP_API_KEY]"]);
    expect(answer.body.startsWith('{"error":"bad key [secret SHOP_API_KEY]"}xxx')).toBe(true);
    expect(answer.body).not.toContain(apiKey);
    // The first 2 KB of what was sent, no more (masking may lengthen it a little).
    expect(answer.body.length).toBeLessThan(ANSWER_BODY_BYTES + 40);
    expect(answer.body.length).toBeGreaterThan(ANSWER_BODY_BYTES - 40);
  });

  it("keeps nothing for a success, or for an attempt that got no answer", async () => {
    vi.spyOn(globalThis, "fetch").mockResolvedValueOnce(new Response("ok"));
    const wms = deliveryMessage("wms");
    await consume(QUEUES.deliveries, [wms]);
    expect(await answerOf(wms.deliveryId)).toBeNull();
    vi.mocked(fetch).mockRejectedValueOnce(new TypeError("Network connection lost."));
    const again = deliveryMessage("wms");
    await consume(QUEUES.deliveries, [again]);
    expect(await answerOf(again.deliveryId)).toBeNull();
    // What the attempt records of it: the runtime's message, without a doubled "Error:".
    const row = await env.LEDGER.prepare(
      "SELECT a.error FROM ledger_attempts a JOIN ledger_calls c ON c.seq = a.call WHERE c.id = ?1",
    )
      .bind(again.callId)
      .first<{ error: string }>();
    expect(row?.error).toBe("network error: Network connection lost.");
  });
});
