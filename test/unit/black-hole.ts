/**
 * A stand-in for the tracer's black hole in unit tests: a loopback port
 * bound with SO_REUSEPORT, as the tracer holds it, so a proxy can bind its
 * handshakes there and no other test takes the port.
 */
import assert from 'node:assert/strict';
import { AF_INET, SOCKET_LEVEL, bindTo, boundPort, closeFd, openTcpSocket } from '../../src/egress/native-socket.js';

export interface BlackHole {
  readonly port: number;
  close(): void;
}

export function holdBlackHole(): BlackHole {
  const fd = openTcpSocket(AF_INET, [{ name: 'SO_REUSEPORT', level: SOCKET_LEVEL.SOL_SOCKET, option: 15, value: Buffer.from(new Int32Array([1]).buffer) }]);
  assert.equal(bindTo(fd, { ip: '127.0.0.1', port: 0 }), '');
  return { port: boundPort(fd), close: () => closeFd(fd) };
}
