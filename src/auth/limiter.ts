import { DurableObject } from "cloudflare:workers";

/**
 * One limit on guessing credentials for the whole relay (docs/console.md, "Guessing a token"): a Durable
 * Object per client (an IPv4 address, or an IPv6 /64), shared by the admin API's bearers and the console's
 * sign-in. At most MAX_FAILURES failures in WINDOW_MS; then every attempt of that client is refused with 429
 * and Retry-After, the right token included, until the oldest failure leaves the window. A success does not
 * clear the count: a viewer's own token must not reset a count of guesses at the operator's.
 */

export const MAX_FAILURES = 10;
export const WINDOW_MS = 10 * 60_000;

export interface LimiterAnswer {
  /** Failures of this client in the window. */
  failures: number;
  /** 0 when it may try now; else the seconds until it may. */
  retryAfter: number;
  /** With `refuse`: true for the first refusal of this window (the one the activity log records). */
  firstRefusal?: boolean;
}

export class ClientLimiter extends DurableObject {
  private failures(now: number): number[] {
    return (this.ctx.storage.kv.get<number[]>("failures") ?? []).filter((at) => at > now - WINDOW_MS);
  }

  private answer(failures: number[], now: number): LimiterAnswer {
    const retryAfter =
      failures.length >= MAX_FAILURES
        ? Math.max(1, Math.ceil((failures[failures.length - MAX_FAILURES]! + WINDOW_MS - now) / 1000))
        : 0;
    return { failures: failures.length, retryAfter };
  }

  /** Whether the client may try now. */
  async check(now: number): Promise<LimiterAnswer> {
    return this.answer(this.failures(now), now);
  }

  /** Counts a failed attempt. */
  async fail(now: number): Promise<LimiterAnswer> {
    const failures = [...this.failures(now), now].slice(-MAX_FAILURES * 2);
    this.ctx.storage.kv.put("failures", failures);
    await this.ctx.storage.setAlarm(now + WINDOW_MS);
    return this.answer(failures, now);
  }

  /** A refused attempt (the client was limited): says whether it is the first refusal of the window. */
  async refuse(now: number): Promise<LimiterAnswer> {
    const failures = this.failures(now);
    const answer = this.answer(failures, now);
    const since = failures[failures.length - MAX_FAILURES] ?? now;
    const refusedAt = this.ctx.storage.kv.get<number>("refusedAt");
    const firstRefusal = refusedAt === undefined || refusedAt < since;
    if (firstRefusal) this.ctx.storage.kv.put("refusedAt", now);
    return { ...answer, firstRefusal };
  }

  /** Nothing of a client is kept past its window. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    if (this.failures(now).length === 0) this.ctx.storage.deleteAll();
    else await this.ctx.storage.setAlarm(now + WINDOW_MS);
  }
}

/**
 * The client an attempt is counted for: an IPv4 address as it is, an IPv6 address by its /64 (one subscriber
 * holds a whole /64), or undefined when CF-Connecting-IP is missing or not an address. Cloudflare sets the
 * header on every request from the internet, so a request without one did not come through it (a service
 * binding, a test): the relay then checks no credential at all rather than count it in a shared bucket.
 */
export function clientKey(address: string | undefined): string | undefined {
  const text = address?.trim() ?? "";
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text) && text.split(".").every((part) => Number(part) <= 255)) return text;
  const groups = ipv6Groups(text);
  if (groups === undefined) return undefined;
  return `${groups.slice(0, 4).join(":")}::/64`;
}

function ipv6Groups(text: string): string[] | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return undefined;
  // An IPv4-mapped tail (::ffff:192.0.2.1) is two groups.
  let body = text;
  const v4 = /(\d{1,3}(?:\.\d{1,3}){3})$/.exec(body);
  if (v4 !== null) {
    const parts = v4[1]!.split(".").map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    body = `${body.slice(0, -v4[1]!.length)}${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`;
  }
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const split = (half: string) => (half === "" ? [] : half.split(":"));
  const head = split(halves[0]!);
  const tail = halves.length === 2 ? split(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  if (!groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  return groups.map((g) => Number.parseInt(g, 16).toString(16));
}

/** The limiter of one client (binding LIMITER). */
export function limiterOf(env: { LIMITER: DurableObjectNamespace<ClientLimiter> }, key: string) {
  return env.LIMITER.get(env.LIMITER.idFromName(key));
}
