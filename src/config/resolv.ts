/** The system's DNS servers, from /etc/resolv.conf (the program's view of it). */
import { isIP } from 'node:net';
import { readCappedFile } from '../settings/files.js';

export function systemNameservers(path = '/etc/resolv.conf'): string[] {
  let text: string;
  try {
    // capped like every file graft reads; a resolver that cannot read it has no servers either
    text = readCappedFile(path, 1 << 20, 'resolv.conf');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1]?.replace(/%.*$/, ''))
    .filter((ip): ip is string => ip !== undefined && isIP(ip) !== 0);
}
