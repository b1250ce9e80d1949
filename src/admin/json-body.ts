import type { Context } from "hono";
import { readBody } from "../ingress/body.ts";
import { parseJsonBody } from "../json.ts";
import { type Env, settingsOf } from "../settings.ts";

/** An admin request's JSON body, within MAX_BODY_BYTES and read as the front door reads the sender's. */
export async function jsonBody(c: Context<{ Bindings: Env }>): Promise<unknown> {
  return parseJsonBody(await readBody(c.req.raw, settingsOf(c.env).maxBodyBytes));
}
