import type { Actor } from "./auth/actor.ts";
import type { ClientLimiter } from "./auth/limiter.ts";
import type { MetricsWriter } from "./delivery/metrics.ts";
import type { GateApi } from "./gate/client.ts";
import type { LedgerRoom } from "./ledger/room.ts";
import type { RelaySecret } from "./secrets.ts";
import type { Settings, VarName } from "./settings.ts";

/**
 * The Worker's bindings (wrangler.toml), its own secrets and its vars. Destination secrets are named by the
 * rules and read with `secretValue` (src/secrets.ts).
 */
export type Env = {
  /** The routing rules document (docs/rules.md). */
  RULES: KVNamespace;
  /** The ledger: every call, delivery and attempt (src/ledger/). */
  LEDGER: D1Database;
  /** Notifications too large for a queue message, and the ledger's call texts (src/payloads.ts, src/ledger/). */
  PAYLOADS: R2Bucket;
  /** Delivery messages (src/queues/delivery.ts), JSON text. */
  DELIVERIES: Queue<string>;
  /** Dead-letter records on their way to the ledger, JSON text. */
  DEAD_LETTERS: Queue<string>;
  /** Calls and attempts on their way to the ledger, JSON text. */
  LEDGER_RECORDS: Queue<string>;
  /** One Durable Object per destination: its limits, circuit breaker, pause and held deliveries (src/gate/). */
  GATES: DurableObjectNamespace<GateApi>;
  /** One Durable Object per client: failed sign-ins and wrong bearers, for the whole relay (src/auth/limiter.ts). */
  LIMITER: DurableObjectNamespace<ClientLimiter>;
  /** Alerts on their way out (src/alerts/), JSON text. */
  ALERTS: Queue<string>;
  /** Bulk actions, a chunk per message (src/ops/jobs.ts), JSON text. */
  JOBS: Queue<string>;
  /** Cloudflare Email Service, for alerts to a destination's techContact; absent: no email. */
  ALERTS_EMAIL?: SendEmail;
  /** Workers Analytics Engine: one data point per attempt (src/delivery/metrics.ts); absent: none written. */
  METRICS?: MetricsWriter;
} & { [K in RelaySecret]?: string } & { [K in VarName]?: string };

/**
 * What Hono handlers see: the bindings, the settings the app's middleware parsed (src/app.ts) and, under
 * /admin and /console, who is asking (src/auth/identify.ts) and the storage room (src/ledger/room.ts).
 */
export interface AppEnv {
  Bindings: Env;
  Variables: { settings: Settings; actor: Actor; ledger: LedgerRoom };
}
