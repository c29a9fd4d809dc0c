/** Egress options as socket options for the proxy's outbound sockets. */
import net from 'node:net';
import type { Egress } from './model.js';
import { SOCKET_LEVEL, type SocketOption } from './native-socket.js';

const SO_MARK = 36;
const SO_BINDTODEVICE = 25;

export function egressSocketOptions(egress: Egress): SocketOption[] {
  const options: SocketOption[] = [];
  if (egress.mark !== undefined) {
    const value = Buffer.alloc(4);
    value.writeUInt32LE(egress.mark);
    options.push({ name: 'SO_MARK', level: SOCKET_LEVEL.SOL_SOCKET, option: SO_MARK, value });
  }
  if (egress.interface !== undefined) {
    options.push({ name: 'SO_BINDTODEVICE', level: SOCKET_LEVEL.SOL_SOCKET, option: SO_BINDTODEVICE, value: Buffer.from(`${egress.interface}\0`) });
  }
  return options;
}

/** The --source address for a destination, or undefined when none is set at all. */
export type SourceChoice = { kind: 'any' } | { kind: 'address'; address: string } | { kind: 'missing'; family: 4 | 6 };

export function sourceFor(egress: Egress, destinationIp: string): SourceChoice {
  if (egress.source4 === undefined && egress.source6 === undefined) return { kind: 'any' };
  const family = net.isIPv6(destinationIp) ? 6 : 4;
  const address = family === 4 ? egress.source4 : egress.source6;
  return address !== undefined ? { kind: 'address', address } : { kind: 'missing', family };
}

export function hasEgress(egress: Egress): boolean {
  return egress.mark !== undefined || egress.interface !== undefined || egress.source4 !== undefined || egress.source6 !== undefined;
}

/** "mark 0x10, dev wg0, src 192.0.2.1": for log records. */
export function describeEgress(egress: Egress): string | undefined {
  const parts: string[] = [];
  if (egress.mark !== undefined) parts.push(`mark 0x${egress.mark.toString(16)}`);
  if (egress.interface !== undefined) parts.push(`dev ${egress.interface}`);
  for (const src of [egress.source4, egress.source6]) if (src !== undefined) parts.push(`src ${src}`);
  return parts.length ? parts.join(', ') : undefined;
}
