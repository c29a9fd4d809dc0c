/**
 * graft's local proxy: loopback listeners the tracer points connects at.
 * The destination is dialed as soon as the tracer's record arrives, which is
 * before the program's connect reaches the listener, so the dial overlaps
 * the program's own connect. Each accepted connection is matched to its
 * record by peer address and relayed. Unregistered peers are reset at once:
 * the proxy is no open relay for other local users.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import type { LateHandshakeRecord, RedirectRecord } from '../channel.js';
import { formatEndpoint, normalizeIp } from '../address.js';
import { Registry } from './registry.js';
import { relay, type RelayControl } from './relay.js';
import type { ScopedToxic } from '../chaos/parse.js';
import type { Random } from '../chaos/random.js';
import { toxicStage } from '../chaos/toxics.js';
import { destinationMatcher } from '../rules/table.js';
import { dialDirect } from '../egress/direct.js';
import { SOCKET_LEVEL, type SocketOption } from '../egress/native-socket.js';
import { sourceFor } from '../egress/options.js';
import type { Routing } from '../routing.js';
import { dialThroughChain, holdEarlyData } from '../upstream/chain.js';
import { maskUrl } from '../upstream/url.js';
import type { ConnectionLog } from '../records.js';

const SO_REUSEPORT = 15;
const REUSE_PORT: readonly SocketOption[] = [
  { name: 'SO_REUSEPORT', level: SOCKET_LEVEL.SOL_SOCKET, option: SO_REUSEPORT, value: Buffer.from(new Int32Array([1]).buffer) },
];

export interface ProxyOptions {
  readonly routing: Routing;
  /** data faults, and the randomness that decides which connection gets them */
  readonly toxics: readonly ScopedToxic[];
  readonly random: Random;
  readonly connectTimeoutMs: number;
  readonly registrationWaitMs: number;
  readonly logger: Logger;
  readonly connections: ConnectionLog;
}

/** How the dial of an expected connection ended. */
type DialOutcome =
  | { readonly ok: true; readonly socket: net.Socket; readonly takeEarly: () => Buffer[] }
  | { readonly ok: false; readonly error: string };

interface ExpectedConnection {
  readonly record: RedirectRecord;
  readonly peerIp: string;
  readonly peerPort: number;
  readonly started: number;
  readonly upstream: Promise<DialOutcome>;
  /** connect faults the tracer applied (a delayed handshake), for the record */
  readonly connectFaults: readonly string[];
}

export interface Proxy {
  readonly port4: number;
  /** 0 when ::1 is not available here */
  readonly port6: number;
  /** The tracer redirected a connect: dial its destination now. */
  expect(record: RedirectRecord): void;
  /** The tracer holds a handshake for a delay fault (`fault`, as written): dial now, complete it later. */
  completeLater(record: LateHandshakeRecord, fault: string): void;
  /** The channel reader reports each chunk it read (see Registry). */
  noteChannelRead(bytes: number, readLimit: number): void;
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
    // As deep a backlog as the kernel allows (net.core.somaxconn caps it):
    // a burst of connects must wait in it, not see SYNs dropped.
    server.listen({ host, port: 0, backlog: 65535, ipv6Only: host === '::1' }, () => resolve(server));
  });
}

