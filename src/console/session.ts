/**
 * Small rules of the console's sign-in (the sessions themselves are src/auth/sessions.ts): where to go after
 * it, and comparing secrets of any length in constant time.
 */

/** Each wrong token is answered after this long. */
export const FAILURE_DELAY_MS = 1000;

const encoder = new TextEncoder();

/** Constant-time equality of two secrets of any length: both are hashed first. */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/**
 * Where to go after signing in: `next` when it is a console path on this origin, else the overview. Refuses
 * other hosts (`//evil`, `/\evil`), schemes and control characters.
 */
export function safeNext(next: string | undefined | null): string {
  if (next === undefined || next === null || next.length > 2000) return "/console";
  if (!/^\/console(?:[/?#]|$)/.test(next) || /[\\\x00-\x1f\x7f]/.test(next)) return "/console";
  const url = new URL(next, "https://console.invalid");
  if (url.origin !== "https://console.invalid" || !/^\/console(?:\/|$)/.test(url.pathname)) return "/console";
  return `${url.pathname}${url.search}`;
}
