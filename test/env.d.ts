declare global {
  namespace Cloudflare {
    interface Env extends Omit<import("../src/env.ts").Env, never> {
      WMS_SECRET: string;
      SHOP_SECRET: string;
      SHOP_API_KEY: string;
    }
    interface GlobalProps {
      mainModule: typeof import("../src/index.ts");
    }
  }
}

export {};
