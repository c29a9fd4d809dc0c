/** A static Go binary (stdlib net/http and net.Dial) through graft. */
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildGo } from './lab/build.js';
import { A4, A6, B4, B6, World, connections, type GraftRun } from './lab/world.js';
import { LAB, needs } from './lab/capabilities.js';

const CLIENT_V4 = '192.0.2.1';

function count<T>(items: readonly T[]): Map<T, number> {
  const m = new Map<T, number>();
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

/** Asserts the proxy records are exactly `dsts` (as a multiset), error-free, all from one goclient process. */
function assertConnections(run: GraftRun, dsts: readonly string[]): Record<string, unknown>[] {
  const conns = connections(run);
  assert.deepEqual(conns.map((c) => String(c.dst)).sort(), [...dsts].sort(), 'one proxied connection per dial, to the right place');
  for (const c of conns) {
    assert.equal(c.error, undefined, `connection to ${String(c.dst)} failed: ${String(c.error)}`);
    assert.equal(c.action, 'proxy');
    assert.match(String(c.exe), /goclient$/);
  }
  assert.equal(new Set(conns.map((c) => c.pid)).size, 1, 'all from the one Go process');
  return conns;
}

describe('static Go client through graft', { skip: needs(...LAB, 'go') }, () => {
  let world: World;
  let bin: string;
  before(async () => {
    bin = buildGo('goclient');
    world = await new World().start();
  });
  after(() => world?.destroy());

  it('is a statically linked binary', { skip: needs('file') }, () => {
    const out = execFileSync('file', [bin], { encoding: 'utf8' });
    assert.match(out, /statically linked/, out);
  });

  it('concurrent HTTP GETs from several goroutines to A and B', async () => {
    const n = 24;
    const want = Array.from({ length: n }, (_, i) => `name=${i % 2 ? 'B' : 'A'} path=/g${i}\n`).join('');
    const mark = world.events.length;
    const run = await world.graft([bin, '-get', String(n), '-workers', '6', '-hosts', `${A4},${B4}`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, want);
    const conns = assertConnections(
      run,
      Array.from({ length: n }, (_, i) => `${i % 2 ? B4 : A4}:8080`),
    );
    for (const c of conns) {
      assert.match(String(c.local), /^127\.0\.0\.1:\d+$/);
      assert.ok(Number(c.bytesUp) > 0, 'request went up');
      assert.ok(Number(c.bytesDown) > 0, 'response came down');
    }
    assert.equal(new Set(conns.map((c) => c.local)).size, n, 'each GET had its own program-side socket');
    const http = world.since(mark).filter((e) => e.service === 'http');
    assert.deepEqual(
      count(http.map((e) => e.name)),
      new Map([
        ['A', n / 2],
        ['B', n / 2],
      ]),
    );
    assert.ok(
      http.every((e) => e.remote === CLIENT_V4),
      'the proxy dialled from the client namespace',
    );

    const native = await world.native([bin, '-get', String(n), '-workers', '6', '-hosts', `${A4},${B4}`]);
    assert.equal(native.code, 0, native.stderr);
    assert.equal(native.stdout, run.stdout, 'same output without graft');
  });

  it('net.Dial("tcp6") to an IPv6 destination', async () => {
    const mark = world.events.length;
    const run = await world.graft([bin, '-v6', `[${A6}]:7000`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'A\n');
    const [conn] = assertConnections(run, [`[${A6}]:7000`]);
    // tcp6 sockets are IPV6_V6ONLY in Go: they can only be sent to ::1
    assert.match(String(conn!.local), /^\[::1\]:\d+$/);
    assert.equal(conn!.bytesUp, 0);
    assert.equal(conn!.bytesDown, 2);
    assert.deepEqual(
      world.since(mark).map((e) => [e.service, e.name]),
      [['name', 'A']],
    );

    const native = await world.native([bin, '-v6', `[${A6}]:7000`]);
    assert.equal(native.code, 0, native.stderr);
    assert.equal(native.stdout, run.stdout, 'same output without graft');
  });

  it('a plain TCP exchange with a half-close (IPv4)', async () => {
    const run = await world.graft([bin, '-tcp', `${B4}:9001`, '-send', 'hello graft']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'got 11\n');
    const [conn] = assertConnections(run, [`${B4}:9001`]);
    assert.equal(conn!.bytesUp, 11);
    assert.equal(conn!.bytesDown, 7);

    const native = await world.native([bin, '-tcp', `${B4}:9001`, '-send', 'hello graft']);
    assert.equal(native.code, 0, native.stderr);
    assert.equal(native.stdout, run.stdout, 'same output without graft');
  });

  it('a plain TCP exchange to an IPv6 address on a dual-stack socket', async () => {
    const run = await world.graft([bin, '-tcp', `[${B6}]:9001`, '-send', 'v6 dual']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'got 7\n');
    const [conn] = assertConnections(run, [`[${B6}]:9001`]);
    assert.equal(conn!.bytesUp, 7);
    assert.equal(conn!.bytesDown, 6);

    const native = await world.native([bin, '-tcp', `[${B6}]:9001`, '-send', 'v6 dual']);
    assert.equal(native.code, 0, native.stderr);
    assert.equal(native.stdout, run.stdout, 'same output without graft');
  });

  it('all modes in one process', async () => {
    const args = [bin, '-get', '8', '-workers', '4', '-v6', `[${B6}]:7000`, '-tcp', `${A4}:9001`, '-send', 'xyz'];
    const run = await world.graft(args);
    assert.equal(run.code, 0, run.stderr);
    const gets = Array.from({ length: 8 }, (_, i) => `name=${i % 2 ? 'B' : 'A'} path=/g${i}\n`).join('');
    assert.equal(run.stdout, `${gets}B\ngot 3\n`);
    assertConnections(run, [...Array.from({ length: 8 }, (_, i) => `${i % 2 ? B4 : A4}:8080`), `[${B6}]:7000`, `${A4}:9001`]);

    const native = await world.native(args);
    assert.equal(native.code, 0, native.stderr);
    assert.equal(native.stdout, run.stdout, 'same output without graft');
  });
});