export async function startProxy(opts: ProxyOptions): Promise<Proxy> {
  const registry = new Registry<ExpectedConnection>((unclaimed) => {
    void unclaimed.upstream.then((o) => o.ok && o.socket.destroy());
  });
  const sockets = new Set<net.Socket>();
  const log = opts.logger;
  let idle: (() => void) | undefined;

  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.once('close', () => {
      sockets.delete(s);
      if (sockets.size === 0) idle?.();
    });
  };

  const toxicMatchers = opts.toxics.map((t) => ({ toxic: t, matches: destinationMatcher(t.match) }));
  /** the toxics this connection gets: its destination matches, and the dice say so */
  const faultsFor = (rec: RedirectRecord): ScopedToxic[] =>
    toxicMatchers.filter((m) => m.matches(rec.dstIp, rec.dstPort) && (m.toxic.toxicity >= 1 || opts.random() < m.toxic.toxicity)).map((m) => m.toxic);

  const finish = (expected: ExpectedConnection, r: { bytesUp: number; bytesDown: number; error?: string; toxics?: readonly string[] }): void => {
    const { record: rec, started } = expected;
    const local = formatEndpoint(expected.peerIp, expected.peerPort);
    const faults = [...expected.connectFaults, ...(r.toxics ?? [])];
    opts.connections.record({
      event: 'connection',
      pid: rec.pid,
      tid: rec.tid,
      exe: rec.exe,
      dst: formatEndpoint(rec.dstIp, rec.dstPort),
      local,
      action: 'proxy',
      ...opts.routing.logContext(rec.rule),
      ...(faults.length ? { faults } : {}),
      bytesUp: r.bytesUp,
      bytesDown: r.bytesDown,
      durationMs: Date.now() - started,
      ...(r.error !== undefined ? { error: r.error } : {}),
    });
  };

  const dial = (rec: RedirectRecord): Promise<DialOutcome> => {
    const plan = opts.routing.dialFor(rec.rule);
    const { socketOptions } = plan;
    const ok = (socket: net.Socket): DialOutcome => {
      track(socket);
      socket.on('error', () => {}); // before the relay: seen there as a closed upstream
      return { ok: true, socket, takeEarly: holdEarlyData(socket) };
    };
    if (plan.kind === 'chain') {
      const localAddressFor = (ip: string): string | undefined | null => {
        const s = sourceFor(plan.egress, ip);
        return s.kind === 'any' ? undefined : s.kind === 'address' ? s.address : null;
      };
      return dialThroughChain({
        chain: plan.chain,
        destination: { host: rec.dstIp, port: rec.dstPort },
        socketOptions,
        localAddressFor,
        timeoutMs: opts.connectTimeoutMs,
      }).then(ok, (err: Error): DialOutcome => ({ ok: false, error: maskUrl(err.message) }));
    }
    const source = sourceFor(plan.egress, rec.dstIp);
    if (source.kind === 'missing') {
      // Never from another address than asked: refuse this destination.
      return Promise.resolve({ ok: false, error: `no IPv${source.family} --source address for this destination` });
    }
    const target = { ip: rec.dstIp, port: rec.dstPort, ...(source.kind === 'address' ? { localAddress: source.address } : {}) };
    return dialDirect(target, socketOptions, opts.connectTimeoutMs).then(ok, (err: NodeJS.ErrnoException): DialOutcome => ({
      ok: false,
      error: `connect: ${err.code ?? err.message}`,
    }));
  };

  /** Relays the program's connection once its destination's dial ends. */
  const serve = async (program: net.Socket, expected: ExpectedConnection): Promise<void> => {
    const outcome = await expected.upstream;
    if (!outcome.ok) {
      program.resetAndDestroy();
      finish(expected, { bytesUp: 0, bytesDown: 0, error: outcome.error });
      return;
    }
    if (program.destroyed) {
      outcome.socket.destroy();
      finish(expected, { bytesUp: 0, bytesDown: 0, error: 'the program closed its connection before the relay began' });
      return;
    }
    program.setNoDelay(true);
    program.resume();
    const faults = faultsFor(expected.record);
    const stages = (control: RelayControl) => {
      const stage = (dir: 'upstream' | 'downstream') =>
        faults.filter((t) => t.direction === dir || t.direction === 'both').flatMap((t) => toxicStage(t.spec, opts.random, control) ?? []);
      return { up: stage('upstream'), down: stage('downstream') };
    };
    const result = await relay(program, outcome.socket, outcome.takeEarly(), faults.length ? stages : undefined);
    finish(expected, { ...result, toxics: faults.map((t) => t.text) });
  };

  const onSocket = (program: net.Socket): void => {
    track(program);
    program.on('error', () => {}); // reported through the relay or ignored before it
    const peerIp = normalizeIp(program.remoteAddress ?? '');
    const peerPort = program.remotePort ?? 0;
    void registry.claim(peerIp, peerPort, opts.registrationWaitMs).then((expected) => {
      if (expected) return serve(program, expected);
      log.warn({ event: 'unregistered', peer: formatEndpoint(peerIp, peerPort) }, 'connection from an unregistered peer closed');
      program.resetAndDestroy();
    });
  };

  /** Handshakes a delay fault holds in the black hole, by their timers. */
  const late = new Map<NodeJS.Timeout, ExpectedConnection>();
  const dropUpstream = (e: ExpectedConnection): void => void e.upstream.then((o) => o.ok && o.socket.destroy());

  /**
   * Ends a delayed handshake: a socket bound to the black hole's address
   * (SO_REUSEPORT, like the black hole's listener) connects to the
   * program's socket, which is waiting in SYN_SENT for that address. The
   * kernel completes the two as a simultaneous open, and the program's
   * connect succeeds exactly now.
   */
  const completeLater = (rec: LateHandshakeRecord, fault: string): void => {
    const record: RedirectRecord = { ...rec, kind: 'redirect' };
    const expected: ExpectedConnection = { record, peerIp: rec.peerIp, peerPort: rec.peerPort, started: Date.now(), upstream: dial(record), connectFaults: [fault] };
    const timer = setTimeout(() => {
      late.delete(timer);
      // the black hole listens on the loopback address of the peer's family
      // (a program's socket bound to another address still reached it there)
      const hole = net.isIPv6(rec.peerIp) ? '::1' : '127.0.0.1';
      const from = { ip: rec.peerIp, port: rec.peerPort, localAddress: hole, localPort: rec.holePort };
      dialDirect(from, REUSE_PORT, opts.connectTimeoutMs).then(
        (program) => {
          track(program);
          program.on('error', () => {});
          return serve(program, expected);
        },
        (err: NodeJS.ErrnoException) => {
          dropUpstream(expected);
          finish(expected, { bytesUp: 0, bytesDown: 0, error: `the program's connect ended before its delayed handshake (${err.code ?? err.message})` });
        },
      );
    }, rec.delayMs);
    late.set(timer, expected);
  };

  const v4 = await listen('127.0.0.1', onSocket);
  const v6 = await listen('::1', onSocket);
  const port = (s: net.Server | undefined): number => (s ? (s.address() as net.AddressInfo).port : 0);

  return {
    port4: port(v4),
    port6: port(v6),
    expect(record) {
      registry.register({ record, peerIp: record.peerIp, peerPort: record.peerPort, started: Date.now(), upstream: dial(record), connectFaults: [] });
    },
    completeLater,
    noteChannelRead(bytes, readLimit) {
      registry.noteChannelRead(bytes, readLimit);
    },
    get active() {
      return sockets.size;
    },
    async close(graceMs) {
      v4?.close();
      v6?.close();
      registry.close();
      for (const [timer, e] of late) {
        clearTimeout(timer);
        dropUpstream(e);
      }
      late.clear();
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
