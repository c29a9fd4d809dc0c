/**
 * Fake SOCKS5 proxies on loopback for unit tests: each answers the client's
 * messages (the greeting, then the user/password if any, then the request)
 * in one scripted way, to bring about one end of the handshake.
 */
import net from 'node:net';
import { once } from 'node:events';

/** How a fake answers the client's `n`th message (0: the greeting). */
export type Answer = (socket: net.Socket, chunk: Buffer, n: number) => void;

export interface FakeSocks {
  readonly port: number;
  close(): Promise<void>;
}

export async function fakeSocks5(answer: Answer): Promise<FakeSocks> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    let n = 0;
    s.on('data', (chunk: Buffer) => answer(s, chunk, n++));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** "no authentication", then a reply with REP `code` to the request. */
export const replying =
  (code: number): Answer =>
  (s, _chunk, n) =>
    s.write(n === 0 ? Buffer.from([5, 0]) : Buffer.from([5, code, 0, 1, 0, 0, 0, 0, 0, 0]));

/** No acceptable method (0xFF) to the greeting. */
export const noMethod: Answer = (s) => s.write(Buffer.from([5, 0xff]));

/** User/password chosen, then refused (RFC 1929 status 1). */
export const passwordRefused: Answer = (s, _chunk, n) => s.write(n === 0 ? Buffer.from([5, 2]) : Buffer.from([1, 1]));

/** An HTTP answer: bytes that are no SOCKS5 reply. */
export const malformed: Answer = (s) => s.write('HTTP/1.1 400 Bad Request\r\n\r\n');

/** Closes (FIN) on the greeting. */
export const closing: Answer = (s) => s.end();

/** Resets on the greeting. */
export const resetting: Answer = (s) => s.resetAndDestroy();

/** Never answers. */
export const silent: Answer = () => {};
