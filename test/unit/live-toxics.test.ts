/**
 * Toxics changed on open connections: the relay between two real loopback
 * sockets (a client standing in for the program, an in-process server for
 * the destination), its toxics added, changed and removed while bytes flow.
 * Timing assertions are orders of magnitude: these machines are loaded.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { relay, type RelayToxics, type Relaying } from '../../src/proxy/relay.js';
import { seededRandom } from '../../src/chaos/random.js';
import { ToxicChain, type LiveToxic } from '../../src/chaos/live.js';
import { holdEarlyData } from '../../src/upstream/chain.js';
import type { ToxicSpec } from '../../src/chaos/toxics.js';

const NONE: RelayToxics = { up: [], down: [] };
const echo = (s: net.Socket): void => void s.pipe(s);

/** What one socket received, and waits on it. */
class Reader {
  readonly chunks: Buffer[] = [];
  total = 0;
  ended = false;
  error: NodeJS.ErrnoException | undefined;
  closed = false;
  private waiters: (() => void)[] = [];
  constructor(socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.total += c.length;
      this.wake();
    });
    socket.on('end', () => ((this.ended = true), this.wake()));
    socket.on('error', (e) => ((this.error = e), this.wake()));
    socket.on('close', () => ((this.closed = true), this.wake()));
  }
  get data(): Buffer {
    return Buffer.concat(this.chunks);
  }
  async until(what: () => boolean, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!what()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting (received ${this.total})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 50);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    w.forEach((f) => f());
  }
}

interface Conn {
  readonly client: net.Socket;
  readonly reader: Reader;
  readonly relaying: Relaying;
}

