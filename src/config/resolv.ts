/** The system's resolver settings, from /etc/resolv.conf (the program's view of it). */
import { isIP } from 'node:net';
import { readCappedFile } from '../settings/files.js';
import { canonicalName } from '../dns/pattern.js';

export interface ResolvConf {
  /** the name servers' addresses, in order (a link-local zone dropped) */
  readonly nameservers: readonly string[];
  /** the search list (`search`, or `domain`): names a resolver tries a short name under first */
  readonly search: readonly string[];
}

export function readResolvConf(path = '/etc/resolv.conf'): ResolvConf {
  let text: string;
  try {
    // capped like every file graft reads; a resolver that cannot read it has no servers either
    text = readCappedFile(path, 1 << 20, 'resolv.conf');
  } catch {
    return { nameservers: [], search: [] };
  }
  const lines = text.split('\n');
  const nameservers = lines
    .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1]?.replace(/%.*$/, ''))
    .filter((ip): ip is string => ip !== undefined && isIP(ip) !== 0);
  // the last search or domain line wins, as in glibc
  const last = lines.filter((l) => /^\s*(search|domain)\s/.test(l)).pop();
  const search = (last?.trim().split(/\s+/).slice(1) ?? []).map((d) => canonicalName(d)).filter((d): d is string => d !== undefined);
  return { nameservers, search };
}
