import type { Context } from "hono";
import { RelayError } from "../errors.ts";
import { readBody } from "../ingress/body.ts";
import { settingsOf, type Env } from "../settings.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/** An admin request's JSON body, within MAX_BODY_BYTES; 400 when it is not JSON. */
export async function jsonBody(c: Context<{ Bindings: Env }>): Promise<unknown> {
  const bytes = await readBody(c.req.raw, settingsOf(c.env).maxBodyBytes);
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch (error) {
    throw new RelayError(400, "invalid_json", `The body is not JSON: ${(error as Error).message}`);
  }
}
