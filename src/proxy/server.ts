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
import type { LateHandshakeRecord, RedirectRecord } from '../tracer/channel.js';
import { formatEndpoint, normalizeIp } from '../address.js';
import { Registry } from './registry.js';
import { relay, type RelayControl, type RelayFaults, type RelayResult, type Relaying } from './relay.js';
import type { ScopedToxic } from '../chaos/parse.js';
import type { Random } from '../chaos/random.js';
import { toxicStage } from '../chaos/toxics.js';
import { destinationMatcher } from '../rules/table.js';
import { dialDirect } from '../egress/direct.js';
import { SOCKET_LEVEL, acceptQueueLength, type SocketOption } from '../egress/native-socket.js';
import { sourceFor } from '../egress/options.js';
import type { DialPlan, Routing } from '../routing.js';
import { dialThroughChain, holdEarlyData } from '../upstream/chain.js';
import { maskUrl } from '../upstream/url.js';
import type { AtExit, ConnectionLog, ProxiedConnection } from '../records.js';

/**
 * After the program has exited, how long the bytes it sent may take to be
 * handed to the destination's socket before graft cuts the connection. Only
 * a destination that stopped reading (or an upstream toxic still holding
 * data) makes graft wait at all; otherwise it closes at once.
 */
const EXIT_FLUSH_LIMIT_MS = 1000;
/** Event-loop turns spent accepting connections still queued at exit. */
const EXIT_ACCEPT_TURNS = 50;

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
type DialOutcome = { readonly ok: true; readonly socket: net.Socket; readonly takeEarly: () => Buffer[] } | { readonly ok: false; readonly error: string };

