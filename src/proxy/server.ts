/**
 * graft's local proxy. The tracer hands it each redirected connect (a C
 * record) while the program's socket waits in SYN_SENT towards a black
 * hole, unanswered, as a socket does while a real destination has not
 * answered yet. The proxy dials the destination (directly or through
 * upstream proxies) and then ends the program's connect as the network
 * would have:
 * - accepted: it opens the connection to the program's socket itself, from
 *   the black hole's address (a simultaneous open, which the kernel
 *   completes like any handshake), so the program's connect succeeds only
 *   now, and relays the two;
 * - not accepted: it tells the tracer the errno (control fd), and the
 *   tracer fails the program's connect with it.
 * The tracer holds the program's socket until it has connected or failed
 * (native/handover.h). Nothing listens for the program: no other local
 * user can reach the relay.
 */
import net from 'node:net';
import { lookup } from 'node:dns/promises';
import type { Logger } from 'pino';
import type { RedirectRecord } from '../tracer/channel.js';
import type { ControlMessage } from '../tracer/messages.js';
import { relay, type RelayResult, type RelayToxics, type Relaying } from './relay.js';
import type { ScopedToxic } from '../chaos/parse.js';
import type { Random } from '../chaos/random.js';
import type { LiveToxic } from '../chaos/live.js';
import { destinationMatcher } from '../rules/table.js';
import { dialDirect } from '../egress/direct.js';
import { AF_INET, AF_INET6, SOCKET_LEVEL, bindTo, closeFd, connectLocal, connectState, openTcpSocket, type SocketOption } from '../egress/native-socket.js';
import { sourceFor } from '../egress/options.js';
import type { DialPlan, Routing } from '../routing.js';
import { UPSTREAM_ANSWER_LIMIT_MS, dialThroughChain, holdEarlyData } from '../upstream/chain.js';
import type { AtExit, ConnectionLog, Lost, ProxiedConnection } from '../records.js';
import { DialFailure, toDialFailure } from '../upstream/failure.js';
import { outOfDescriptors } from '../summary.js';
import {
  EXITED_WHILE_DIALING,
  NO_HANDSHAKE_SOCKET,
  dialFailed,
  handshakeEnded,
  openedConnection,
  proxiedConnection,
  unserved,
  type Failure,
} from './connection-record.js';
import type { Destination, Scopes } from '../control/scopes.js';

/**
 * After the program has exited, how long the bytes it sent may take to be
 * handed to the destination's socket before graft cuts the connection. Only
 * a destination that stopped reading (or an upstream toxic still holding
 * data) makes graft wait at all; otherwise it closes at once.
 */
const EXIT_FLUSH_LIMIT_MS = 1000;

/**
 * The handshake with the program's socket is refused while its task has
 * not run the connect it was resumed into (the proxy was faster): tried
 * again every 2 ms at first, then every 20 ms, until graft concludes the
 * program gave the connect up. On a loaded machine a resumed task may wait
 * well over 100 ms for a CPU (a run with 100 clients at load 12 once ran
 * out of a 100 ms window: ECONNABORTED for a connect that would have
 * succeeded), so the patience is seconds, not a count.
 */
const HANDSHAKE_RETRY_MS = 2;
const HANDSHAKE_RETRY_SLOW_MS = 20;
const HANDSHAKE_FAST_TRIES = 50;
const HANDSHAKE_PATIENCE_MS = 3000;
/** Event-loop turns a handshake over loopback may stay pending (it completes within connect() nearly always). */
const HANDSHAKE_PENDING_TURNS = 1000;

const SO_REUSEPORT = 15;
const REUSE_PORT: readonly SocketOption[] = [
  { name: 'SO_REUSEPORT', level: SOCKET_LEVEL.SOL_SOCKET, option: SO_REUSEPORT, value: Buffer.from(new Int32Array([1]).buffer) },
];