/** A client relayed to a server that runs `serve` on its side of the connection. */
async function open(serve: (s: net.Socket) => void = echo, toxics?: RelayToxics, early: Buffer[] = []): Promise<Conn> {
  const dest = net
    .createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {}); // resets are what some tests are about
      serve(s);
    })
    .listen(0, '127.0.0.1');
  await once(dest, 'listening');
  const front = net.createServer({ allowHalfOpen: true }).listen(0, '127.0.0.1');
  await once(front, 'listening');
  const relaying = new Promise<Relaying>((resolve) =>
    front.once('connection', (program: net.Socket) => {
      const upstream = net.connect({ port: (dest.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true }, () =>
        resolve(relay(program, upstream, early, toxics, seededRandom(7))),
      );
    }),
  );
  const client = net.connect({ port: (front.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const reader = new Reader(client);
  const conn = { client, reader, relaying: await relaying };
  front.close();
  dest.close();
  return conn;
}

/** One byte there and back through an echo. */
async function rtt({ client, reader }: Conn): Promise<number> {
  const n = reader.total;
  const t0 = Date.now();
  client.write('x');
  await reader.until(() => reader.total > n);
  return Date.now() - t0;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const toxic = (key: string, spec: ToxicSpec): LiveToxic => ({ key, spec });
const latency = (ms: number): ToxicSpec => ({ type: 'latency', latencyMs: ms, jitterMs: 0 });

describe('live toxics on an open relayed connection', () => {
  it('latency added takes effect on the next round trip; removed, it falls back', async () => {
    const c = await open();
    assert.ok((await rtt(c)) < 150);
    c.relaying.setToxics({ up: [], down: [toxic('lat', latency(300))] });
    assert.ok((await rtt(c)) >= 280);
    c.relaying.setToxics(NONE);
    assert.ok((await rtt(c)) < 150);
    c.client.end();
    assert.equal((await c.relaying.done).error, undefined);
  });

  it('a latency change applies from now, also to bytes it holds', async () => {
    const c = await open(echo, { up: [toxic('lat', latency(5000))], down: [] });
    const t0 = Date.now();
    c.client.write('x');
    await sleep(100);
    c.relaying.setToxics({ up: [toxic('lat', latency(200))], down: [] });
    await c.reader.until(() => c.reader.total === 1);
    const took = Date.now() - t0;
    assert.ok(took >= 180 && took < 3000, `${took} ms`);
    c.client.destroy();
  });

  it('bandwidth changed mid-transfer sets the rate of the rest, within 20%', async () => {
    const total = 2 << 20;
    const c = await open((s) => s.end(Buffer.alloc(total, 1)), { up: [], down: [toxic('bw', { type: 'bandwidth', bytesPerSecond: 128 << 10 })] });
    await sleep(500);
    const before = c.reader.total;
    assert.ok(before < 128 << 10, `${before} bytes in 0.5 s at 128 KiB/s`);
    const rate = 1 << 20;
    const t0 = Date.now();
    c.relaying.setToxics({ up: [], down: [toxic('bw', { type: 'bandwidth', bytesPerSecond: rate })] });
    await c.reader.until(() => c.reader.ended);
    const measured = (c.reader.total - before) / ((Date.now() - t0) / 1000);
    assert.equal(c.reader.total, total);
    assert.ok(Math.abs(measured - rate) / rate < 0.2, `${Math.round(measured)} B/s for ${rate}`);
    c.client.end();
  });

  it('timeout stalls the next bytes; removed, it closes the connection (the dropped bytes never arrive, no hole goes on)', async () => {
    const c = await open();
    c.relaying.setToxics({ up: [], down: [toxic('t', { type: 'timeout', timeMs: 0 })] });
    c.client.write('a');
    await sleep(400);
    assert.equal(c.reader.total, 0);
    c.relaying.setToxics(NONE);
    await c.reader.until(() => c.reader.ended);
    assert.equal(c.reader.total, 0);
    c.client.end();
    await c.relaying.done;
  });

  it('timeout added closes the connection its time after it was added', async () => {
    const c = await open();
    await sleep(300);
    const t0 = Date.now();
    c.relaying.setToxics({ up: [toxic('t', { type: 'timeout', timeMs: 400 })], down: [] });
    await c.reader.until(() => c.reader.ended);
    assert.ok(Date.now() - t0 >= 380);
    c.client.end();
    await c.relaying.done;
  });

  it('reset_peer fires its time after it was added', async () => {
    const c = await open();
    await sleep(300);
    const t0 = Date.now();
    c.relaying.setToxics({ up: [], down: [toxic('r', { type: 'reset_peer', timeMs: 400 })] });
    await c.reader.until(() => c.reader.closed);
    assert.ok(Date.now() - t0 >= 380, `${Date.now() - t0} ms`);
    assert.equal(c.reader.error?.code, 'ECONNRESET');
    assert.equal((await c.relaying.done).error, 'reset by a fault');
  });

  it('reset_peer removed before its time does nothing', async () => {
    const c = await open();
    c.relaying.setToxics({ up: [toxic('r', { type: 'reset_peer', timeMs: 200 })], down: [] });
    c.relaying.setToxics(NONE);
    await sleep(400);
    assert.ok((await rtt(c)) < 150);
    c.client.end();
    assert.equal((await c.relaying.done).error, undefined);
  });

  it('limit_data counts from when it was added, then closes', async () => {
    const c = await open();
    c.client.write(Buffer.alloc(1000, 1));
    await c.reader.until(() => c.reader.total === 1000);
    c.relaying.setToxics({ up: [], down: [toxic('l', { type: 'limit_data', bytes: 500 })] });
    c.client.write(Buffer.alloc(2000, 2));
    await c.reader.until(() => c.reader.ended);
    assert.equal(c.reader.total, 1500);
    c.client.end();
    await c.relaying.done;
  });

  it('slicer added cuts the next bytes into delayed slices', async () => {
    const c = await open();
    c.relaying.setToxics({ up: [], down: [toxic('s', { type: 'slicer', averageSize: 10, sizeVariation: 0, delayMs: 30 })] });
    const t0 = Date.now();
    c.client.write(Buffer.alloc(100, 3));
    await c.reader.until(() => c.reader.total === 100);
    assert.ok(Date.now() - t0 >= 200);
    assert.ok(c.reader.chunks.length >= 5, `${c.reader.chunks.length} reads`);
    c.client.end();
  });

  it('slow_close added delays the FIN, not the data; half-close still works', async () => {
    const c = await open();
    c.relaying.setToxics({ up: [toxic('sc', { type: 'slow_close', delayMs: 400 })], down: [toxic('lat', latency(50))] });
    const t0 = Date.now();
    c.client.end('hello');
    await c.reader.until(() => c.reader.total === 5);
    assert.ok(Date.now() - t0 < 300);
    await c.reader.until(() => c.reader.ended);
    assert.ok(Date.now() - t0 >= 380);
    assert.equal(c.reader.data.toString(), 'hello');
    assert.equal((await c.relaying.done).error, undefined);
  });

  it('half-close: the program ends its side and still gets the answer through toxics', async () => {
    const c = await open(
      (s) => {
        s.resume();
        s.on('end', () => setTimeout(() => s.end('answer after your FIN'), 100));
      },
      { up: [toxic('lat', latency(50))], down: [toxic('sl', { type: 'slicer', averageSize: 4, sizeVariation: 2, delayMs: 1 })] },
    );
    c.client.end('question');
    await c.reader.until(() => c.reader.ended);
    assert.equal(c.reader.data.toString(), 'answer after your FIN');
    const r = await c.relaying.done;
    assert.equal(r.error, undefined);
    assert.equal(r.bytesUp, 8);
  });

  it('keeps every byte in order both ways while toxics change all the time (4 MiB, random chunks)', async () => {
    const size = 4 << 20;
    const random = seededRandom(11);
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = Math.floor(random() * 256);
    const c = await open();
    // an order of keys kept mostly, shuffled now and then (the chain must cope either way)
    const keys = ['a', 'b', 'c', 'd', 'e'];
    const specFor = (k: string): ToxicSpec => {
      const pick = random() < 0.7 ? 0 : 1; // often the same spec again: the stage and its state stay
      if (k === 'a') return { type: 'latency', latencyMs: 10 + pick * 20, jitterMs: 5 };
      if (k === 'b') return { type: 'bandwidth', bytesPerSecond: (4 + pick * 8) << 20 };
      if (k === 'c') return { type: 'slicer', averageSize: 2000, sizeVariation: 1500, delayMs: pick < 0.5 ? 0 : 1 };
      if (k === 'd') return { type: 'limit_data', bytes: 1e12 };
      return { type: 'slow_close', delayMs: 10 };
    };
    const pickList = (): LiveToxic[] => {
      const chosen = keys.filter(() => random() < 0.5);
      if (random() < 0.2) chosen.reverse();
      return chosen.map((k) => toxic(k, specFor(k)));
    };
    let changing = true;
    let changes = 0;
    const changer = (async () => {
      while (changing) {
        c.relaying.setToxics({ up: pickList(), down: pickList() });
        changes++;
        await sleep(random() * 5);
      }
    })();
    let off = 0;
    while (off < size) {
      const n = Math.min(size - off, 1 + Math.floor(random() * 100_000));
      if (!c.client.write(payload.subarray(off, off + n))) await once(c.client, 'drain');
      off += n;
      // and between two writes, with nothing in between
      if (random() < 0.5) {
        c.relaying.setToxics({ up: pickList(), down: pickList() });
        changes++;
      }
    }
    c.client.end();
    await c.reader.until(() => c.reader.ended, 120_000);
    changing = false;
    await changer;
    const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    assert.equal(c.reader.total, size);
    assert.equal(digest(c.reader.data), digest(payload));
    assert.ok(changes > 20, `${changes} changes`);
    const r = await c.relaying.done;
    assert.equal(r.error, undefined);
    assert.deepEqual([r.bytesUp, r.bytesDown], [size, size]);
  });

  it('switches between the plain path and the stages both ways without losing a byte', async () => {
    const c = await open();
    const part = Buffer.alloc(1 << 20, 5);
    let expected = 0;
    const through = async (): Promise<void> => {
      c.client.write(part);
      expected += part.length;
      await c.reader.until(() => c.reader.total === expected);
    };
    await through();
    c.relaying.setToxics({ up: [toxic('lat', latency(20))], down: [toxic('sl', { type: 'slicer', averageSize: 1000, sizeVariation: 0, delayMs: 0 })] });
    await through();
    c.relaying.setToxics(NONE);
    const t0 = Date.now();
    await through();
    assert.ok(Date.now() - t0 < 2000);
    c.relaying.setToxics({ up: [], down: [toxic('lat', latency(300))] });
    assert.ok((await rtt(c)) >= 280);
    c.client.end();
    await c.reader.until(() => c.reader.ended);
    assert.ok(c.reader.data.subarray(0, expected).every((b) => b === 5));
  });

  it('a slow toxic stops the relay reading: the sender is held back, nothing piles up', async () => {
    let accepted = 0;
    const c = await open(
      (s) => {
        const chunk = Buffer.alloc(64 << 10, 9);
        const pump = (): void => {
          while (accepted < 64 << 20) {
            accepted += chunk.length;
            if (!s.write(chunk)) return void s.once('drain', pump);
          }
        };
        pump();
      },
      { up: [], down: [toxic('bw', { type: 'bandwidth', bytesPerSecond: 64 << 10 })] },
    );
    await sleep(1500);
    // what the stages may hold (1 MiB) and the kernel's and sockets' buffers, not 64 MiB
    assert.ok(accepted < 24 << 20, `${accepted} bytes taken from the sender`);
    assert.ok(c.reader.total < 256 << 10, `${c.reader.total} bytes through at 64 KiB/s`);
    c.relaying.cut('done');
    await c.relaying.done;
  });

  it('bytes the upstream sent before the relay go first, through the toxics', async () => {
    const c = await open((s) => s.end('late'), { up: [], down: [toxic('sl', { type: 'slicer', averageSize: 2, sizeVariation: 1, delayMs: 1 })] }, [
      Buffer.from('early, '),
    ]);
    await c.reader.until(() => c.reader.ended);
    assert.equal(c.reader.data.toString(), 'early, late');
    c.client.end();
    await c.relaying.done;
  });

  it('a reset from the program reaches the destination as a reset, toxics or not', async () => {
    let seen: string | undefined;
    const c = await open(
      (s) => {
        s.on('error', (e: NodeJS.ErrnoException) => (seen = e.code));
        s.pipe(s);
      },
      { up: [toxic('lat', latency(20))], down: [toxic('lat', latency(20))] },
    );
    assert.ok((await rtt(c)) >= 35);
    c.client.resetAndDestroy();
    const r = await c.relaying.done;
    assert.equal(r.error, 'program: ECONNRESET');
    await sleep(100);
    assert.equal(seen, 'ECONNRESET');
  });

  it('cut() closes both sockets now and records the reason', async () => {
    const c = await open();
    assert.ok((await rtt(c)) < 150);
    c.relaying.cut('cut by the test');
    await c.reader.until(() => c.reader.ended);
    assert.equal(c.reader.error, undefined);
    c.client.end();
    assert.equal((await c.relaying.done).error, 'cut by the test');
  });
});

/** A chain writing into an array, to check without sockets or clocks where held bytes go on a change. */
function chainInto(): { chain: ToxicChain; out: string[]; closes: () => number } {
  const out: string[] = [];
  let closes = 0;
  const chain = new ToxicChain(
    { write: (c) => out.push(c.toString()), end: () => out.push('FIN') },
    { random: seededRandom(3), control: { close: () => closes++, reset: () => {} }, released: () => {} },
  );
  return { chain, out, closes: () => closes };
}
const hold = latency(100_000);

describe('relay start', () => {
  it('a destination that greets and closes before the relay begins: its bytes and its FIN reach the program', async () => {
    const dest = net.createServer((s) => s.end('hello')).listen(0, '127.0.0.1');
    await once(dest, 'listening');
    const front = net.createServer({ allowHalfOpen: true }).listen(0, '127.0.0.1');
    await once(front, 'listening');
    const relaying = new Promise<Relaying>((resolve) =>
      front.once('connection', (program: net.Socket) => {
        const upstream = net.connect({ port: (dest.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
        // as the proxy holds what arrives while it completes the program's connect
        const takeEarly = holdEarlyData(upstream);
        upstream.once('end', () => setImmediate(() => resolve(relay(program, upstream, takeEarly(), undefined, seededRandom(1)))));
      }),
    );
    const client = net.connect({ port: (front.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
    const reader = new Reader(client);
    const r = await relaying;
    await reader.until(() => reader.ended);
    assert.equal(reader.data.toString(), 'hello');
    client.end();
    assert.equal((await r.done).error, undefined);
    front.close();
    dest.close();
  });
});

describe('ToxicChain changes', () => {
  it('a removed toxic hands its bytes to what follows it, behind the older bytes held there', () => {
    const { chain, out } = chainInto();
    chain.set([toxic('b', hold)]);
    chain.head.write(Buffer.from('1'));
    chain.set([toxic('a', hold), toxic('b', hold)]);
    chain.head.write(Buffer.from('2'));
    chain.head.end();
    assert.equal(chain.held, 2);
    chain.set([toxic('b', hold)]);
    assert.deepEqual(out, []);
    chain.set([]);
    assert.deepEqual(out, ['1', '2', 'FIN']);
    assert.ok(chain.empty);
  });

  it('a changed toxic hands its bytes to its replacement; an unchanged one keeps its state', () => {
    const { chain, out, closes } = chainInto();
    chain.set([toxic('l', { type: 'limit_data', bytes: 3 }), toxic('h', hold)]);
    chain.head.write(Buffer.from('ab'));
    chain.set([toxic('l', { type: 'limit_data', bytes: 3 }), toxic('h', latency(0))]);
    assert.deepEqual(out, ['ab']);
    chain.head.write(Buffer.from('cd')); // the limit still counts the first two
    assert.deepEqual(out, ['ab', 'c']);
    assert.equal(closes(), 1);
  });

  it('toxics listed in another order start afresh, the bytes they held going on in order', () => {
    const { chain, out } = chainInto();
    chain.set([toxic('b', hold)]);
    chain.head.write(Buffer.from('1'));
    chain.set([toxic('a', hold), toxic('b', hold)]);
    chain.head.write(Buffer.from('2'));
    chain.set([toxic('b', hold), toxic('a', hold)]);
    assert.deepEqual(out, ['1', '2']);
    assert.equal(chain.held, 0);
  });

  it('a removed timeout lets the hidden end go on, not the bytes it dropped, and closes the connection (as Toxiproxy)', () => {
    const { chain, out, closes } = chainInto();
    chain.set([toxic('t', { type: 'timeout', timeMs: 0 })]);
    chain.head.write(Buffer.from('lost'));
    chain.head.end();
    assert.deepEqual(out, []);
    chain.set([]);
    assert.deepEqual(out, ['FIN']);
    assert.equal(closes(), 1);
  });

  it('a timeout replaced by another timeout does not close the connection', () => {
    const { chain, closes } = chainInto();
    chain.set([toxic('t', { type: 'timeout', timeMs: 0 })]);
    chain.set([toxic('t', { type: 'timeout', timeMs: 60_000 })]);
    assert.equal(closes(), 0);
    chain.dispose();
  });
});