interface ExpectedConnection {
  readonly record: RedirectRecord;
  readonly peerIp: string;
  readonly peerPort: number;
  readonly started: number;
  readonly upstream: Promise<DialOutcome>;
  /** connect faults the tracer applied (a delayed handshake), for the record */
  readonly connectFaults: readonly string[];
  /** set while the accepted connection waits for its dial, so the shutdown can end the wait */
  stopWaiting?: () => void;
  /** set once the relay runs, so the shutdown can wind it down */
  relaying?: Relaying;
  /** set when the program exited before this connection ended */
  atExit?: AtExit;
  recorded?: boolean;
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
  /**
   * The program has exited (and the tracer's channel is read to its end):
   * accepts what the program's connects left queued, stops listening, ends
   * every connection and resolves once each has its record.
   */
  close(): Promise<void>;
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

/** How a relayed connection ended, for its record. */
interface Outcome extends RelayResult {
  /** the toxics it got, as written */
  readonly toxics?: readonly string[];
}

/** A dial that failed before any byte moved. */
const failed = (error: string): Outcome => ({ bytesUp: 0, bytesDown: 0, error });

const NEVER_ACCEPTED = "the program's connection never reached the proxy";

/** The record of one proxied connection. */
function connectionRecord(expected: ExpectedConnection, outcome: Outcome, routing: Routing): ProxiedConnection {
  const { record: rec, started } = expected;
  const faults = [...expected.connectFaults, ...(outcome.toxics ?? [])];
  return {
    event: 'connection',
    pid: rec.pid,
    tid: rec.tid,
    exe: rec.exe,
    dst: formatEndpoint(rec.dstIp, rec.dstPort),
    local: formatEndpoint(expected.peerIp, expected.peerPort),
    action: 'proxy',
    ...routing.logContext(rec.rule),
    ...(faults.length ? { faults } : {}),
    bytesUp: outcome.bytesUp,
    bytesDown: outcome.bytesDown,
    durationMs: Date.now() - started,
    ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    ...(expected.atExit !== undefined ? { atExit: expected.atExit } : {}),
  };
}

/** Dials the destination through an upstream proxy chain. */
function dialChain(plan: Extract<DialPlan, { kind: 'chain' }>, rec: RedirectRecord, timeoutMs: number): Promise<net.Socket> {
  const localAddressFor = (ip: string): string | undefined | null => {
    const s = sourceFor(plan.egress, ip);
    return s.kind === 'any' ? undefined : s.kind === 'address' ? s.address : null;
  };
  return dialThroughChain({
    chain: plan.chain,
    destination: { host: rec.dstIp, port: rec.dstPort },
    socketOptions: plan.socketOptions,
    localAddressFor,
    timeoutMs,
  });
}

/** The relay's fault stages in each direction for these toxics. */
function toxicStages(toxics: readonly ScopedToxic[], random: Random): (control: RelayControl) => RelayFaults {
  return (control) => {
    const stage = (dir: 'upstream' | 'downstream') =>
      toxics.filter((t) => t.direction === dir || t.direction === 'both').flatMap((t) => toxicStage(t.spec, random, control) ?? []);
    return { up: stage('upstream'), down: stage('downstream') };
  };
}

/** The loopback address of the black hole that holds a delayed handshake of a peer of this family. */
const blackHoleFor = (peerIp: string): string => (net.isIPv6(peerIp) ? '::1' : '127.0.0.1');

const listeningPort = (s: net.Server | undefined): number => (s ? (s.address() as net.AddressInfo).port : 0);

export async function startProxy(opts: ProxyOptions): Promise<Proxy> {
  const proxy = new LocalProxy(opts);
  await proxy.listen();
  return proxy;
}

class LocalProxy implements Proxy {
  port4 = 0;
  port6 = 0;
  private readonly registry = new Registry<ExpectedConnection>((unclaimed) => this.unaccepted(unclaimed));
  /** every connection the tracer announced that has no record yet */
  private readonly live = new Set<ExpectedConnection>();
  /** called when the last live connection gets its record, while close() waits */
  private allRecorded: (() => void) | undefined;
  /** set by close(): the program has exited */
  private exiting = false;
  /** set once close() has ended the waits for dials: a later one ends at once */
  private dialsDropped = false;
  private closing: Promise<void> | undefined;
  /** every open socket, the program's and the upstream ones */
  private readonly sockets = new Set<net.Socket>();
  /** Handshakes a delay fault holds in the black hole, by their timers. */
  private readonly late = new Map<NodeJS.Timeout, ExpectedConnection>();
  private readonly toxicMatchers: readonly { readonly toxic: ScopedToxic; readonly matches: (ip: string, port: number) => boolean }[];
  private listeners: readonly (net.Server | undefined)[] = [];

  constructor(private readonly opts: ProxyOptions) {
    this.toxicMatchers = opts.toxics.map((t) => ({ toxic: t, matches: destinationMatcher(t.match) }));
  }

  async listen(): Promise<void> {
    const onSocket = (program: net.Socket): void => this.accept(program);
    const v4 = await listen('127.0.0.1', onSocket);
    const v6 = await listen('::1', onSocket);
    this.listeners = [v4, v6];
    this.port4 = listeningPort(v4);
    this.port6 = listeningPort(v6);
  }

  expect(record: RedirectRecord): void {
    this.registry.register(this.expecting(record, []));
  }

  /**
   * Ends a delayed handshake: a socket bound to the black hole's address
   * (SO_REUSEPORT, like the black hole's listener) connects to the
   * program's socket, which is waiting in SYN_SENT for that address. The
   * kernel completes the two as a simultaneous open, and the program's
   * connect succeeds exactly now.
   */
  completeLater(rec: LateHandshakeRecord, fault: string): void {
    const expected = this.expecting({ ...rec, kind: 'redirect' }, [fault]);
    const timer = setTimeout(() => {
      this.late.delete(timer);
      this.openHandshake(rec, expected);
    }, rec.delayMs);
    this.late.set(timer, expected);
  }

  noteChannelRead(bytes: number, readLimit: number): void {
    this.registry.noteChannelRead(bytes, readLimit);
  }

