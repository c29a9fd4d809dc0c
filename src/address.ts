/** Socket address helpers shared by the channel, the registry and the proxy. */
import { SocketAddress, isIP, isIPv4 } from 'node:net';

/**
 * 4 or 6 for an address graft accepts from the user, else 0. An IPv6 zone
 * (fe80::1%eth0) is not accepted: rules match an address on every link,
 * and a source address's link is chosen with an interface. ZONE_HINT says so.
 */
export function addressFamily(text: string): 0 | 4 | 6 {
  return text.includes('%') ? 0 : (isIP(text) as 0 | 4 | 6);
}

export const ZONE_HINT = 'an IPv6 zone (%IF) is not accepted: give the address alone (a rule matches it on every link; an interface setting chooses the link)';

/** Why `text` is not an address: names the zone when there is one. */
export function notAnAddress(text: string): string {
  return text.includes('%') && isIP(text) ? `'${text}': ${ZONE_HINT}` : `'${text}' is not an IPv4 or IPv6 address`;
}

/**
 * net.isIPv6, by inet_pton (net.SocketAddress) instead of Node's regular
 * expression: that one is compiled at its first use, which took ~10 ms of
 * every start-up for the fake address range alone (dns/fake.ts).
 */
export function isIPv6Text(text: string): boolean {
  try {
    new SocketAddress({ address: text, family: 'ipv6' });
    return true;
  } catch {
    return false;
  }
}

/** "::ffff:127.0.0.1" and "127.0.0.1" name the same peer: key both as IPv4. */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  if (lower.startsWith('::ffff:') && isIPv4(lower.slice(7))) return lower.slice(7);
  return lower;
}

/** "1.2.3.4:80" or "[2001:db8::1]:80". */
export function formatEndpoint(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
