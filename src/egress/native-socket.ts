/**
 * Outbound sockets made with libc through koffi, because Node has no API to
 * set SO_MARK or SO_BINDTODEVICE (or to bind before connect) on a socket
 * it creates itself. The fd is handed to net.Socket, which connects it.
 */
import { createRequire } from 'node:module';
import net from 'node:net';
import { constants as osConstants } from 'node:os';

type Koffi = typeof import('koffi');

/** libc through koffi, bound on the first dial: loading koffi costs start-up time a run may not need. */
const libc = (() => {
  let bound:
    | {
        koffi: Koffi;
        socket: (...a: unknown[]) => unknown;
        close: (...a: unknown[]) => unknown;
        setsockopt: (...a: unknown[]) => unknown;
        getsockopt: (...a: unknown[]) => unknown;
        bind: (...a: unknown[]) => unknown;
        connect: (...a: unknown[]) => unknown;
        getpeername: (...a: unknown[]) => unknown;
        inetPton: (...a: unknown[]) => unknown;
        getsockname: (...a: unknown[]) => unknown;
      }
    | undefined;
  return () => {
    if (!bound) {
      const koffi = createRequire(import.meta.url)('koffi') as Koffi;
      const lib = koffi.load('libc.so.6');
      bound = {
        koffi,
        socket: lib.func('int socket(int domain, int type, int protocol)'),
        close: lib.func('int close(int fd)'),
        setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
        getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, _Inout_ uint32_t *len)'),
        bind: lib.func('int bind(int fd, const void *addr, uint32_t len)'),
        connect: lib.func('int connect(int fd, const void *addr, uint32_t len)'),
        getpeername: lib.func('int getpeername(int fd, void *addr, _Inout_ uint32_t *len)'),
        inetPton: lib.func('int inet_pton(int af, const char *src, void *dst)'),
        getsockname: lib.func('int getsockname(int fd, void *addr, _Inout_ uint32_t *len)'),
      };
    }
    return bound;
  };
})();

export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;

const errnoNames = new Map<number, string>(Object.entries(osConstants.errno).map(([name, num]) => [num, name]));

/** A libc call failed: carries the errno name like Node's own errors. */
export class SocketCallError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    const code = errnoNames.get(errno) ?? `errno ${errno}`;
    super(`${call}: ${code}`);
    this.code = code;
  }
  readonly code: string;
}

/** Socket options applied before connect; empty until egress options exist. */
export interface SocketOption {
  readonly name: string;
  readonly level: number;
  readonly option: number;
  readonly value: Buffer;
}

/** Opens a non-blocking TCP socket and applies `options`; returns the fd. */
export function openTcpSocket(family: typeof AF_INET | typeof AF_INET6, options: readonly SocketOption[]): number {
  const c = libc();
  const fd = c.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) as number;
  if (fd < 0) throw new SocketCallError('socket', c.koffi.errno());
  for (const o of options) {
    if ((c.setsockopt(fd, o.level, o.option, o.value, o.value.length) as number) < 0) {
      const err = new SocketCallError(`setsockopt(${o.name})`, c.koffi.errno());
      c.close(fd);
      throw err;
    }
  }
  return fd;
}

export function closeFd(fd: number): void {
  libc().close(fd);
}

const SO_ERROR = 4;
const EINPROGRESS = osConstants.errno.EINPROGRESS;

/** Address bytes by text: a run connects to the same few loopback addresses over and over. */
const addressBytes = new Map<string, Buffer>();
const ADDRESS_CACHE_MAX = 256;

/** The bytes of an IPv4 or IPv6 address (libc's inet_pton reads it). */
function addressOf(ip: string, v6: boolean): Buffer {
  let bytes = addressBytes.get(ip);
  if (!bytes) {
    bytes = Buffer.alloc(v6 ? 16 : 4);
    if ((libc().inetPton(v6 ? AF_INET6 : AF_INET, ip, bytes) as number) !== 1) throw new Error(`not an IP address: ${ip}`);
    if (addressBytes.size >= ADDRESS_CACHE_MAX) addressBytes.clear();
    addressBytes.set(ip, bytes);
  }
  return bytes;
}