export interface ProxyOptions {
  readonly routing: Routing;
  /** data faults, and the randomness that decides which connection gets them */
  readonly toxics: readonly ScopedToxic[];
  readonly random: Random;
  /** graft's own limit on a dial (--connect-timeout); undefined: the network's (and the upstream's) own */
  readonly connectTimeoutMs: number | undefined;
  readonly logger: Logger;
  readonly connections: ConnectionLog;
  /** tells the tracer a handed-over connect failed, and its errno */
  readonly answer: (msg: ControlMessage) => void;
  /** graft's DNS server, when it answers the program's DNS: its TCP port takes the program's DNS over TCP */
  readonly dns?: { readonly tcpPort: number; readonly tcpMeantFor: (port: number, dst: { ip: string; port: number }) => void };
  /** the name graft answered `ip` for, if any (records show it); absent: graft answers no DNS */
  readonly nameOf?: (ip: string) => string | undefined;
  /** the control API's scopes, when it runs: they refuse, delay and put toxics on connections at any time */
  readonly scopes?: Scopes;
}

/**
 * The errno a connect graft cannot serve fails with (it is out of file
 * descriptors). The program's socket still waits in SYN_SENT when graft
 * finds out, so the failure reaches it as an asynchronous one: ECONNREFUSED
 * is what a non-blocking connect natively learns that way without delay,
 * every client handles it (and tries its next address), and no byte has
 * moved, so nothing is lost that a retry cannot redo. EADDRNOTAVAIL, the
 * kernel's own word for a local shortage, only ever comes from connect()
 * itself, never later through SO_ERROR.
 */
const UNSERVED_ERRNO = 'ECONNREFUSED';

/** How the dial of a handed-over connect ended. */
type DialOutcome =
  | { readonly ok: true; readonly socket: net.Socket; readonly takeEarly: () => Buffer[] }
  | { readonly ok: false; readonly errno: string; readonly failure: Failure };

/** A connect the tracer handed over, from its record until its own record is written. */
interface Handover {
  readonly record: RedirectRecord;
  /** the name the destination was answered for, if any */
  readonly name: string | undefined;
  /** the rule that decided: the record's, or for a fake address the rule for its name */
  rule: number;
  readonly started: number;
  /** connect faults the tracer applied (a delayed handshake), and the control API's, for the record */
  readonly connectFaults: string[];
  /** the control API's proxy it fell under when it was dialed */
  scope?: string | undefined;
  readonly upstream: Promise<DialOutcome>;
  /** set while the dial (or a fault's delay) is awaited, so the shutdown can end the wait */
  stopWaiting?: () => void;
  /** set once the relay runs, so the shutdown can wind it down */
  relaying?: Relaying;
  /** set when the program exited before this connection ended */
  atExit?: AtExit;
  recorded?: boolean;
}

export interface Proxy {
  /** The tracer handed over a connect (with the connect fault that delays its handshake, as written). */
  expect(record: RedirectRecord, fault?: string): void;
  readonly active: number;
  /**
   * The program has exited (and the tracer's channel is read to its end):
   * ends every connection and resolves once each has its record.
   */
  close(): Promise<void>;
}

/** A handover while its dial starts (before it has one). */
type Dialing = Omit<Handover, 'upstream'>;

/** How a relayed connection ended, for its record. */
interface Outcome extends RelayResult {
  /** the toxics it got, as written */
  readonly toxics?: readonly string[];
  /** graft could not serve it */
  readonly lost?: Lost;
}

/** A connection that failed before any byte moved. */
const failed = (f: Failure): Outcome => ({ bytesUp: 0, bytesDown: 0, ...f });

/** The errno name of a shortage of file descriptors behind a dial's error, if that is what it was. */
function shortageOf(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (outOfDescriptors(code)) return code;
    const named = /\b(EMFILE|ENFILE)\b/.exec(e.message);
    if (named) return named[1];
  }
  return undefined;
}

