/** Socket address helpers shared by the channel, the registry and the proxy. */
import { isIPv4 } from 'node:net';

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
