/**
 * Outbound sockets made with libc through koffi, because Node has no API to
 * set SO_MARK or SO_BINDTODEVICE (or to bind before connect) on a socket
 * it creates itself. The fd is handed to net.Socket, which connects it.
 */
import { createRequire } from 'node:module';
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
