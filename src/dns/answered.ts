/**
 * The names graft answered real addresses for, by address: what records
 * and `-v` lines show beside an address the program connects to. Bounded:
 * the address answered least recently is forgotten first (a connect to it
 * then shows the address alone, as before graft answered names).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { BoundedMap } from './bounded.js';

/**
 * One text per address: IPv4 as is (v4-mapped unmapped), IPv6 compressed
 * as RFC 5952 says (the tracer writes inet_ntop's form; dns-packet may
 * compress another run of zeros).
 */
export function canonicalIp(ip: string): string {
  const lower = ip.toLowerCase();
  if (lower.startsWith('::ffff:') && isIPv4(lower.slice(7))) return lower.slice(7);
  return isIPv6(lower) ? new URL(`http://[${lower}]/`).hostname.slice(1, -1) : lower;
}

export const ANSWERED_MAX = 65536;

export class AnsweredNames {
  private readonly byAddress: BoundedMap<string, string>;

  constructor(max = ANSWERED_MAX) {
    this.byAddress = new BoundedMap(max);
  }

  remember(address: string, name: string): void {
    this.byAddress.set(canonicalIp(address), name);
  }

  nameOf(address: string): string | undefined {
    return this.byAddress.get(canonicalIp(address));
  }

  get size(): number {
    return this.byAddress.size;
  }
}
