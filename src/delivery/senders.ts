import { describe } from "../errors.ts";
import type { AttemptResult } from "./outcome.ts";
import { type PreparedRequest, redact } from "./request.ts";

/**
 * How a prepared request goes out. One sender per kind of destination; every destination today is an HTTP
 * receiver. Tests hand their own sender to forward() (src/delivery/forward.ts).
 */
export interface Sender {
  send(request: PreparedRequest, timeoutMs: number): Promise<AttemptResult>;
}

export const httpSender: Sender = {
  async send({ url, init, secrets }, timeoutMs) {
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      // The body is not needed; release the connection.
      await response.body?.cancel().catch(() => {});
      return { kind: "response", status: response.status, retryAfter: response.headers.get("retry-after") };
    } catch (error) {
      if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
        return { kind: "timeout", timeoutMs };
      }
      // Runtime errors may quote the URL, which can itself be a secret.
      return { kind: "network", error: redact(describe(error), secrets) };
    }
  },
};
