/**
 * Dials a destination through a chain of upstream proxies: the first hop
 * over an egress socket (so its mark, interface and source apply to the
 * connection to the proxy), then one handshake per hop over the same
 * socket, each asking for the next hop (the last asks for the destination).
 * Fails closed: any error rejects, nothing is dialed directly instead. It
 * rejects only with a DialFailure (failure.ts): the errno the program's
 * connect gets, and the hop that failed.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { dialDirect } from '../egress/direct.js';
import type { SocketOption } from '../egress/native-socket.js';
import {
  DialFailure,
  handshakeTimeout,
  ProxyHandshakeError,
  REPLY_ERRNOS,
  socksHandshakeError,
  socksReplyReason,
  toDialFailure,
  type FailedHop,
} from './failure.js';
import { httpConnect } from './http-connect.js';
import type { UpstreamProxy } from './url.js';

/**
 * Without --connect-timeout, how long an upstream proxy may take to answer
 * its handshake. A direct dial has no limit of graft's: the kernel's SYN
 * retries end it, as they end the program's own socket (about 127 s with
 * the default net.ipv4.tcp_syn_retries of 6). An upstream that accepted
 * but never answers would hold the dial for ever: this ends it just after
 * the program's own socket would have given up.
 */
export const UPSTREAM_ANSWER_LIMIT_MS = 130_000;

export interface ChainDial {
  readonly chain: readonly UpstreamProxy[];
  readonly destination: { readonly host: string; readonly port: number };
  readonly socketOptions: readonly SocketOption[];
  /** source address for the connection to the first hop, by its family */
  readonly localAddressFor: (ip: string) => string | undefined | null;
  readonly timeoutMs: number;
  /** sees the socket to the first hop before it connects (see dialDirect) */
  readonly track?: (s: net.Socket) => void;
}