/** The record of one proxied connection. */
function connectionRecord(h: Handover, outcome: Outcome, routing: Routing): ProxiedConnection {
  return proxiedConnection(
    {
      ...h.record,
      name: h.name,
      scope: h.scope,
      rule: h.rule,
      faults: [...h.connectFaults, ...(outcome.toxics ?? [])],
      bytesUp: outcome.bytesUp,
      bytesDown: outcome.bytesDown,
      durationMs: Date.now() - h.started,
      error: outcome.error,
      atExit: h.atExit,
      lost: outcome.lost,
    },
    routing,
  );
}

/** Dials the destination (an address, or the name a fake address stands for: the far side resolves it) through an upstream proxy chain. */
function dialChain(
  plan: Extract<DialPlan, { kind: 'chain' }>,
  destination: { host: string; port: number },
  timeoutMs: number,
  track: (s: net.Socket) => void,
): Promise<net.Socket> {
  const localAddressFor = (ip: string): string | undefined | null => {
    const s = sourceFor(plan.egress, ip);
    return s.kind === 'any' ? undefined : s.kind === 'address' ? s.address : null;
  };
  return dialThroughChain({
    chain: plan.chain,
    destination,
    socketOptions: plan.socketOptions,
    localAddressFor,
    timeoutMs,
    track,
  });
}

/** The relay's toxics in each direction for these of the start-time toxics (`all`), keyed by their place there. */
function toxicStages(toxics: readonly ScopedToxic[], all: readonly ScopedToxic[]): RelayToxics {
  const side = (dir: 'upstream' | 'downstream'): LiveToxic[] =>
    toxics.filter((t) => t.direction === dir || t.direction === 'both').map((t) => ({ key: `cli:${all.indexOf(t)}`, spec: t.spec }));
  return { up: side('upstream'), down: side('downstream') };
}

/** Where a handshake with the program's socket comes from, and goes to. */
interface HandshakeEnds {
  readonly from: { readonly ip: string; readonly port: number };
  readonly to: { readonly ip: string; readonly port: number };
}

/**
 * A socket bound to the black hole's address, ready to open the handshake
 * (made while the destination is dialed: only the connect is left for
 * when it answers). Returns its fd, or the errno name of a failure.
 */
