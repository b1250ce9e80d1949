import { describe } from "../errors.ts";
import type { AttemptResult, ReceiverAnswer } from "./outcome.ts";
import { type PreparedRequest, redact } from "./request.ts";

/**
 * How a prepared request goes out. One sender per kind of destination; every destination today is an HTTP
 * receiver. Tests hand their own sender to forward() (src/delivery/forward.ts).
 */
export interface Sender {
  send(request: PreparedRequest, timeoutMs: number): Promise<AttemptResult>;
}

/** Of a failed attempt's answer, the ledger keeps at most this much body and these many headers. */
export const ANSWER_BODY_BYTES = 2048;
export const ANSWER_HEADERS = 30;
const ANSWER_HEADER_CHARS = 256;

export const httpSender: Sender = {
  async send({ url, init, secrets }, timeoutMs) {
    try {
      const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      const status = response.status;
      const retryAfter = response.headers.get("retry-after");
      if (response.ok) {
        // The body is not needed; release the connection.
        await response.body?.cancel().catch(() => {});
        return { kind: "response", status, retryAfter };
      }
      return { kind: "response", status, retryAfter, answer: await answerOf(response, secrets) };
    } catch (error) {
      if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
        return { kind: "timeout", timeoutMs };
      }
      // Runtime errors may quote the URL, which can itself be a secret. Their message alone: "Error: " adds nothing.
      const message = error instanceof Error ? error.message : describe(error);
      return { kind: "network", error: redact(message, secrets) };
    }
  },
};

/**
 * A failed attempt's answer as the ledger keeps it: the headers (at most ANSWER_HEADERS, each cut at 256
 * characters) and the body's first ANSWER_BODY_BYTES as text, read no further. A receiver may echo what it was sent,
 * so every secret the request carried is masked in both (src/delivery/request.ts redact).
 */
async function answerOf(response: Response, secrets: PreparedRequest["secrets"]): Promise<ReceiverAnswer> {
  const headers = [...response.headers]
    .slice(0, ANSWER_HEADERS)
    .map(([name, value]) => [name, redact(value, secrets).slice(0, ANSWER_HEADER_CHARS)] as [string, string]);
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  const reader = response.body?.getReader();
  try {
    while (reader !== undefined && bytes < ANSWER_BODY_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value.subarray(0, ANSWER_BODY_BYTES - bytes));
      bytes += Math.min(value.byteLength, ANSWER_BODY_BYTES - bytes);
    }
  } catch {
    // What arrived before the body broke off is kept.
  } finally {
    await reader?.cancel().catch(() => {});
  }
  const body = new Uint8Array(bytes);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  // A multi-byte character cut at the end becomes one replacement character.
  return { headers, body: redact(new TextDecoder().decode(body), secrets) };
}
