/**
 * A stand-in for Cloudflare Access on loopback: a certs endpoint (`/cdn-cgi/access/certs`) serving keys made
 * here, and assertions signed with them as Access signs its `Cf-Access-Jwt-Assertion`.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";

export const AUD = "e2e-access-aud-0123456789abcdef";

export interface FakeAccess {
  /** The team domain, as ACCESS_TEAM_DOMAIN: http://127.0.0.1:<port>. */
  teamDomain: string;
  /** How many times the certs were fetched. */
  fetches(): number;
  /** An assertion for `email`, valid for an hour. */
  assertion(email: string, claims?: Record<string, unknown>): Promise<string>;
  stop(): Promise<void>;
}

export async function startAccess(): Promise<FakeAccess> {
  const pair = await generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "e2e-key", alg: "RS256", use: "sig" };
  let fetches = 0;
  const server: Server = createServer((request, response) => {
    if (request.url === "/cdn-cgi/access/certs") {
      fetches++;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const teamDomain = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    teamDomain,
    fetches: () => fetches,
    assertion: (email, claims = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({
        email,
        type: "app",
        iss: teamDomain,
        aud: [AUD],
        iat: now,
        nbf: now,
        exp: now + 3600,
        ...claims,
      })
        .setProtectedHeader({ alg: "RS256", kid: "e2e-key" })
        .sign(pair.privateKey);
    },
    stop: () => new Promise<void>((done) => server.close(() => done())),
  };
}
