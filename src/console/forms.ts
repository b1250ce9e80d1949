import type { Context } from "hono";
import { readBody } from "../json.ts";
import type { ConsoleEnv } from "./env.ts";

const decoder = new TextDecoder();

/**
 * The posted form (application/x-www-form-urlencoded, as every console form posts), read once within
 * MAX_BODY_BYTES (413 beyond). Any other body reads as an empty form, which no CSRF check passes.
 */
export async function formOf(c: Context<ConsoleEnv>): Promise<URLSearchParams> {
  const cached = c.get("form");
  if (cached !== undefined) return cached;
  const bytes = await readBody(c.req.raw, c.var.settings.MAX_BODY_BYTES);
  const type = c.req.header("content-type") ?? "";
  const form = /^application\/x-www-form-urlencoded\b/i.test(type)
    ? new URLSearchParams(decoder.decode(bytes))
    : new URLSearchParams();
  c.set("form", form);
  return form;
}

/** A field of the posted form, or undefined when it is absent or empty. */
export async function field(c: Context<ConsoleEnv>, name: string): Promise<string | undefined> {
  const value = (await formOf(c)).get(name);
  return value === null || value === "" ? undefined : value;
}
