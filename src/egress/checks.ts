/**
 * Start-up checks for the egress options: each problem is a UsageError
 * (exit 2) naming what is wrong, before the program runs, so no traffic
 * goes out another way than asked.
 */
import dgram from 'node:dgram';
import { readdirSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { Egress } from './model.js';
import { AF_INET, SocketCallError, closeFd, openTcpSocket } from './native-socket.js';
import { egressSocketOptions } from './options.js';

function interfaces(): string[] {
  try {
    return readdirSync('/sys/class/net').sort();
  } catch {
    return [];
  }
}

function checkInterface(name: string): void {
  const have = interfaces();
  if (!have.includes(name)) {
    throw new UsageError(`--interface ${name}: no such network interface (interfaces here: ${have.join(', ') || 'none found'})`);
  }
}

function checkMark(egress: Egress): void {
  let fd: number | undefined;
  try {
    fd = openTcpSocket(AF_INET, egressSocketOptions({ ...(egress.mark !== undefined ? { mark: egress.mark } : {}) }));
  } catch (err) {
    if (err instanceof SocketCallError && (err.code === 'EPERM' || err.code === 'EACCES')) {
      throw new UsageError(
        '--mark needs the CAP_NET_ADMIN capability (setting SO_MARK is privileged; CAP_NET_RAW also does on Linux 5.17+). ' +
          "Run graft as root, or grant the capability to node and to graft's tracer, e.g. " +
          '`sudo setcap cap_net_admin+ep "$(readlink -f "$(command -v node)")" build/graft-tracer`',
      );
    }
    throw new UsageError(`--mark: cannot set SO_MARK: ${(err as Error).message}`);
  } finally {
    if (fd !== undefined) closeFd(fd);
  }
}

/** A bind to the address succeeds only for an address of this machine. */
async function checkSource(address: string, family: 4 | 6): Promise<void> {
  const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address, port: 0, exclusive: true }, resolve);
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    if (code === 'EADDRNOTAVAIL') throw new UsageError(`--source ${address}: not an address of this machine`);
    throw new UsageError(`--source ${address}: cannot bind to it (${code})`);
  } finally {
    try {
      socket.close();
    } catch {
      /* never bound */
    }
  }
}

export async function checkEgress(egress: Egress): Promise<void> {
  if (egress.interface !== undefined) checkInterface(egress.interface);
  if (egress.mark !== undefined) checkMark(egress);
  if (egress.source4 !== undefined) await checkSource(egress.source4, 4);
  if (egress.source6 !== undefined) await checkSource(egress.source6, 6);
}
