/**
 * graft's local proxy: loopback listeners the tracer points connects at.
 * Each accepted connection is matched to the tracer's record by its peer
 * address, then dialed out and relayed. Unregistered peers are reset at once:
 * the proxy is no open relay for other local users.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import type { RedirectRecord } from '../channel.js';
import { formatEndpoint, normalizeIp } from '../address.js';
import { Registry } from './registry.js';
import { relay } from './relay.js';
import { dialDirect } from '../egress/direct.js';
import { describeEgress, egressSocketOptions, sourceFor } from '../egress/options.js';
import type { SocketOption } from '../egress/native-socket.js';
import type { Egress } from '../plan.js';
import type { ConnectionLog } from '../records.js';

export interface ProxyOptions {
  readonly egress: Egress;
  readonly connectTimeoutMs: number;
  readonly registrationWaitMs: number;
  readonly logger: Logger;
  readonly connections: ConnectionLog;
}

export interface Proxy {
  readonly port4: number;
  /** 0 when ::1 is not available here */
  readonly port6: number;
  readonly registry: Registry;
  readonly active: number;
  /** Stops listening; waits up to `graceMs` for open connections, then cuts them. */
  close(graceMs: number): Promise<void>;
}

function listen(host: string, onSocket: (s: net.Socket) => void): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, onSocket);
    server.once('error', (err: NodeJS.ErrnoException) => {
      // No IPv6 on this host (or in this namespace): run with IPv4 only.
      if (host === '::1' && ['EADDRNOTAVAIL', 'EAFNOSUPPORT', 'EINVAL'].includes(err.code ?? '')) resolve(undefined);
      else reject(err);
    });
    server.listen({ host, port: 0, backlog: 4096, ipv6Only: host === '::1' }, () => resolve(server));
  });
}

export async function startProxy(opts: ProxyOptions): Promise<Proxy> {
  const registry = new Registry();
  const sockets = new Set<net.Socket>();
  const log = opts.logger;
  const socketOptions: readonly SocketOption[] = egressSocketOptions(opts.egress);
  const egressText = describeEgress(opts.egress);
  let idle: (() => void) | undefined;

  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.once('close', () => {
      sockets.delete(s);
      if (sockets.size === 0) idle?.();
    });
  };

  const finish = (rec: RedirectRecord, local: string, started: number, r: { bytesUp: number; bytesDown: number; error?: string }): void => {
    opts.connections.record({
      event: 'connection',
      pid: rec.pid,
      tid: rec.tid,
      exe: rec.exe,
      dst: formatEndpoint(rec.dstIp, rec.dstPort),
      local,
      action: 'proxy',
      ...(egressText !== undefined ? { egress: egressText } : {}),
      bytesUp: r.bytesUp,
      bytesDown: r.bytesDown,
      durationMs: Date.now() - started,
      ...(r.error !== undefined ? { error: r.error } : {}),
    });
  };

  const onSocket = (program: net.Socket): void => {
    track(program);
    program.on('error', () => {}); // reported through the relay or ignored before it
    const started = Date.now();
    const peerIp = normalizeIp(program.remoteAddress ?? '');
    const peerPort = program.remotePort ?? 0;
    const local = formatEndpoint(peerIp, peerPort);
    void registry.claim(peerIp, peerPort, opts.registrationWaitMs).then(async (rec) => {
      if (!rec) {
        log.warn({ event: 'unregistered', peer: local }, 'connection from an unregistered peer closed');
        program.resetAndDestroy();
        return;
      }
      if (program.destroyed) {
        finish(rec, local, started, { bytesUp: 0, bytesDown: 0, error: 'program closed before the dial' });
        return;
      }
      const source = sourceFor(opts.egress, rec.dstIp);
      if (source.kind === 'missing') {
        // Never from another address than asked: refuse this destination.
        program.resetAndDestroy();
        finish(rec, local, started, { bytesUp: 0, bytesDown: 0, error: `no IPv${source.family} --source address for this destination` });
        return;
      }
      let upstream: net.Socket;
      try {
        const target = { ip: rec.dstIp, port: rec.dstPort, ...(source.kind === 'address' ? { localAddress: source.address } : {}) };
        upstream = await dialDirect(target, socketOptions, opts.connectTimeoutMs);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        program.resetAndDestroy();
        finish(rec, local, started, { bytesUp: 0, bytesDown: 0, error: `connect: ${e.code ?? e.message}` });
        return;
      }
      track(upstream);
      program.setNoDelay(true);
      program.resume();
      finish(rec, local, started, await relay(program, upstream));
    });
  };

  const v4 = await listen('127.0.0.1', onSocket);
  const v6 = await listen('::1', onSocket);
  const port = (s: net.Server | undefined): number => (s ? (s.address() as net.AddressInfo).port : 0);

  return {
    port4: port(v4),
    port6: port(v6),
    registry,
    get active() {
      return sockets.size;
    },
    async close(graceMs) {
      v4?.close();
      v6?.close();
      registry.close();
      if (sockets.size) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, graceMs);
          idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      for (const s of sockets) s.destroy();
    },
  };
}
