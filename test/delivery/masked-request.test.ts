import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { GiveUp, maskedRequest } from "../../src/delivery/request.ts";
import { rulesSchema } from "../../src/rules/schema.ts";
import { deliveryMessage, EXAMPLE_RULES, requestBody } from "../helpers.ts";

/** A delivery's request as an operator sees it (docs/console.md): secrets and signatures masked, and as curl. */
const destinations = rulesSchema.parse(EXAMPLE_RULES).destinations;

describe("a delivery's request, shown", () => {
  it("masks each secret by its name and each signature, and gives the same as curl", async () => {
    const delivery = deliveryMessage("shop");
    const body = JSON.stringify(requestBody(delivery, 2));
    const shown = await maskedRequest(delivery, destinations.shop!, body, 2, env, 1_765_000_000);
    expect(shown.url).toBe("https://shop.test/hooks");
    expect(shown.headers).toEqual(
      expect.arrayContaining([
        ["X-Api-Key", "[secret SHOP_API_KEY]"],
        ["X-Source", "extend"],
        ["X-Relay-Delivery-Id", delivery.deliveryId],
        ["X-Relay-Attempt", "2"],
        ["webhook-signature", "[signature]"],
      ]),
    );
    const everything = JSON.stringify(shown);
    for (const secret of [env.SHOP_API_KEY, env.SHOP_SECRET] as string[]) expect(everything).not.toContain(secret);
    expect(shown.curl.startsWith("curl -X POST 'https://shop.test/hooks'")).toBe(true);
    expect(shown.curl).toContain("-H 'X-Api-Key: [secret SHOP_API_KEY]'");
    expect(shown.curl).toContain(`--data-binary '${body.replaceAll("'", `'\\''`)}'`);
  });

  it("cannot be shown when a secret it needs is not set, as it could not be sent", async () => {
    const delivery = deliveryMessage("wms");
    await expect(
      maskedRequest(delivery, destinations.wms!, "{}", 1, { ...env, WMS_SECRET: undefined }, 1_765_000_000),
    ).rejects.toBeInstanceOf(GiveUp);
  });
});
