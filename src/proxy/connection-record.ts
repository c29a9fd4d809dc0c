/**
 * The record of a proxied connection, and the words of its error, made one
 * way whether graft's proxy relayed it or the tracer did (a relay rule's
 * connect: its R and O records), so both read alike.
 */
import { formatEndpoint } from '../address.js';
import type { AtExit, Lost, OpenedConnection, ProxiedConnection } from '../records.js';
import type { Routing } from '../routing.js';
import { descriptorShortage, outOfDescriptors } from '../summary.js';
import type { OpenedMessage, RelayedMessage, RelayEnd } from '../tracer/messages.js';
import { UPSTREAM_ANSWER_LIMIT_MS } from '../upstream/chain.js';
import { handshakeTimeout, socksHandshakeError, toDialFailure, type DialFailure, type FailedHop, type SocksEnd } from '../upstream/failure.js';
import { maskUrl, type UpstreamProxy } from '../upstream/url.js';

/** Who made a proxied connection, to where, and the program's end of it. */
export interface ConnectionEnds {
  readonly pid: number;
  readonly exe: string;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly peerIp: string;
  readonly peerPort: number;
  /** the name graft's DNS answered dstIp for */
  readonly name?: string | undefined;
  /** the control API's proxy (scope) it was in */
  readonly scope?: string | undefined;
}

/** What a proxied connection's record says. */
export interface ConnectionFacts extends ConnectionEnds {
  readonly tid: number;
  /** the rule that decided */
  readonly rule: number;
  /** connect faults and toxics, as written */
  readonly faults?: readonly string[] | undefined;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly durationMs: number;
  readonly error?: string | undefined;
  readonly atExit?: AtExit | undefined;
  readonly lost?: Lost | undefined;
}

/** The record stream's opening of a proxied connection. */
export function openedConnection(c: ConnectionEnds): OpenedConnection {
  return {
    event: 'open',
    action: 'proxy',
    pid: c.pid,
    exe: c.exe,
    dst: formatEndpoint(c.dstIp, c.dstPort),
    ...(c.name !== undefined ? { name: c.name } : {}),
    ...(c.scope !== undefined ? { proxy: c.scope } : {}),
    local: formatEndpoint(c.peerIp, c.peerPort),
  };
}

/** The one record of a proxied connection. */
export function proxiedConnection(c: ConnectionFacts, routing: Pick<Routing, 'logContext'>): ProxiedConnection {
  return {
    event: 'connection',
    pid: c.pid,
    tid: c.tid,
    exe: c.exe,
    dst: formatEndpoint(c.dstIp, c.dstPort),
    ...(c.name !== undefined ? { name: c.name } : {}),
    local: formatEndpoint(c.peerIp, c.peerPort),
    action: 'proxy',
    ...routing.logContext(c.rule),
    ...(c.faults?.length ? { faults: c.faults } : {}),
    ...(c.scope !== undefined ? { proxy: c.scope } : {}),
    bytesUp: c.bytesUp,
    bytesDown: c.bytesDown,
    durationMs: c.durationMs,
    ...(c.error !== undefined ? { error: c.error } : {}),
    ...(c.atExit !== undefined ? { atExit: c.atExit } : {}),
    ...(c.lost !== undefined ? { lost: c.lost } : {}),
  };
}

/** Why a proxied connection failed, for its record; `lost`: graft could not serve it. */
export interface Failure {
  readonly error: string;
  readonly lost?: Lost;
}

/** The program exited before its connect's destination answered. */
export const EXITED_WHILE_DIALING = 'the program exited while its destination was being dialed';

/** The program exited, and what it had sent could not be handed on in time. */
export const CUT_AT_EXIT = 'cut at exit with bytes still queued for the destination';

/** What graft lacked a descriptor for when the handshake with the program's socket failed with EMFILE or ENFILE. */
export const NO_HANDSHAKE_SOCKET = 'no socket for the handshake with the program';

/** The program's socket no longer waited when the handshake came (`why`: the errno name). */
export const handshakeEnded = (why: string): string => `the program's connect ended before the destination answered (${why})`;

/** One side of a relay failed (`what`: its errno name, or the error's message); the other was reset. */
export const sideFailed = (side: 'program' | 'upstream', what: string): string => `${side}: ${what}`;

/** A connection graft could not serve because it is out of file descriptors (`code`: EMFILE or ENFILE). */
export const unserved = (code: string, detail: string): Failure => ({ error: `${descriptorShortage(code)}: ${detail}`, lost: 'descriptors' });

/**
 * A dial that failed, in the log's words (URLs masked). `shortage`: it
 * failed because graft is out of file descriptors (EMFILE, ENFILE), which
 * is graft's loss, not the destination's answer.
 */
export function dialFailed(f: DialFailure, shortage?: string): Failure {
  return shortage === undefined ? { error: maskUrl(f.message) } : unserved(shortage, maskUrl(f.message));
}