async function resolve(host: string, display: string, family?: 4): Promise<string> {
  if (net.isIP(host)) return host;
  try {
    const { address } = await lookup(host, family ? { family } : {});
    return address;
  } catch (err) {
    throw new ProxyHandshakeError(`${display}: cannot resolve '${host}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { kind: 'unresolvable' });
  }
}

async function handshake(socket: net.Socket, hop: UpstreamProxy, host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  if (hop.kind === 'http') {
    await httpConnect(socket, host, port, hop.auth, hop.display);
    return socket;
  }
  if (hop.kind === 'socks4') {
    // SOCKS4 proper takes an IPv4 address; resolving here is what SOCKS4 means.
    if (net.isIPv6(host)) throw new ProxyHandshakeError(`${hop.display}: SOCKS4 cannot reach the IPv6 address ${host}`, { kind: 'family' });
    host = await resolve(host, hop.display, 4);
  }
  // loaded on the first SOCKS hop (runs without one do not pay for it),
  // before the socket may flow again below
  const { SocksClient } = await import('socks');
  // A half-open socket (allowHalfOpen) never closes on the proxy's FIN
  // alone, and the socks package only watches for 'close': end it here.
  let closedEarly = false;
  const onEnd = (): void => {
    closedEarly = true;
    socket.destroy();
  };
  socket.once('end', onEnd);
  // The socks package rejects with a message alone; the proxy's reply code
  // is read from the bytes it sent (socksReplyReason).
  const replies: Buffer[] = [];
  const tap = (chunk: Buffer): void => void replies.push(chunk);
  socket.on('data', tap);
  // An HTTP hop before this one left the socket paused; the SOCKS client
  // attaches its reader in createConnection, before this resume takes effect.
  socket.resume();
  try {
    const { socket: tunneled } = await SocksClient.createConnection({
      proxy: {
        host: hop.host,
        port: hop.port,
        type: hop.kind === 'socks5' ? 5 : 4,
        ...(hop.auth ? { userId: hop.auth.user, ...(hop.kind === 'socks5' ? { password: hop.auth.password } : {}) } : {}),
      },
      destination: { host, port },
      command: 'connect',
      existing_socket: socket,
      // past the chain's own timer (dialThroughChain), which fires first and
      // is known for what it is, not by the socks package's message
      timeout: timeoutMs + 1000,
    });
    return tunneled;
  } catch (err) {
    if (err instanceof ProxyHandshakeError) throw err;
    const protocol = hop.kind === 'socks5' ? 'socks5' : 'socks4';
    const reason = socksReplyReason(protocol, Buffer.concat(replies)) ?? (closedEarly ? { kind: 'closed' as const } : socksUnanswered(err));
    // The socks package's timeout, should it ever fire before the chain's own
    // timer, or an error of its own with the socket still whole (bad
    // options): its message (which names no credentials) is all there is.
    if (reason.kind === 'timeout' || (!closedEarly && !socket.destroyed && reason.kind === 'closed')) {
      throw new ProxyHandshakeError(`${hop.display}: ${(err as Error).message}`, reason);
    }
    // graft's own words for each end, not the socks package's: the tracer's
    // relay, which knows only the end, writes the same (socksHandshakeError)
    throw socksHandshakeError(hop.display, protocol, reason);
  } finally {
    socket.off('end', onEnd);
    socket.off('data', tap);
  }
}

/**
 * A SOCKS handshake that failed with no failure reply in the proxy's bytes:
 * the connection closed or reset (the socks package gives the socket's error
 * message, or 'Socket closed'), or, should it ever fire before the chain's
 * own timer, the socks package's timeout (its exact message, the only sign).
 */
function socksUnanswered(err: unknown): { readonly kind: 'timeout' } | { readonly kind: 'closed' } {
  return (err as Error).message === 'Proxy connection timed out' ? { kind: 'timeout' } : { kind: 'closed' };
}

/**
 * Rejects only with a DialFailure: hop is the 1-based index of the hop whose
 * connect or handshake failed, and the message names it.
 */
export async function dialThroughChain(d: ChainDial): Promise<net.Socket> {
  const [first, ...rest] = d.chain;
  if (!first) throw new DialFailure(REPLY_ERRNOS['socket-other'].errno, undefined, 'empty proxy chain', 'socket-other');
  const hops = [first, ...rest];
  const at = (i: number): FailedHop => ({ index: i + 1, display: hops[i]!.display, of: hops.length });
  const deadline = Date.now() + d.timeoutMs;
  const left = (): number => Math.max(1, deadline - Date.now());
  let socket: net.Socket;
  try {
    const firstIp = await resolve(first.host, first.display);
    const local = d.localAddressFor(firstIp);
    if (local === null) throw new ProxyHandshakeError(`${first.display}: no --source address of this proxy's address family`, { kind: 'family' });
    socket = await dialDirect({ ip: firstIp, port: first.port, ...(local !== undefined ? { localAddress: local } : {}) }, d.socketOptions, left(), d.track);
  } catch (err) {
    throw toDialFailure(err, at(0));
  }
  let i = 0;
  try {
    for (; i < hops.length; i++) {
      const next = hops[i + 1];
      const target = next ? { host: next.host, port: next.port } : d.destination;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        socket.destroy();
      }, left());
      try {
        socket = await handshake(socket, hops[i]!, target.host, target.port, left());
      } catch (err) {
        if (timedOut) {
          throw handshakeTimeout(hops[i]!.display, d.timeoutMs);
        }
        throw err;
      } finally {
        clearTimeout(timer);
      }
    }
    return socket;
  } catch (err) {
    socket.destroy();
    throw toDialFailure(err, at(Math.min(i, hops.length - 1)));
  }
}

/**
 * Keeps every byte an upstream socket receives between its dial and the
 * relay: the socks package re-emits bytes that came with its last reply
 * and resumes the socket on its own (setImmediate), and an HTTP hop may
 * have put bytes back; either would be lost with no reader attached. The
 * relay takes the held bytes first. Past `limit` the socket is paused, so
 * a program that never connects costs at most that much.
 */
export function holdEarlyData(socket: net.Socket, limit = 256 * 1024): () => Buffer[] {
  const held: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer): void => {
    held.push(chunk);
    size += chunk.length;
    if (size >= limit) socket.pause();
  };
  socket.on('data', onData);
  socket.resume();
  return () => {
    socket.off('data', onData);
    socket.pause();
    return held;
  };
}
