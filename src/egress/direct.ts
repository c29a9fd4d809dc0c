/**
 * Dials a destination directly through a koffi-made socket, with a connect
 * timeout. Resolves with a connected net.Socket or rejects with the reason:
 * an Error whose `code` is the socket's errno (ETIMEDOUT for the timeout).
 * toDialFailure (upstream/failure.ts) turns it into the errno the program's
 * connect gets.
 */
import net from 'node:net';
import { AF_INET, AF_INET6, closeFd, openTcpSocket, type SocketOption } from './native-socket.js';

export interface DialTarget {
  readonly ip: string;
  readonly port: number;
  /** bind to this local address before connecting */
  readonly localAddress?: string;
  /** and to this port (0 or absent: any) */
  readonly localPort?: number;
}

export class DialTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`connect timed out after ${ms} ms`);
  }
}

/**
 * A socket made with libc, so the options are set before it connects.
 * Without options Node makes the socket itself as it connects: wrapping an
 * fd costs five system calls more (Node asks the fd what it is), and a
 * koffi socket() two calls through the FFI, on every proxied connection.
 */
function wrappedSocket(target: DialTarget, options: readonly SocketOption[]): net.Socket {
  const fd = openTcpSocket(net.isIPv6(target.ip) ? AF_INET6 : AF_INET, options);
  try {
    return new net.Socket({ fd, allowHalfOpen: true, readable: true, writable: true });
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}

/**
 * Async, so a failure to open or wrap the socket rejects like a failed
 * connect. timeoutMs undefined: the kernel's own SYN retries decide.
 * `track` sees the socket before it connects (its owner may destroy it,
 * and the promise then never settles).
 */
export async function dialDirect(
  target: DialTarget,
  options: readonly SocketOption[],
  timeoutMs: number | undefined,
  track?: (s: net.Socket) => void,
): Promise<net.Socket> {
  const socket = options.length ? wrappedSocket(target, options) : new net.Socket({ allowHalfOpen: true });
  track?.(socket);
  return new Promise((resolve, reject) => {
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            socket.destroy();
            reject(new DialTimeoutError(timeoutMs));
          }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
    // Connect in the same tick the fd was wrapped: a wrapped fd left
    // unconnected is read at once and the socket dies with ENOTCONN.
    const where = {
      host: target.ip,
      port: target.port,
      ...(target.localAddress !== undefined ? { localAddress: target.localAddress } : {}),
      ...(target.localPort ? { localPort: target.localPort } : {}),
    };
    socket.connect(where, () => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
