/** The system's DNS servers, from /etc/resolv.conf (the program's view of it). */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export function systemNameservers(path = '/etc/resolv.conf'): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1]?.replace(/%.*$/, ''))
    .filter((ip): ip is string => ip !== undefined && isIP(ip) !== 0);
}
