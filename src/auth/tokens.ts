import { secretValue } from "../secrets.ts";
import type { Role } from "./actor.ts";

/**
 * The two bearer tokens (docs/console.md, "Who may do what"): ADMIN_TOKEN (actor `admin-token`, operator) and
 * the optional VIEWER_TOKEN (actor `viewer-token`, viewer), for the admin API and the console's sign-in form.
 */

/** Shorter tokens are refused: the admin API and the console answer 503 `misconfigured` until they are longer. */
export const MIN_TOKEN_LENGTH = 32;

export const TOKENS = [
  { secret: "ADMIN_TOKEN", actor: "admin-token", role: "operator" },
  { secret: "VIEWER_TOKEN", actor: "viewer-token", role: "viewer" },
] as const satisfies readonly { secret: string; actor: string; role: Role }[];

export type TokenSecret = (typeof TOKENS)[number]["secret"];

/** The tokens that are set, each with its actor and role. */
export function tokensOf(env: object) {
  return TOKENS.flatMap((t) => {
    const value = secretValue(env, t.secret);
    return value === undefined ? [] : [{ ...t, value }];
  });
}

/** A sentence for each token that is set but too short (never its value or length), empty when all are fine. */
export function weakTokens(env: object): string[] {
  return tokensOf(env)
    .filter((t) => t.value.length < MIN_TOKEN_LENGTH)
    .map(
      (t) => `${t.secret} is shorter than ${MIN_TOKEN_LENGTH} characters; put a long random one (openssl rand -hex 32)`,
    );
}

const encoder = new TextEncoder();
const digest = (value: string) => crypto.subtle.digest("SHA-256", encoder.encode(value));

/**
 * The token `given` matches, or undefined. Every set token is compared, each in constant time on SHA-256
 * digests (equal lengths), so neither which token nor how much of one matched shows in the time taken.
 */
export async function matchToken(env: object, given: string) {
  const tokens = tokensOf(env);
  const mine = await digest(given);
  let found: (typeof tokens)[number] | undefined;
  for (const token of tokens) {
    if (crypto.subtle.timingSafeEqual(mine, await digest(token.value))) found ??= token;
  }
  return found;
}

/** A token's fingerprint, kept with the sessions made with it: when the token changes, they end. */
export async function tokenFingerprint(value: string): Promise<string> {
  const bytes = new Uint8Array(await digest(`extend-relay session token ${value}`));
  return [...bytes.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
