/**
 * Where the rules may send, decided by configuration that a rules author cannot edit (the vars SECRET_HOSTS
 * and DESTINATION_HOSTS; docs/rules.md, "Where secrets may go"). Whoever can write the rules could otherwise
 * point a destination at a server of their own with a header `{"secret": "SHOP_SECRET"}` and read the secret.
 * The same check refuses such rules when they are saved (422 by path) and such a request at delivery (a dead
 * letter naming the secret, never its value), for rules written straight into KV.
 */

export interface HostPolicy {
  /** Secret name → the host patterns it may be sent to. A secret that is not listed may be sent nowhere. */
  secretHosts: ReadonlyMap<string, readonly string[]>;
  /** The host patterns every destination and alert webhook must match; undefined: any host. */
  destinationHosts?: readonly string[] | undefined;
}

/** A host pattern: a hostname (`wms.example.com`, `127.0.0.1`) or `*.` and a domain (its subdomains). */
export const HOST_PATTERN =
  /^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Whether `host` (a URL's hostname) matches `pattern`; ports are not part of either. */
export function hostMatches(host: string, pattern: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  return pattern.startsWith("*.") ? name.endsWith(pattern.slice(1)) : name === pattern;
}

/**
 * Why a request to `host` may not go, carrying `secret` when given (a sentence naming the secret and the
 * vars, never a value), or undefined when it may.
 */
export function sendProblem(policy: HostPolicy, host: string, secret?: string): string | undefined {
  const allowed = policy.destinationHosts;
  if (allowed !== undefined && !allowed.some((pattern) => hostMatches(host, pattern))) {
    return `the host ${host} is not in DESTINATION_HOSTS (${allowed.join(", ")})`;
  }
  if (secret === undefined) return undefined;
  const hosts = policy.secretHosts.get(secret) ?? [];
  if (hosts.length === 0) return unboundProblem(secret);
  if (!hosts.some((pattern) => hostMatches(host, pattern))) {
    return `secret ${secret} may be sent only to ${hosts.join(", ")} (SECRET_HOSTS), not to ${host}`;
  }
  return undefined;
}

/** Why `secret` may be sent nowhere, or undefined when SECRET_HOSTS binds it to some host. */
export function unboundProblem(secret: string, policy?: HostPolicy): string | undefined {
  if (policy !== undefined && (policy.secretHosts.get(secret)?.length ?? 0) > 0) return undefined;
  return `secret ${secret} is bound to no host: the var SECRET_HOSTS must name the hosts it may be sent to`;
}