/** A relay rule's SOCKS5 proxy, and what the words of its handshake's ends need. */
export interface RelayedSocks {
  /** the rule's one-hop chain's hop */
  readonly hop: UpstreamProxy;
  /** the chain's deadline: --connect-timeout, or UPSTREAM_ANSWER_LIMIT_MS */
  readonly timeoutMs: number;
}

/** The SOCKS5 handshake's end of an R record, as graft's proxy names it (upstream/failure.ts, HandshakeReason). */
function socksEnd(end: RelayEnd, socksCode: number | undefined): SocksEnd | 'timeout' | undefined {
  switch (end) {
    case 'socks-reply':
      // a reply code always comes with it: without one, nothing of the reply is known
      return socksCode !== undefined ? { kind: 'socks5', code: socksCode } : { kind: 'malformed' };
    case 'socks-auth':
      return { kind: 'auth' };
    case 'socks-malformed':
      return { kind: 'malformed' };
    case 'socks-closed':
      return { kind: 'closed' };
    case 'socks-timeout':
      return 'timeout';
    default:
      return undefined;
  }
}

/**
 * How a connect the tracer relayed ended (`errno`: the R record's error;
 * `socksCode`: its SOCKS5 reply code), as the proxy says it of its own.
 * `socks`: the rule's SOCKS5 proxy, for a rule that has one: a failed dial
 * is then the connect to it, and its handshake's ends read as a one-hop
 * chain's that failed alike in graft's proxy (upstream/chain.ts), made by
 * the same functions.
 */
export function relayFailure(end: RelayEnd, errno: string | undefined, socks?: RelayedSocks, socksCode?: number): Failure | undefined {
  const code = errno ?? 'unknown';
  // the hop of a one-hop chain, as dialThroughChain names it
  const hop: FailedHop | undefined = socks ? { index: 1, display: socks.hop.display, of: 1 } : undefined;
  const display = socks?.hop.display ?? 'socks5 proxy';
  const said = socksEnd(end, socksCode);
  if (said !== undefined) {
    const err = said === 'timeout' ? handshakeTimeout(display, socks?.timeoutMs ?? UPSTREAM_ANSWER_LIMIT_MS) : socksHandshakeError(display, 'socks5', said);
    return dialFailed(toDialFailure(err, hop));
  }
  switch (end) {
    case 'ok':
      return undefined;
    case 'dial':
      // what a dial of the proxy's that failed with this errno gets: to the
      // destination, or to the rule's SOCKS5 proxy
      return dialFailed(toDialFailure(Object.assign(new Error(code), { code }), hop), outOfDescriptors(code) ? code : undefined);
    case 'handshake':
      return outOfDescriptors(code) ? unserved(code, NO_HANDSHAKE_SOCKET) : { error: handshakeEnded(code) };
    case 'program':
    case 'upstream':
      return { error: sideFailed(end, code) };
    case 'exit-dialing':
      return { error: EXITED_WHILE_DIALING };
    case 'exit-cut':
      return { error: CUT_AT_EXIT };
    default:
      return undefined; // the SOCKS5 ends, above
  }
}

/** The opening of a connect the tracer relayed (its O record). */
export const tracerOpened = (rec: OpenedMessage, name: string | undefined): OpenedConnection => openedConnection({ ...rec, name });

/**
 * The record of a connect the tracer relayed (its R record); `name`: what
 * graft's DNS answered its destination for; `connectTimeoutMs`: graft's
 * --connect-timeout, if given (a SOCKS5 handshake's deadline).
 */
export function tracerRelayed(
  rec: RelayedMessage,
  name: string | undefined,
  routing: Pick<Routing, 'logContext' | 'relayedSocks'>,
  connectTimeoutMs: number | undefined,
): ProxiedConnection {
  const hop = routing.relayedSocks(rec.rule);
  // the deadline graft's proxy gives a chain (proxy/server.ts)
  const socks = hop ? { hop, timeoutMs: connectTimeoutMs ?? UPSTREAM_ANSWER_LIMIT_MS } : undefined;
  const failure = relayFailure(rec.end, rec.error, socks, rec.socksCode);
  const atExit: AtExit | undefined = rec.end === 'exit-dialing' ? 'pending' : rec.end === 'exit-cut' || rec.atExit ? 'open' : undefined;
  return proxiedConnection(
    {
      pid: rec.pid,
      tid: rec.tid,
      exe: rec.exe,
      dstIp: rec.dstIp,
      dstPort: rec.dstPort,
      peerIp: rec.peerIp,
      peerPort: rec.peerPort,
      name,
      rule: rec.rule,
      bytesUp: rec.bytesUp,
      bytesDown: rec.bytesDown,
      durationMs: rec.durationMs,
      error: failure?.error,
      lost: failure?.lost,
      atExit,
    },
    routing,
  );
}
