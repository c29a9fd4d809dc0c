/**
 * The proxy at the program's exit, over loopback without a tracer: the
 * test plays the tracer (it registers connections with expect()) and the
 * program (it connects from the registered port), then closes the proxy as
 * run.ts does once the program has exited. Every registration must come
 * out with exactly one record, marked by where it stood at exit.
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

/** A loopback port nobody uses right now. */
async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

async function proxyWithLog(): Promise<{ proxy: Proxy; records: ConnectionRecord[] }> {
  const logger = pino({ level: 'silent' });
  const log = new ConnectionLog(logger);
  const records: ConnectionRecord[] = [];
  log.onRecord((r) => records.push(r));
  const routing = await Routing.create({ rules: [], chains: new Map(), egress: {}, mode: 'auto' });
  const proxy = await startProxy({
    routing,
    toxics: [],
    random: seededRandom(1),
    connectTimeoutMs: 5000,
    registrationWaitMs: 1000,
    logger,
    connections: log,
  });
  return { proxy, records };
}

const redirect = (peerPort: number, dstPort: number): RedirectRecord => ({
  kind: 'redirect',
  pid: 1,
  tid: 1,
  dstIp: '127.0.0.1',
  dstPort,
  peerIp: '127.0.0.1',
  peerPort,
  rule: -1,
  exe: '/test',
});

const proxied = (records: readonly ConnectionRecord[]): ProxiedConnection[] =>
  records.filter((r): r is ProxiedConnection => r.event === 'connection' && r.action === 'proxy');

describe('the proxy at the program exit', () => {
  // the destination: accepts and keeps every connection open, says nothing
  let destination: net.Server;
  let dstPort: number;
  const held: net.Socket[] = [];
  before(async () => {
    destination = net.createServer((s) => {
      held.push(s);
      s.on('error', () => {});
    });
    destination.listen(0, '127.0.0.1');
    await once(destination, 'listening');
    dstPort = (destination.address() as net.AddressInfo).port;
  });
  after(() => {
    for (const s of held) s.destroy();
    destination.close();
  });

  it('accepts what is still queued before it stops listening: no record goes missing', async () => {
    for (let round = 0; round < 20; round++) {
      const { proxy, records } = await proxyWithLog();
      const ports = await Promise.all([freePort(), freePort(), freePort()]);
      for (const p of ports) proxy.expect(redirect(p, dstPort));
      // the program connects, closes and is gone; graft closes the proxy in
      // the very turn it learns of that, as when the tracer's exit arrives
      // together with the listener's readiness
      const clients = ports.map((p) => net.connect({ host: '127.0.0.1', port: proxy.port4, localAddress: '127.0.0.1', localPort: p }));
      await Promise.all(clients.map((c) => once(c, 'connect')));
      for (const c of clients) c.destroy();
      await proxy.close();
      const got = proxied(records);
      assert.equal(got.length, 3, JSON.stringify(records));
      assert.deepEqual(got.map((r) => r.local).sort(), ports.map((p) => `127.0.0.1:${p}`).sort());
      for (const r of got) assert.notEqual(r.atExit, 'unaccepted', JSON.stringify(r));
    }
  });

  it('records a registration whose connection never came as unaccepted', async () => {
    const { proxy, records } = await proxyWithLog();
    const port = await freePort();
    proxy.expect(redirect(port, dstPort));
    await proxy.close();
    const [r] = proxied(records);
    assert.equal(proxied(records).length, 1);
    assert.equal(r?.atExit, 'unaccepted');
    assert.equal(r?.local, `127.0.0.1:${port}`);
    assert.match(r?.error ?? '', /never reached the proxy/);
  });

  it('ends a connection still open at exit at once and records it as open, with its bytes', async () => {
    const { proxy, records } = await proxyWithLog();
    const port = await freePort();
    // the proxy dials the destination as soon as the tracer's record comes
    const arrived = new Promise<void>((resolve) => destination.once('connection', (s: net.Socket) => s.once('data', () => resolve())));
    proxy.expect(redirect(port, dstPort));
    const client = net.connect({ host: '127.0.0.1', port: proxy.port4, localAddress: '127.0.0.1', localPort: port });
    await once(client, 'connect');
    client.write('hello');
    await arrived;
    client.destroy(); // the program exits
    const started = Date.now();
    await proxy.close();
    const took = Date.now() - started;
    const [r] = proxied(records);
    assert.equal(r?.atExit, 'open', JSON.stringify(records));
    assert.equal(r?.bytesUp, 5);
    assert.ok(took < 500, `close took ${took} ms`);
  });
});
