import type { Env } from "../src/settings.ts";

declare global {
  namespace Cloudflare {
    interface Env extends Omit<import("../src/settings.ts").Env, never> {
      WMS_SECRET: string;
      SHOP_SECRET: string;
      SHOP_API_KEY: string;
    }
  }
}
export type { Env };