/**
 * struct sockaddr_in or sockaddr_in6 for an address and port, in one of two
 * buffers reused by every call: koffi passes it to libc synchronously, and
 * no caller keeps it past its own call (an allocation per bind and connect
 * less, on every proxied connection).
 */
const SOCKADDR4 = Buffer.alloc(16);
const SOCKADDR6 = Buffer.alloc(28);
function sockaddr(ip: string, port: number): Buffer {
  const v6 = net.isIPv6(ip);
  const a = v6 ? SOCKADDR6 : SOCKADDR4;
  a.fill(0);
  a.writeUInt16LE(v6 ? AF_INET6 : AF_INET, 0);
  a.writeUInt16BE(port, 2);
  addressOf(ip, v6).copy(a, v6 ? 8 : 4);
  return a;
}

/** Binds socket `fd` to `at`; returns '' or the errno name of a failure. */
export function bindTo(fd: number, at: { ip: string; port: number }): string {
  const c = libc();
  const local = sockaddr(at.ip, at.port);
  return (c.bind(fd, local, local.length) as number) < 0 ? errnoName(c.koffi.errno()) : '';
}

/** The port socket `fd` is bound to (sockaddr_in and sockaddr_in6 keep it at the same place), or -1. */
export function boundPort(fd: number): number {
  const a = Buffer.alloc(128);
  return (libc().getsockname(fd, a, [a.length]) as number) < 0 ? -1 : a.readUInt16BE(2);
}

/**
 * Connects socket `fd` (non-blocking) to `to` on this machine. Over
 * loopback the kernel has usually finished the handshake by the time
 * connect() returns, so the caller need not wait for the event loop's
 * next turn. Returns 'connected', 'pending' (still connecting), or the
 * errno name of a failure.
 */
export function connectLocal(fd: number, to: { ip: string; port: number }): string {
  const c = libc();
  const remote = sockaddr(to.ip, to.port);
  if ((c.connect(fd, remote, remote.length) as number) === 0) return 'connected';
  const errno = c.koffi.errno();
  if (errno !== EINPROGRESS) return errnoName(errno);
  return connectState(fd);
}

/** Buffers for connectState's calls (synchronous, see SOCKADDR4). */
const PEER = Buffer.alloc(128);
const PEER_LEN = [PEER.length];
const SO_ERROR_VALUE = Buffer.alloc(4);
const SO_ERROR_LEN = [4];

/** Where a connect started by connectLocal stands now (see there). */
export function connectState(fd: number): string {
  const c = libc();
  PEER_LEN[0] = PEER.length;
  if ((c.getpeername(fd, PEER, PEER_LEN) as number) === 0) return 'connected';
  SO_ERROR_LEN[0] = 4;
  if ((c.getsockopt(fd, SOL_SOCKET, SO_ERROR, SO_ERROR_VALUE, SO_ERROR_LEN) as number) < 0) return errnoName(c.koffi.errno());
  const err = SO_ERROR_VALUE.readInt32LE(0);
  return err !== 0 ? errnoName(err) : 'pending';
}

const errnoName = (n: number): string => errnoNames.get(n) ?? `errno ${n}`;

/** struct tcp_info: eight one-byte fields, then u32 rto, ato, snd_mss, rcv_mss, unacked */
/**
 * Binds libc now: every proxied connection needs it (its handshake with
 * the program's socket takes SO_REUSEPORT), and the first one should not
 * wait the tens of milliseconds loading koffi takes.
 */
export function preloadNativeSockets(): void {
  libc();
}

export const SOCKET_LEVEL = { SOL_SOCKET } as const;
