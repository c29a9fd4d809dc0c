/**
 * The control API on a socket: node:http around api.ts's handler. It reads
 * each body up to the cap, hands the request over and writes the answer;
 * all meaning is in the handler.
 */
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import type * as Http from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { connect, isIP } from 'node:net';
import { UsageError } from '../errors.js';
import { formatEndpoint } from '../address.js';
import { MAX_BODY_BYTES, tooLarge, type ApiHandler, type ApiResponse } from './api.js';

/** node:http, loaded when the control API first listens or is asked: most runs have no control API, and loading it costs start-up time. */
export const loadHttp = (): typeof Http => createRequire(import.meta.url)('node:http') as typeof Http;

export type ControlAddress = { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

/**
 * `--control` as written: `PORT` (loopback: a control API reachable from
 * the network is a decision the user makes by naming the address),
 * `HOST:PORT`, `[IPV6]:PORT`, or `unix:PATH`.
 */
export function parseControlAddress(text: string): ControlAddress {
  if (text.startsWith('unix:')) {
    if (text.length === 5) throw new UsageError(`'${text}' names no socket path`);
    return { kind: 'unix', path: text.slice(5) };
  }
  const m = /^(?:(\[[^\]]+\]|[^:[\]]+):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`'${text}' is not PORT, HOST:PORT or unix:PATH`);
  const host = m[1]?.replace(/^\[(.*)\]$/, '$1') ?? '127.0.0.1';
  if (m[1]?.startsWith('[') && isIP(host) !== 6) throw new UsageError(`'${text}': '${host}' is not an IPv6 address`);
  return { kind: 'tcp', host, port };
}

/** The address as `--control` writes it. */
export function formatControlAddress(address: ControlAddress): string {
  return address.kind === 'unix' ? `unix:${address.path}` : formatEndpoint(address.host, address.port);
}

export interface ControlServer {
  /** where it listens: `HOST:PORT` with the port bound, or `unix:PATH` */
  readonly address: string;
  /** stops listening, ends open connections, removes the socket file (libuv does, on close) */
  close(): Promise<void>;
}

/** Toxiproxy's read timeout: a client that stalls mid-request is let go. */
const REQUEST_TIMEOUT_MS = 15_000;

function send(res: ServerResponse, response: ApiResponse, close = false): void {
  res.writeHead(response.status, close ? { ...response.headers, connection: 'close' } : response.headers);
  if (!response.follow) {
    res.end(response.body);
    return;
  }
  res.write(response.body);
  // flushed at once: a follower reads each record as it happens
  res.flushHeaders();
  let stop = (): void => {};
  const write = (chunk: string): void => {
    if (res.writableEnded) return;
    // a follower that stopped reading: graft does not hold its records without bound
    if (res.writableLength > FOLLOW_BACKLOG_BYTES) {
      stop();
      res.end(`${JSON.stringify({ event: 'error', error: `the reader fell more than ${FOLLOW_BACKLOG_BYTES} bytes behind: the stream ends here` })}\n`);
      return;
    }
    res.write(chunk);
  };
  stop = response.follow(write, () => res.end());
  res.once('close', stop);
}

/** How far a follower of a stream may fall behind before graft ends its stream. */
const FOLLOW_BACKLOG_BYTES = 16 << 20;

/**
 * Reads the body up to MAX_BODY_BYTES. Past it (declared or sent), answers
 * 413 at once and closes the connection afterwards, rather than reading
 * the rest of a body nobody will use.
 */
function serve(handler: ApiHandler, req: IncomingMessage, res: ServerResponse): void {
  const tooBig = (): void => {
    send(res, tooLarge(), true);
    res.on('finish', () => req.socket.destroySoon());
  };
  if (Number(req.headers['content-length'] ?? 0) > MAX_BODY_BYTES) return tooBig();
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    else if (!res.headersSent) tooBig();
  });
  req.on('end', () => {
    if (res.headersSent) return;
    void handler(req.method ?? '', req.url ?? '/', req.headers, Buffer.concat(chunks)).then((response) => {
      if (!res.destroyed) send(res, response);
    });
  });
  req.on('error', () => req.socket.destroy());
}

/**
 * The socket is created with mode 0600: the umask is narrowed around the
 * bind (synchronous inside listen, so nothing else in this process creates
 * a file meanwhile), and the mode set again after in case of a platform
 * that binds later.
 */
function listenUnix(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => {
        server.off('error', reject);
        try {
          chmodSync(path, 0o600);
          resolve();
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    } finally {
      process.umask(umask);
    }
  });
}

/**
 * Whether `path` is a socket file nobody listens on: what a graft that
 * died without closing leaves behind. Anything else at the path (a live
 * socket, a regular file) is left for listen to report as in use.
 */
async function isStaleSocket(path: string): Promise<boolean> {
  try {
    if (!lstatSync(path).isSocket()) return false;
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function listenUnixReplacingStale(server: Server, path: string): Promise<void> {
  if (await isStaleSocket(path)) unlinkSync(path);
  await listenUnix(server, path);
}

function listenTcp(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startControlServer(where: ControlAddress, handler: ApiHandler): Promise<ControlServer> {
  const server = loadHttp().createServer({ requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => serve(handler, req, res));
  if (where.kind === 'unix') await listenUnixReplacingStale(server, where.path);
  else await listenTcp(server, where.host, where.port);

  const bound = server.address();
  const address = where.kind === 'unix' || typeof bound !== 'object' || !bound ? formatControlAddress(where) : formatEndpoint(bound.address, bound.port);
  return {
    address,
    close: () =>
      new Promise((resolve) => {
        // libuv unlinks a unix socket's file as it closes it
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