  get active(): number {
    return this.sockets.size;
  }

  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.exiting = true;
    await this.acceptQueued();
    for (const l of this.listeners) l?.close();
    // what is still registered never reached the proxy (see unaccepted)
    this.registry.close();
    for (const [timer, e] of this.late) {
      clearTimeout(timer);
      this.unaccepted(e);
    }
    this.late.clear();
    this.dialsDropped = true;
    for (const e of [...this.live]) {
      if (e.relaying) {
        e.atExit = 'open';
        e.relaying.windDown(EXIT_FLUSH_LIMIT_MS);
      } else {
        e.stopWaiting?.(); // still dialing: give up (see serve)
      }
    }
    if (this.live.size) await new Promise<void>((resolve) => (this.allRecorded = resolve));
    for (const s of this.sockets) s.destroy();
  }

  /**
   * A connect the program made before it exited may still wait in a
   * listener's accept queue: the tracer's exit can reach graft in the same
   * event-loop turn as the listener's readiness, before Node accepted it.
   * Closing the listener then would reset it unseen. So while registrations
   * are unclaimed, let the event loop accept until the queues are empty.
   */
  private async acceptQueued(): Promise<void> {
    for (let turn = 0; turn < EXIT_ACCEPT_TURNS && this.registry.pending > 0; turn++) {
      if (turn > 0 && !this.listeners.some((l) => l && queuedOn(l) !== 0)) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** A connection the tracer announced, its destination dialing from now on. */
  private expecting(record: RedirectRecord, connectFaults: readonly string[]): ExpectedConnection {
    const e: ExpectedConnection = { record, peerIp: record.peerIp, peerPort: record.peerPort, started: Date.now(), upstream: this.dial(record), connectFaults };
    this.live.add(e);
    return e;
  }

  /** A registration nobody claimed: the program's connect never reached the proxy (it exited, or closed the socket mid-connect). */
  private unaccepted(e: ExpectedConnection): void {
    dropUpstream(e);
    if (this.exiting) e.atExit = 'unaccepted';
    this.finish(e, failed(NEVER_ACCEPTED));
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  /** A program's socket: tracked, its errors left to the relay. */
  private adoptProgram(program: net.Socket): void {
    this.track(program);
    program.on('error', () => {}); // reported through the relay or ignored before it
  }

  /** A connection the listener accepted: relayed if the tracer announced it, else reset. */
  private accept(program: net.Socket): void {
    this.adoptProgram(program);
    const peerIp = normalizeIp(program.remoteAddress ?? '');
    const peerPort = program.remotePort ?? 0;
    void this.registry.claim(peerIp, peerPort, this.opts.registrationWaitMs).then((expected) => {
      if (expected) return this.serve(program, expected);
      this.opts.logger.warn({ event: 'unregistered', peer: formatEndpoint(peerIp, peerPort) }, 'connection from an unregistered peer closed');
      program.resetAndDestroy();
    });
  }

  /** Connects to the program's socket from the black hole's address, completing its delayed handshake. */
  private openHandshake(rec: LateHandshakeRecord, expected: ExpectedConnection): void {
    // the black hole listens on the loopback address of the peer's family
    // (a program's socket bound to another address still reached it there)
    const from = { ip: rec.peerIp, port: rec.peerPort, localAddress: blackHoleFor(rec.peerIp), localPort: rec.holePort };
    dialDirect(from, REUSE_PORT, this.opts.connectTimeoutMs).then(
      (program) => {
        this.adoptProgram(program);
        return this.serve(program, expected);
      },
      (err: NodeJS.ErrnoException) => {
        dropUpstream(expected);
        this.finish(expected, failed(`the program's connect ended before its delayed handshake (${err.code ?? err.message})`));
      },
    );
  }

  /** Dials the record's destination as its rule says: through a chain, or directly. */
  private dial(rec: RedirectRecord): Promise<DialOutcome> {
    const plan = this.opts.routing.dialFor(rec.rule);
    if (plan.kind === 'chain') {
      return dialChain(plan, rec, this.opts.connectTimeoutMs).then(
        (socket) => this.dialed(socket),
        (err: Error): DialOutcome => ({ ok: false, error: maskUrl(err.message) }),
      );
    }
    const source = sourceFor(plan.egress, rec.dstIp);
    if (source.kind === 'missing') {
      // Never from another address than asked: refuse this destination.
      return Promise.resolve({ ok: false, error: `no IPv${source.family} --source address for this destination` });
    }
    const target = { ip: rec.dstIp, port: rec.dstPort, ...(source.kind === 'address' ? { localAddress: source.address } : {}) };
    return dialDirect(target, plan.socketOptions, this.opts.connectTimeoutMs).then(
      (socket) => this.dialed(socket),
      (err: NodeJS.ErrnoException): DialOutcome => ({ ok: false, error: `connect: ${err.code ?? err.message}` }),
    );
  }

  /** An upstream socket that connected: tracked, and holding what arrives before the relay. */
  private dialed(socket: net.Socket): DialOutcome {
    this.track(socket);
    socket.on('error', () => {}); // before the relay: seen there as a closed upstream
    return { ok: true, socket, takeEarly: holdEarlyData(socket) };
  }

  /** Relays the program's connection once its destination's dial ends. */
  private async serve(program: net.Socket, expected: ExpectedConnection): Promise<void> {
    const outcome = await new Promise<DialOutcome | 'exit'>((resolve) => {
      void expected.upstream.then(resolve);
      expected.stopWaiting = () => resolve('exit');
      if (this.dialsDropped) resolve('exit');
    });
    delete expected.stopWaiting;
    if (outcome === 'exit') {
      // the program is gone: nobody is left to relay the destination to
      program.destroy();
      dropUpstream(expected);
      expected.atExit = 'pending';
      this.finish(expected, failed('the program exited while its destination was being dialed'));
      return;
    }
    if (!outcome.ok) {
      program.resetAndDestroy();
      this.finish(expected, failed(outcome.error));
      return;
    }
    if (program.destroyed) {
      outcome.socket.destroy();
      this.finish(expected, failed('the program closed its connection before the relay began'));
      return;
    }
    program.setNoDelay(true);
    program.resume();
    const toxics = this.toxicsFor(expected.record);
    const relaying = relay(program, outcome.socket, outcome.takeEarly(), toxics.length ? toxicStages(toxics, this.opts.random) : undefined);
    expected.relaying = relaying;
    if (this.exiting) {
      expected.atExit = 'open';
      relaying.windDown(EXIT_FLUSH_LIMIT_MS);
    }
    const result = await relaying.done;
    this.finish(expected, { ...result, toxics: toxics.map((t) => t.text) });
  }

  /** the toxics this connection gets: its destination matches, and the dice say so */
  private toxicsFor(rec: RedirectRecord): ScopedToxic[] {
    return this.toxicMatchers
      .filter((m) => m.matches(rec.dstIp, rec.dstPort) && (m.toxic.toxicity >= 1 || this.opts.random() < m.toxic.toxicity))
      .map((m) => m.toxic);
  }

  /** Writes the connection's one record. */
  private finish(expected: ExpectedConnection, outcome: Outcome): void {
    if (expected.recorded) return;
    expected.recorded = true;
    this.live.delete(expected);
    this.opts.connections.record(connectionRecord(expected, outcome, this.opts.routing));
    if (this.live.size === 0) this.allRecorded?.();
  }
}

/** The listener's accept queue length (-1 when unknown). */
function queuedOn(server: net.Server): number {
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? acceptQueueLength(fd) : -1;
}

/** Closes the upstream connection dialed for a connection that will not be relayed. */
function dropUpstream(e: ExpectedConnection): void {
  void e.upstream.then((o) => o.ok && o.socket.destroy());
}
