/**
 * The proxy over loopback without a tracer: the test plays the tracer (it
 * hands connects over with expect() and collects the proxy's answers) and
 * the program (a listener at the program's port stands in for its socket
 * waiting in SYN_SENT: the proxy's handshake reaches both alike). Every
 * handover must come out with one record, marked by where it stood when
 * the program exited, and a failed one with its errno for the tracer.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import pino from 'pino';
import { startProxy, type Proxy } from '../../src/proxy/server.js';
import { ConnectionLog, type ConnectionRecord, type ProxiedConnection } from '../../src/records.js';
import { Routing } from '../../src/routing.js';
import { seededRandom } from '../../src/chaos/random.js';
import type { RedirectRecord } from '../../src/tracer/channel.js';
import type { ControlMessage } from '../../src/tracer/messages.js';
import { freePort, holdBlackHole, type BlackHole } from './proxy-fixtures.js';

interface Harness {
  proxy: Proxy;
  records: ConnectionRecord[];
  answers: ControlMessage[];
}

async function proxyWithLog(): Promise<Harness> {
  const logger = pino({ level: 'silent' });
  const log = new ConnectionLog(logger);
  const records: ConnectionRecord[] = [];
  const answers: ControlMessage[] = [];
  log.onRecord((r) => records.push(r));
  const routing = await Routing.create({ rules: [], chains: new Map(), egress: {}, mode: 'auto' });
  const proxy = startProxy({
    routing,
    toxics: [],
    random: seededRandom(1),
    connectTimeoutMs: undefined,
    logger,
    connections: log,
    answer: (m) => answers.push(m),
  });
  return { proxy, records, answers };
}

let nextId = 1;
const handover = (peerPort: number, holePort: number, dstPort: number, delayMs = 0): RedirectRecord => ({
  kind: 'redirect',
  pid: 1,
  tid: 1,
  id: nextId++,
  dstIp: '127.0.0.1',
  dstPort,
  peerIp: '127.0.0.1',
  peerPort,
  holePort,
  rule: -1,
  delayMs,
  exe: '/test',
});

/** The program's socket, waiting for the proxy's handshake: resolves with the connection. */
async function programSocket(): Promise<{ port: number; connected: Promise<net.Socket>; close: () => void }> {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const connected = once(server, 'connection').then(([s]) => s as net.Socket);
  return { port: (server.address() as net.AddressInfo).port, connected, close: () => server.close() };
}

const proxied = (records: readonly ConnectionRecord[]): ProxiedConnection[] =>
  records.filter((r): r is ProxiedConnection => r.event === 'connection' && r.action === 'proxy');

describe('the proxy: answers to the tracer, and records at the program exit', () => {
  // the destination: accepts and keeps every connection open, says nothing
  let destination: net.Server;
  let dstPort: number;
  let holePort: number;
  let hole: BlackHole;
  const held: net.Socket[] = [];
  before(async () => {
    destination = net.createServer((s) => {
      held.push(s);
      s.on('error', () => {});
    });
    destination.listen(0, '127.0.0.1');
    await once(destination, 'listening');
    dstPort = (destination.address() as net.AddressInfo).port;
    hole = holdBlackHole();
    holePort = hole.port;
  });
  after(() => {
    for (const s of held) s.destroy();
    destination.close();
    hole.close();
  });

  it('completes the handshake once the destination accepted, from the black hole', async () => {
    const { proxy, records, answers } = await proxyWithLog();
    const program = await programSocket();
    const h = handover(program.port, holePort, dstPort);
    proxy.expect(h);
    const conn = await program.connected;
    assert.equal(conn.remotePort, holePort, 'the handshake comes from the black hole');
    assert.deepEqual(answers, [], 'the tracer sees the socket connect: no answer is sent');
    conn.end('hi');
    await proxy.close();
    program.close();
    assert.equal(proxied(records).length, 1);
  });

  it('tells the tracer the errno when the destination refuses, and never opens the handshake', async () => {
    const { proxy, records, answers } = await proxyWithLog();
    const program = await programSocket();
    let handshakes = 0;
    void program.connected.then(() => handshakes++);
    const h = handover(program.port, holePort, await freePort());
    proxy.expect(h);
    while (!answers.length) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(answers, [{ kind: 'refused', id: h.id, error: 'ECONNREFUSED' }]);
    await proxy.close();
    program.close();
    assert.equal(handshakes, 0);
    const [r] = proxied(records);
    assert.match(r?.error ?? '', /ECONNREFUSED/);
  });

  it('records six data-less connections whose program exits at once, every time', async () => {
    for (let round = 0; round < 5; round++) {
      const { proxy, records } = await proxyWithLog();
      const programs = await Promise.all(Array.from({ length: 6 }, () => programSocket()));
      for (const p of programs) proxy.expect(handover(p.port, holePort, dstPort));
      // the program exits as soon as its connects returned
      const conns = await Promise.all(programs.map((p) => p.connected));
      for (const c of conns) c.destroy();
      await proxy.close();
      for (const p of programs) p.close();
      const got = proxied(records);
      assert.equal(got.length, 6, JSON.stringify(records));
      assert.deepEqual(got.map((r) => r.local).sort(), programs.map((p) => `127.0.0.1:${p.port}`).sort());
    }
  });

  it('records a connect still waiting for its handshake at exit as pending', async () => {
    const { proxy, records } = await proxyWithLog();
    const program = await programSocket();
    proxy.expect(handover(program.port, holePort, dstPort, 60_000)); // a handshake delay fault
    await new Promise((r) => setTimeout(r, 20));
    await proxy.close();
    program.close();
    const [r] = proxied(records);
    assert.equal(proxied(records).length, 1);
    assert.equal(r?.atExit, 'pending');
    assert.equal(r?.local, `127.0.0.1:${program.port}`);
  });

  it('ends a connection still open at exit at once and records it as open, with its bytes', async () => {
    const { proxy, records } = await proxyWithLog();
    const program = await programSocket();
    // the connection that brings 'hello': a dial an earlier test dropped may
    // still be accepted now, on a loaded machine, and never sends anything
    const arrived = new Promise<void>((resolve) => {
      const onConnection = (s: net.Socket): void => {
        s.on('data', (d: Buffer) => {
          if (!d.includes('hello')) return;
          destination.off('connection', onConnection);
          resolve();
        });
      };
      destination.on('connection', onConnection);
    });
    proxy.expect(handover(program.port, holePort, dstPort));
    const conn = await program.connected;
    conn.write('hello');
    await arrived;
    conn.destroy(); // the program exits
    const started = Date.now();
    await proxy.close();
    const took = Date.now() - started;
    program.close();
    const [r] = proxied(records);
    assert.equal(r?.atExit, 'open', JSON.stringify(records));
    assert.equal(r?.bytesUp, 5);
    assert.ok(took < 500, `close took ${took} ms`);
  });
});
