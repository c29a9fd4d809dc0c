/** What the unit tests of graft's proxy and the tracer's relayed records share. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import type { RedirectRecord } from '../../src/tracer/channel.js';
import type { RelayedMessage, RelayEnd } from '../../src/tracer/messages.js';
import type { ProxiedConnection } from '../../src/records.js';
import { AF_INET, SOCKET_LEVEL, bindTo, boundPort, closeFd, openTcpSocket } from '../../src/egress/native-socket.js';

export interface BlackHole {
  readonly port: number;
  close(): void;
}

/**
 * A stand-in for the tracer's black hole: a loopback port bound with
 * SO_REUSEPORT, as the tracer holds it, so a proxy can bind its handshakes
 * there and no other test takes the port.
 */
export function holdBlackHole(): BlackHole {
  const fd = openTcpSocket(AF_INET, [{ name: 'SO_REUSEPORT', level: SOCKET_LEVEL.SOL_SOCKET, option: 15, value: Buffer.from(new Int32Array([1]).buffer) }]);
  assert.equal(bindTo(fd, { ip: '127.0.0.1', port: 0 }), '');
  return { port: boundPort(fd), close: () => closeFd(fd) };
}

/** A loopback port nobody uses right now. */
export async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

/** An R record of a connection that ended `end`, with `more` of its fields as given. */
export function sampleRelayed(end: RelayEnd, more: Partial<RelayedMessage> = {}): RelayedMessage {
  return {
    kind: 'relayed',
    pid: 42,
    tid: 43,
    dstIp: '198.51.100.7',
    dstPort: 443,
    peerIp: '10.0.0.2',
    peerPort: 40000,
    rule: 0,
    bytesUp: 0,
    bytesDown: 0,
    durationMs: 12,
    end,
    atExit: false,
    exe: '/usr/bin/curl',
    ...more,
  };
}

/** The R record the tracer would send for the connection graft's proxy served from `rec` and recorded as `got`. */
export function relayedFrom(rec: RedirectRecord, got: ProxiedConnection, end: RelayEnd, more: Partial<RelayedMessage> = {}): RelayedMessage {
  return {
    kind: 'relayed',
    pid: rec.pid,
    tid: rec.tid,
    dstIp: rec.dstIp,
    dstPort: rec.dstPort,
    peerIp: rec.peerIp,
    peerPort: rec.peerPort,
    rule: rec.rule,
    bytesUp: got.bytesUp,
    bytesDown: got.bytesDown,
    durationMs: got.durationMs,
    end,
    atExit: false,
    exe: rec.exe,
    ...more,
  };
}
