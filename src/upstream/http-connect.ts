/**
 * HTTP CONNECT over an open socket: sends the request (with Basic auth when
 * given), reads the reply head however it is split across reads, and
 * resolves once the tunnel is up. Bytes the proxy sent after the head
 * belong to the destination and are put back into the socket.
 */
import type net from 'node:net';
import { ProxyHandshakeError, type HandshakeReason } from './failure.js';
import type { Credentials } from './url.js';

export { ProxyHandshakeError };

const MAX_HEAD = 16 * 1024;

export function httpConnect(socket: net.Socket, host: string, port: number, auth: Credentials | undefined, proxyName: string): Promise<void> {
  const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`];
  if (auth) lines.push(`Proxy-Authorization: Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
    const fail = (why: string, reason: HandshakeReason): void => {
      cleanup();
      reject(new ProxyHandshakeError(`${proxyName}: ${why}`, reason));
    };
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD) fail('reply head too long', { kind: 'malformed' });
        return;
      }
      cleanup();
      socket.pause(); // until the caller reads: no byte may be emitted unheard
      const rest = head.subarray(end + 4);
      const status = /^HTTP\/1\.[01] (\d{3})(?: ([^\r\n]*))?\r\n/.exec(head.subarray(0, end + 2).toString('latin1'));
      if (!status) return fail('not an HTTP reply to CONNECT', { kind: 'malformed' });
      const code = Number(status[1]);
      // 407 is the standard answer; some proxies (tinyproxy) answer 401
      if (code === 407 || code === 401) return fail(`proxy authentication ${auth ? 'failed' : 'required'} (${code})`, { kind: 'http', status: code });
      if (code < 200 || code > 299) return fail(`CONNECT refused: ${code} ${status[2] ?? ''}`.trimEnd(), { kind: 'http', status: code });
      // Left paused: the caller resumes once it reads, so no byte of the
      // tunnel is emitted before anyone listens.
      if (rest.length) socket.unshift(rest);
      resolve();
    };
    const onEnd = (): void => fail('closed the connection during the CONNECT handshake', { kind: 'closed' });
    const onError = (err: NodeJS.ErrnoException): void => fail(`${err.code ?? err.message} during the CONNECT handshake`, { kind: 'closed' });
    socket.on('data', onData);
    // an HTTP hop before this one left the socket paused, and a 'data'
    // listener alone does not resume a paused socket
    socket.resume();
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}