function handshakeSocket(ends: HandshakeEnds): number | string {
  let fd: number;
  try {
    fd = openTcpSocket(net.isIPv6(ends.to.ip) ? AF_INET6 : AF_INET, REUSE_PORT);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
  const bound = bindTo(fd, ends.from);
  if (bound === '') return fd;
  closeFd(fd);
  return bound;
}

/**
 * Opens the handshake with the program's socket from socket `fd`,
 * synchronously: over loopback it has usually completed before connect()
 * returns, which saves the program's connect an event-loop turn. Returns
 * the fd and whether the handshake is complete, or the errno name of a
 * failure (ECONNREFUSED: the program's socket is not waiting, or not yet),
 * the fd then closed.
 */
function startHandshake(fd: number, ends: HandshakeEnds): { readonly fd: number; readonly connected: boolean } | string {
  const state = connectLocal(fd, ends.to);
  if (state === 'connected' || state === 'pending') return { fd, connected: state === 'connected' };
  closeFd(fd);
  return state;
}

/** The handshake's socket as a net.Socket once connected (a moment's wait when still pending), or why it failed. */
async function connectedSocket(started: { readonly fd: number; readonly connected: boolean }): Promise<net.Socket | string> {
  const { fd } = started;
  if (!started.connected) {
    let state = connectState(fd);
    for (let turn = 0; state === 'pending' && turn < HANDSHAKE_PENDING_TURNS; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      state = connectState(fd);
    }
    if (state !== 'connected') {
      closeFd(fd);
      return state === 'pending' ? 'ETIMEDOUT' : state;
    }
  }
  const socket = new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
  socket.setNoDelay(true);
  return socket;
}

/** The loopback address of the black hole a program's socket of this family waits at. */
const blackHoleFor = (peerIp: string): string => (net.isIPv6(peerIp) ? '::1' : '127.0.0.1');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The source address the program bound its socket to, when it bound one
 * (a loopback address is graft's own bind, or the program's choice of a
 * destination only loopback reaches; neither is a source for the dial).
 */
function programSource(rec: RedirectRecord, dstIp: string): string | undefined {
  const ip = rec.peerIp;
  if (ip.startsWith('127.') || ip === '::1' || net.isIPv6(ip) !== net.isIPv6(dstIp)) return undefined;
  return ip;
}

/** A name's first address, from this machine's resolver (graft's own lookups are not the program's: nothing catches them). */
async function lookupName(name: string): Promise<string> {
  return (await lookup(name)).address;
}

export function startProxy(opts: ProxyOptions): Proxy {
  return new LocalProxy(opts);
}

class LocalProxy implements Proxy {
  /** every connect handed over that has no record yet */
  private readonly live = new Set<Handover>();
  /** called when the last live connection gets its record, while close() waits */
  private allRecorded: (() => void) | undefined;
  /** set by close(): the program has exited */
  private exiting = false;
  private closing: Promise<void> | undefined;
  /** every open socket, the program's and the upstream ones */
  private readonly sockets = new Set<net.Socket>();
  private readonly toxicMatchers: readonly { readonly toxic: ScopedToxic; readonly matches: (ip: string, port: number, name?: string) => boolean }[];

  constructor(private readonly opts: ProxyOptions) {
    this.toxicMatchers = opts.toxics.map((t) => ({ toxic: t, matches: destinationMatcher(t.match) }));
  }

  expect(record: RedirectRecord, fault?: string): void {
    const name = this.opts.nameOf?.(record.dstIp);
    const dialing: Dialing = { record, name, rule: record.rule, started: Date.now(), connectFaults: fault !== undefined ? [fault] : [] };
    // the dial may settle the rule (a fake address's name decides), so it gets the handover before it is whole
    const h: Handover = Object.assign(dialing, { upstream: this.dial(dialing) });
    this.live.add(h);
    void this.serve(h);
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
    for (const h of [...this.live]) {
      if (h.relaying) {
        h.atExit = 'open';
        h.relaying.windDown(EXIT_FLUSH_LIMIT_MS);
      } else {
        h.stopWaiting?.(); // still dialing: give up (see serve)
      }
    }
    if (this.live.size) await new Promise<void>((resolve) => (this.allRecorded = resolve));
    for (const s of this.sockets) s.destroy();
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
  }

  /** The dial's outcome, once a handshake delay fault's time has also come; 'exit' when the program exits first. */
  private awaitDial(h: Handover): Promise<DialOutcome | 'exit'> {
    let timer: NodeJS.Timeout | undefined;
    const delay = h.record.delayMs > 0 ? new Promise<void>((resolve) => (timer = setTimeout(resolve, h.record.delayMs))) : undefined;
    const ready = delay ? Promise.all([h.upstream, delay]).then(([o]) => o) : h.upstream;
    return new Promise<DialOutcome | 'exit'>((resolve) => {
      void ready.then(resolve);
      h.stopWaiting = () => resolve('exit');
      if (this.exiting) resolve('exit');
    }).finally(() => {
      delete h.stopWaiting;
      clearTimeout(timer);
    });
  }

  /** Ends the program's connect as the dial ended, then relays. */
  private async serve(h: Handover): Promise<void> {
    const id = h.record.id;
    // the black hole listens on the loopback address of the peer's family
    // (a program's socket bound to another address still reached it there)
    const ends = { from: { ip: blackHoleFor(h.record.peerIp), port: h.record.holePort }, to: { ip: h.record.peerIp, port: h.record.peerPort } };
    // the handshake's socket is made while the destination is dialed, but
    // after the dial's SYN has left: net.Socket connects on the next tick,
    // and ticks run before this continuation
    await Promise.resolve();
    const prepared = handshakeSocket(ends);
    const outcome = await this.awaitDial(h);
    if (outcome !== 'exit' && outcome.ok) return this.complete(h, outcome, ends, prepared);
    if (typeof prepared === 'number') closeFd(prepared);
    if (outcome === 'exit') {
      // the program is gone: nobody is left to relay the destination to
      dropUpstream(h);
      h.atExit = 'pending';
      this.finish(h, failed({ error: EXITED_WHILE_DIALING }));
      return;
    }
    this.opts.answer({ kind: 'refused', id, error: outcome.errno });
    this.finish(h, failed(outcome.failure));
  }

  /** The destination accepted: completes the program's connect, then relays. */
  private async complete(h: Handover, outcome: Extract<DialOutcome, { ok: true }>, ends: HandshakeEnds, prepared: number | string): Promise<void> {
    // the dialed connection will not be relayed: the program's connect, still waiting, fails with `errno`
    const refuse = (errno: string, why: Outcome): void => {
      outcome.socket.destroy();
      this.opts.answer({ kind: 'refused', id: h.record.id, error: errno });
      this.finish(h, why);
    };
    const disabled = this.opts.scopes?.disabledFor(destinationOf(h));
    if (disabled !== undefined) {
      if (typeof prepared === 'number') closeFd(prepared);
      h.connectFaults.push(`${disabled}: disabled`);
      return refuse('ECONNREFUSED', failed({ error: `refused by the control API: proxy ${disabled} was disabled while the connect was dialed` }));
    }
    const program = await this.openHandshake(ends, prepared);
    // the program's socket still waits: its connect fails, cleanly
    if (typeof program === 'string' && outOfDescriptors(program)) return refuse(UNSERVED_ERRNO, failed(unserved(program, NO_HANDSHAKE_SOCKET)));
    if (!(program instanceof net.Socket)) return refuse('ECONNABORTED', failed({ error: handshakeEnded(program) }));
    const toxics = this.toxicsFor(h.record, h.name);
    const own = toxics.length ? toxicStages(toxics, this.opts.toxics) : undefined;
    // under the control API, the scope's toxics join graft's own and follow its changes
    const tracked = this.opts.scopes?.track(destinationOf(h), own);
    const relaying = relay(program, outcome.socket, outcome.takeEarly(), tracked ? tracked.toxics() : own, this.opts.random);
    tracked?.attach(relaying);
    if (tracked) h.scope = tracked.scope();
    h.relaying = relaying;
    if (this.exiting) {
      h.atExit = 'open';
      relaying.windDown(EXIT_FLUSH_LIMIT_MS);
    }
    this.opened(h);
    const result = await relaying.done;
    const scoped = tracked?.release();
    if (scoped) h.scope = scoped.scope;
    this.finish(h, { ...result, toxics: [...toxics.map((t) => t.text), ...(scoped?.faults ?? [])] });
  }

  /** The record stream's opening of a relayed connection. */
  private opened(h: Handover): void {
    this.opts.connections.opened(openedConnection({ ...h.record, name: h.name, scope: h.scope }));
  }

  /**
   * Completes the program's connect: a socket bound to the black hole's
   * address (SO_REUSEPORT, like the black hole's listener) connects to the
   * program's socket, which waits in SYN_SENT for that address. Resolves
   * with the connection, or with why there is none.
   */
  private async openHandshake(ends: HandshakeEnds, prepared: number | string): Promise<net.Socket | string> {
    // made while the dial was under way, when descriptors may have been
    // short: the dial's end may have freed some
    let ready = typeof prepared === 'string' && outOfDescriptors(prepared) ? handshakeSocket(ends) : prepared;
    const since = Date.now();
    for (let attempt = 1; ; attempt++) {
      const result = typeof ready === 'number' ? startHandshake(ready, ends) : ready;
      if (typeof result !== 'string') {
        const outcome = await connectedSocket(result);
        if (outcome instanceof net.Socket) {
          this.track(outcome);
          outcome.on('error', () => {}); // reported through the relay
        }
        return outcome;
      }
      if (result !== 'ECONNREFUSED' || Date.now() - since >= HANDSHAKE_PATIENCE_MS || this.exiting) return result;
      await sleep(attempt < HANDSHAKE_FAST_TRIES ? HANDSHAKE_RETRY_MS : HANDSHAKE_RETRY_SLOW_MS);
      ready = handshakeSocket(ends);
    }
  }

  /**
   * The control API's scope may refuse the connect or delay it; then it is
   * dialed as its rule says.
   */
  private dial(h: Dialing): Promise<DialOutcome> {
    const admission = this.opts.scopes?.admit(destinationOf(h));
    if (admission?.scope !== undefined) h.scope = admission.scope;
    if (admission?.kind === 'refuse') {
      h.connectFaults.push(admission.fault);
      const refused = decided(admission.errno, `refused by the control API: ${admission.fault}`);
      return admission.delayMs > 0 ? sleep(admission.delayMs).then(() => refused) : Promise.resolve(refused);
    }
    h.connectFaults.push(...(admission?.faults ?? []));
    const dialing = this.dialByRule(h);
    return admission?.delayMs ? Promise.all([dialing, sleep(admission.delayMs)]).then(([outcome]) => outcome) : dialing;
  }

  /** Dials the record's destination as its rule says: through a chain, or directly; a fake address, as its name's rule says. */
  private dialByRule(h: Dialing): Promise<DialOutcome> {
    const rec = h.record;
    const plan = this.opts.routing.dialFor(rec.rule);
    switch (plan.kind) {
      case 'chain':
        return this.settle(dialChain(plan, { host: rec.dstIp, port: rec.dstPort }, this.opts.connectTimeoutMs ?? UPSTREAM_ANSWER_LIMIT_MS, this.trackDial));
      case 'direct':
        return this.dialDirectly(plan, rec.dstIp, rec);
      case 'dns':
        return this.dialDns(rec);
      case 'name':
        return this.dialName(h);
    }
  }

  /** A connect to a fake address: the rule for the name it stands for decides, and the name itself goes to the far side. */
  private dialName(h: Dialing): Promise<DialOutcome> {
    const rec = h.record;
    const name = h.name;
    if (name === undefined) {
      // graft cannot know where it leads: an immediate "no", never a connect to somewhere else
      return Promise.resolve(
        decided('ECONNREFUSED', `${rec.dstIp} is one of graft's fake addresses, but not one it gave out for a name (or its name has given its slot up since)`),
      );
    }
    const decision = this.opts.routing.decideByName(name, rec.dstPort);
    // the table ends with a rule for all: some rule decides every name
    if (!decision) throw new Error(`internal error: no rule decides ${name}`);
    h.rule = decision.index;
    const action = decision.rule.action;
    if (action.kind === 'refuse') return Promise.resolve(decided(action.errno, `refused by rule`));
    const plan = this.opts.routing.dialFor(decision.index);
    if (plan.kind === 'chain')
      return this.settle(dialChain(plan, { host: name, port: rec.dstPort }, this.opts.connectTimeoutMs ?? UPSTREAM_ANSWER_LIMIT_MS, this.trackDial));
    // a name that goes direct on this port: resolved here, as the program would have
    if (plan.kind !== 'direct') throw new Error(`internal error: a name's rule gave the plan '${plan.kind}'`);
    return lookupName(name).then(
      (ip) => this.dialDirectly(plan, ip, rec),
      // the program already holds an address for the name: as a host with no route to it
      (err: unknown) => decided('EHOSTUNREACH', `cannot resolve ${name} here: ${(err as NodeJS.ErrnoException).code ?? String(err)}`),
    );
  }

  /** The program's DNS over TCP: to graft's DNS server, which learns where it was meant to go. */
  private dialDns(rec: RedirectRecord): Promise<DialOutcome> {
    const dns = this.opts.dns;
    if (!dns) throw new Error("internal error: a DNS rule without graft's DNS server");
    return dialDirect({ ip: '127.0.0.1', port: dns.tcpPort }, [], undefined, this.trackDial).then(
      (socket) => {
        dns.tcpMeantFor(socket.localPort ?? 0, { ip: rec.dstIp, port: rec.dstPort });
        return this.dialed(socket);
      },
      (err: unknown): DialOutcome => refusedBy(toDialFailure(err), shortageOf(err)),
    );
  }

  private dialDirectly(plan: Extract<DialPlan, { kind: 'direct' }>, ip: string, rec: RedirectRecord): Promise<DialOutcome> {
    const timeoutMs = this.opts.connectTimeoutMs;
    const source = sourceFor(plan.egress, ip);
    if (source.kind === 'missing') {
      // Never from another address than asked: refuse this destination.
      return Promise.resolve(refusedBy(new DialFailure('ENETUNREACH', undefined, `no IPv${source.family} --source address for this destination`, 'family')));
    }
    // the rule's source (or interface) wins over the program's own bind;
    // otherwise the route picks the source the program's getsockname shows
    // (binding it, and the program's port, cost 10-15 % of connects/s:
    // docs/benchmarks.md)
    const bound = source.kind === 'address' || plan.egress.interface !== undefined ? undefined : programSource(rec, ip);
    const localAddress = source.kind === 'address' ? source.address : bound;
    const target = { ip, port: rec.dstPort, ...(localAddress !== undefined ? { localAddress } : {}) };
    return this.settle(dialDirect(target, plan.socketOptions, timeoutMs, this.trackDial));
  }

  /** A dial's end as an outcome. */
  private settle(dialing: Promise<net.Socket>): Promise<DialOutcome> {
    return dialing.then(
      (socket) => this.dialed(socket),
      (err: unknown): DialOutcome => refusedBy(toDialFailure(err), shortageOf(err)),
    );
  }

  /** A dial's socket, from before it connects: the shutdown ends dials still under way. */
  private readonly trackDial = (s: net.Socket): void => this.track(s);

  /** An upstream socket that connected: holding what arrives before the relay. */
  private dialed(socket: net.Socket): DialOutcome {
    socket.on('error', () => {}); // before the relay: seen there as a closed upstream
    return { ok: true, socket, takeEarly: holdEarlyData(socket) };
  }

  /** the toxics this connection gets: its destination matches, and the dice say so */
  private toxicsFor(rec: RedirectRecord, name: string | undefined): ScopedToxic[] {
    return this.toxicMatchers
      .filter((m) => m.matches(rec.dstIp, rec.dstPort, name) && (m.toxic.toxicity >= 1 || this.opts.random() < m.toxic.toxicity))
      .map((m) => m.toxic);
  }

  /** Writes the connection's one record. */
  private finish(h: Handover, outcome: Outcome): void {
    if (h.recorded) return;
    h.recorded = true;
    this.live.delete(h);
    this.opts.connections.record(connectionRecord(h, outcome, this.opts.routing));
    if (this.live.size === 0) this.allRecorded?.();
  }
}

/**
 * A dial that failed: the errno the program's connect fails with, and the
 * log's words (connection-record.ts, dialFailed). `shortage`: it failed
 * because graft is out of file descriptors (EMFILE, ENFILE).
 */
function refusedBy(f: DialFailure, shortage?: string): DialOutcome {
  return { ok: false, errno: shortage === undefined ? f.errno : UNSERVED_ERRNO, failure: dialFailed(f, shortage) };
}

/** Where a handed-over connect goes, as the control API's scopes match it. */
const destinationOf = (h: Dialing): Destination => ({ ip: h.record.dstIp, port: h.record.dstPort, ...(h.name !== undefined ? { name: h.name } : {}) });

/** A connect graft fails by its own decision, not a dial's answer. */
const decided = (errno: string, error: string): DialOutcome => ({ ok: false, errno, failure: { error } });

/** Closes the upstream connection dialed for a connection that will not be relayed. */
function dropUpstream(h: Handover): void {
  void h.upstream.then((o) => o.ok && o.socket.destroy());
}
