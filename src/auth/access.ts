import { createRemoteJWKSet, customFetch, type JWTPayload, jwtVerify } from "jose";
import { RelayError } from "../errors.ts";
import { log } from "../log.ts";

/**
 * Cloudflare Access assertions (docs/console.md, "Cloudflare Access"): the `Cf-Access-Jwt-Assertion` header
 * Access adds to every request it lets through, verified with jose. RS256 only; the keys come from the team's
 * certs URL, cached, and fetched again for an unknown `kid` (at most once per cool-down, so made-up key ids
 * cannot turn into a flood of fetches); `iss` must be the team domain, `aud` must hold the application's AUD
 * tag, and `exp` / `nbf` hold within 60 s of skew. An assertion that is present but invalid is refused; it
 * never falls back to another way in.
 */

export const ASSERTION_HEADER = "Cf-Access-Jwt-Assertion";
export const CLOCK_SKEW_SECONDS = 60;

export interface AccessConfig {
  teamDomain: string;
  audience: string;
}

/** Who an assertion names: the email, or a service token's common name. */
export interface AccessIdentity {
  id: string;
  /** When Access issued it (seconds): its session. */
  issuedAt: number;
}

export interface KeyOptions {
  /** How long fetched keys are used before they are fetched again. */
  cacheMs?: number;
  /** The least time between two fetches, also for an unknown kid. */
  cooldownMs?: number;
}

const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

/** The team's key set, one per isolate and team domain (and options). */
function keysOf(teamDomain: string, options: KeyOptions) {
  const key = `${teamDomain} ${options.cacheMs ?? ""} ${options.cooldownMs ?? ""}`;
  let keys = keySets.get(key);
  if (keys === undefined) {
    keys = createRemoteJWKSet(new URL(`${teamDomain}/cdn-cgi/access/certs`), {
      cacheMaxAge: options.cacheMs ?? 10 * 60_000,
      cooldownDuration: options.cooldownMs ?? 30_000,
      timeoutDuration: 5000,
      // The global fetch at call time (tests replace it), not the one jose saw when it was loaded.
      [customFetch]: (url: string, init: RequestInit) => fetch(url, init),
    });
    keySets.set(key, keys);
  }
  return keys;
}

/** Forget the fetched keys (between tests). */
export function resetAccessKeys(): void {
  keySets.clear();
}

/**
 * The identity `assertion` proves, or RelayError `access_denied` (401) saying why (never the assertion), or
 * `access_unavailable` (503) when the keys cannot be fetched.
 */
export async function verifyAssertion(
  assertion: string,
  config: AccessConfig,
  { now = Date.now(), ...options }: KeyOptions & { now?: number } = {},
): Promise<AccessIdentity> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(assertion, keysOf(config.teamDomain, options), {
      algorithms: ["RS256"],
      issuer: config.teamDomain,
      audience: config.audience,
      clockTolerance: CLOCK_SKEW_SECONDS,
      currentDate: new Date(now),
      requiredClaims: ["exp", "iat"],
    }));
  } catch (error) {
    const code = (error as { code?: string }).code ?? "";
    if (code === "ERR_JWKS_TIMEOUT" || (code === "ERR_JOSE_GENERIC" && /JSON Web Key Set/.test(String(error)))) {
      log("error", "access_keys_unavailable", { teamDomain: config.teamDomain, error: code });
      throw new RelayError(
        "access_unavailable",
        "Cloudflare Access's signing keys could not be fetched, so the assertion cannot be checked; try again.",
      );
    }
    if (!/^ERR_J/.test(code)) throw error;
    throw denied(reasonOf(error as { code: string; claim?: string }));
  }
  const id = typeof payload.email === "string" && payload.email !== "" ? payload.email : payload.common_name;
  if (typeof id !== "string" || id === "") throw denied("it names no email and no service token");
  return { id, issuedAt: payload.iat ?? 0 };
}

function reasonOf(error: { code: string; claim?: string }): string {
  switch (error.code) {
    case "ERR_JWT_EXPIRED":
      return "it has expired";
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return error.claim === "nbf"
        ? "it is not valid yet"
        : error.claim === "aud"
          ? "it is for another Access application (aud)"
          : error.claim === "iss"
            ? "it is from another Access team (iss)"
            : `its ${error.claim ?? "claims"} claim does not hold`;
    case "ERR_JWKS_NO_MATCHING_KEY":
      return "it is signed with a key the team does not publish";
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return "it is not signed with RS256";
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return "its signature does not verify";
    default:
      return "it is not a signed JWT";
  }
}

function denied(reason: string): RelayError {
  log("warn", "access_denied", { reason });
  return new RelayError(
    "access_denied",
    `The Cloudflare Access assertion is refused: ${reason}. Sign in through Access again.`,
  );
}
