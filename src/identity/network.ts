import { BlockList, isIP } from 'node:net';

/**
 * Addresses oidc-provider refuses to fetch from (its SSRF guard: loopback, private, link-local,
 * shared and other special-use ranges). A `jwks_uri` naming one can never be read unless
 * KEYWARD_ALLOW_PRIVATE_JWKS_URI lifts that guard, so it is refused when registered.
 */
const special = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['240.0.0.0', 4],
] as const) special.addSubnet(network, prefix, 'ipv4');
for (const [network, prefix] of [['::1', 128], ['::', 128], ['fc00::', 7], ['fe80::', 10], ['64:ff9b::', 96]] as const) {
  special.addSubnet(network, prefix, 'ipv6');
}

/** A literal private/loopback address or a `localhost` name; other names are resolved only when fetched. */
export function isPrivateHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const family = isIP(host);
  if (family === 4) return special.check(host, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host);
    return mapped ? special.check(mapped[1]!, 'ipv4') : special.check(host, 'ipv6');
  }
  return false;
}
