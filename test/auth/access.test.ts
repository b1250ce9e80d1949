/**
 * The Cloudflare Access verifier with keys made here: a certs endpoint served through a mocked fetch, tokens
 * signed with jose. Everything Access says must hold, and nothing else may pass.
 */
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from "jose";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { resetAccessKeys, verifyAssertion } from "../../src/auth/access.ts";
import { RelayError } from "../../src/errors.ts";

const TEAM = "https://team.test.cloudflareaccess.com";
const AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";
const CONFIG = { teamDomain: TEAM, audience: AUD };
const NOW = Date.parse("2026-12-04T10:00:00Z");
const S = Math.floor(NOW / 1000);

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;
let current: KeyPair;
let next: KeyPair;
let published: JWK[];
let fetches: string[];

async function jwk(pair: KeyPair, kid: string): Promise<JWK> {
  return { ...(await exportJWK(pair.publicKey)), kid, alg: "RS256", use: "sig" };
}

beforeAll(async () => {
  [current, next] = await Promise.all([
    generateKeyPair("RS256", { extractable: true }),
    generateKeyPair("RS256", { extractable: true }),
  ]);
});

beforeEach(async () => {
  resetAccessKeys();
  published = [await jwk(current, "current")];
  fetches = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
    const url = String(input instanceof Request ? input.url : input);
    fetches.push(url);
    return Response.json({ keys: published, public_cert: { kid: "current", cert: "…" } });
  });
});
afterEach(() => vi.restoreAllMocks());

function token(claims: Record<string, unknown> = {}, { pair = current, kid = "current" } = {}) {
  const payload = {
    email: "ann@example.com",
    type: "app",
    iss: TEAM,
    aud: [AUD],
    iat: S - 60,
    nbf: S - 60,
    exp: S + 3600,
  };
  return new SignJWT({ ...payload, ...claims }).setProtectedHeader({ alg: "RS256", kid }).sign(pair.privateKey);
}

const verify = (assertion: string, options = {}) => verifyAssertion(assertion, CONFIG, { now: NOW, ...options });

async function refused(assertion: string | Promise<string>, reason: RegExp, options = {}) {
  const error = await verify(await assertion, options).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(RelayError);
  expect(error).toMatchObject({ code: "access_denied", status: 401 });
  expect((error as RelayError).message).toMatch(reason);
  expect((error as RelayError).message).not.toContain(await assertion);
}

describe("an Access assertion", () => {
  it("that is valid names its email, fetching the team's certs once and caching them", async () => {
    expect(await verify(await token())).toEqual({ id: "ann@example.com", issuedAt: S - 60 });
    expect(await verify(await token({ email: "bo@example.com" }))).toMatchObject({ id: "bo@example.com" });
    expect(fetches).toEqual([`${TEAM}/cdn-cgi/access/certs`]);
  });

  it("of a service token names its common_name", async () => {
    const service = await token({ email: undefined, common_name: "ci-client.access" });
    expect(await verify(service)).toMatchObject({ id: "ci-client.access" });
  });

  it("for another application (aud) is refused", async () => {
    await refused(
      new SignJWT({ email: "ann@example.com" })
        .setProtectedHeader({ alg: "RS256", kid: "current" })
        .setIssuer(TEAM)
        .setAudience(["another-application"])
        .setIssuedAt(S)
        .setExpirationTime(S + 3600)
        .sign(current.privateKey),
      /another Access application/,
    );
  });

  it("from another team (iss) is refused", async () => {
    await refused(
      new SignJWT({ email: "ann@example.com" })
        .setProtectedHeader({ alg: "RS256", kid: "current" })
        .setIssuer("https://other.cloudflareaccess.com")
        .setAudience([AUD])
        .setIssuedAt(S)
        .setExpirationTime(S + 3600)
        .sign(current.privateKey),
      /another Access team/,
    );
  });

  it("that expired more than 60 s ago is refused; within the skew it passes", async () => {
    await refused(token({ exp: S - 61 }), /expired/);
    expect(await verify(await token({ exp: S - 30 }))).toMatchObject({ id: "ann@example.com" });
  });

  it("that is not valid yet (nbf more than 60 s ahead) is refused; within the skew it passes", async () => {
    await refused(token({ nbf: S + 61 }), /not valid yet/);
    expect(await verify(await token({ nbf: S + 30 }))).toMatchObject({ id: "ann@example.com" });
  });

  it("signed with a key the cache does not know yet makes it fetch the certs again (a rotation)", async () => {
    expect(await verify(await token(), { cooldownMs: 0 })).toMatchObject({ id: "ann@example.com" });
    published = [await jwk(next, "next"), await jwk(current, "current")];
    expect(await verify(await token({}, { pair: next, kid: "next" }), { cooldownMs: 0 })).toMatchObject({
      id: "ann@example.com",
    });
    expect(fetches).toHaveLength(2);
  });

  it("signed with a key rotated out of the certs is refused, even after fetching them again", async () => {
    const old = await token();
    expect(await verify(old, { cooldownMs: 0 })).toMatchObject({ id: "ann@example.com" });
    resetAccessKeys();
    published = [await jwk(next, "current")];
    await refused(old, /signature does not verify|key the team does not publish/, { cooldownMs: 0 });
    published = [await jwk(next, "next")];
    resetAccessKeys();
    await refused(old, /key the team does not publish/, { cooldownMs: 0 });
  });

  it("with made-up key ids fetches the certs at most once per cool-down", async () => {
    await verify(await token());
    for (let i = 0; i < 5; i++) await refused(token({}, { kid: `made-up-${i}` }), /key the team does not publish/);
    expect(fetches).toHaveLength(1);
  });

  it("with alg none is refused", async () => {
    const unsecured = new UnsecuredJWT({ email: "ann@example.com" })
      .setIssuer(TEAM)
      .setAudience([AUD])
      .setIssuedAt(S)
      .setExpirationTime(S + 3600)
      .encode();
    await refused(unsecured, /not signed with RS256|not a signed JWT/);
  });

  it("signed HS256 with the public key as the secret (key confusion) is refused", async () => {
    const publicPem = new TextEncoder().encode(await exportSPKI(current.publicKey));
    const confused = await new SignJWT({ email: "ann@example.com" })
      .setProtectedHeader({ alg: "HS256", kid: "current" })
      .setIssuer(TEAM)
      .setAudience([AUD])
      .setIssuedAt(S)
      .setExpirationTime(S + 3600)
      .sign(publicPem);
    await refused(confused, /not signed with RS256/);
  });

  it("that names nobody, or is not a JWT at all, is refused", async () => {
    await refused(token({ email: undefined }), /names no email/);
    await refused("not.a.jwt", /not a signed JWT/);
  });

  it("cannot be checked when the certs cannot be fetched: 503 access_unavailable", async () => {
    vi.mocked(fetch).mockImplementation(async () => new Response("down", { status: 502 }));
    await expect(verify(await token())).rejects.toMatchObject({ code: "access_unavailable", status: 503 });
  });
});
