import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** Test-only secrets and settings; the real ones are Worker secrets (docs/operations.md, "Configuration"). */
export const TEST_BINDINGS = {
  EXTEND_WEBHOOK_SECRET: "fixture-secret",
  // At least 32 characters: shorter tokens switch the admin API and the console off (docs/console.md).
  ADMIN_TOKEN: "test-admin-token-0123456789abcdef0123",
  VIEWER_TOKEN: "test-viewer-token-0123456789abcdef012",
  WMS_SECRET: "wms-test-secret",
  SHOP_SECRET: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  SHOP_API_KEY: "shop-api-key",
  RETRY_SCHEDULE: "1,2,3",
  /** Where each test secret may be sent (docs/rules.md, "Where secrets may go"). */
  SECRET_HOSTS: JSON.stringify({
    WMS_SECRET: "wms.test",
    SHOP_SECRET: "shop.test",
    SHOP_API_KEY: "shop.test",
    HOOK_KEY: "hook.test",
    SLACK_URL: "hooks.slack.test",
    NOT_SET_ANYWHERE: "keyless.test",
    CRM_SECRET: "crm.test",
    ERP_SECRET: "erp.test",
    ERP_KEY: "erp.test",
    SHOP_ALERT_HOOK: "hooks.test",
  }),
};

export default defineConfig({
  test: {
    // The relay logs one JSON line per event; show them only for failing tests.
    silent: "passed-only",
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: TEST_BINDINGS,
              // Nothing leaves the machine: an outbound call no test mocked gets a 503 (and is retried).
              outboundService: (request: Request) =>
                new Response(`no network in tests: ${request.url}`, { status: 503 }),
            },
          }),
        ],
        test: {
          name: "workers",
          // Some tests wait for the real queue consumers; generous on a loaded CI machine.
          testTimeout: 30_000,
          include: ["test/**/*.test.ts"],
          exclude: ["test/e2e/**", "test/scripts/**"],
        },
      },
      {
        test: {
          name: "node",
          include: ["test/e2e/**/*.test.ts", "test/scripts/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
