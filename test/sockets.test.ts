/**
 * How graft treats socket kinds and connect(2) semantics: IPv6 sockets in
 * each mode, pre-bound and non-blocking sockets, UDP / Unix / loopback
 * (all untouched), the errors a program sees natively (which must stay the
 * same under graft), and failed destinations.
 *
 * The programs are test/fixtures/probe.py (python3) and, for arguments
 * python cannot pass, test/fixtures/sockprobe.c.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { A4, A6, B4, B6, BLACKHOLE4, World, connections, type GraftRun } from './lab/world.js';
import { buildC } from './lab/build.js';
import { repoRoot } from './lab/paths.js';
import { LAB, needs } from './lab/capabilities.js';

const probePy = join(repoRoot, 'test', 'fixtures', 'probe.py');
const CLIENT4 = '192.0.2.1';
const CLIENT6 = '2001:db8:1::1';
/** a fixed local port outside the ephemeral range, so nothing else takes it */
const FIXED_PORT = 24555;

/** The log's records that say graft did something with a connection. */
function graftEvents(run: GraftRun): unknown[] {
  return run.records.filter((r) => r.event !== undefined);
}

function ok(run: GraftRun): void {
  assert.equal(run.code, 0, `exit ${run.code} ${run.signal ?? ''}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
}

describe('socket kinds and connect semantics under graft', { skip: needs(...LAB) }, () => {
  let world: World;
  let sockprobe: string;
  before(async () => {
    sockprobe = buildC('sockprobe');
    world = await new World().start();
  });
  after(() => world?.destroy());

  const probe = (...args: string[]): Promise<GraftRun> => world.graft(['python3', probePy, ...args]);

  describe('IPv6', () => {
    it('an IPV6_V6ONLY socket reaches [A6]:7000', async () => {
      const mark = world.events.length;
      const run = await probe('v6only');
      ok(run);
      assert.equal(run.stdout, 'socket AF_INET6 peer-family AF_INET6\nv6only before 1 after 1\nA\n');
      const conns = connections(run);
      assert.equal(conns.length, 1, JSON.stringify(run.records));
      assert.equal(conns[0]!.dst, `[${A6}]:7000`);
      assert.equal(conns[0]!.error, undefined);
      assert.match(String(conns[0]!.local), /^\[::1\]:\d+$/, 'a V6ONLY socket is sent to ::1');
      assert.deepEqual(
        world.since(mark).map((e) => [e.service, e.name]),
        [['name', 'A']],
      );
    });

    it('a dual-stack AF_INET6 socket reaches [B6]:7000', async () => {
      const run = await probe('dual');
      ok(run);
      assert.equal(run.stdout, 'socket AF_INET6 peer-family AF_INET6\nB\n');
      const conns = connections(run);
      assert.equal(conns.length, 1, JSON.stringify(run.records));
      assert.equal(conns[0]!.dst, `[${B6}]:7000`);
      assert.equal(conns[0]!.error, undefined);
    });

    it('a dual-stack socket stays dual-stack (IPV6_V6ONLY 0) after a connect to an IPv6 destination', async () => {
      const want = 'socket AF_INET6 peer-family AF_INET6\nv6only before 0 after 0\nB\n';
      const native = await world.native(['python3', probePy, 'dual-v6only']);
      assert.equal(native.stdout, want, native.stderr);
      const run = await probe('dual-v6only');
      ok(run);
      assert.equal(run.stdout, want);
    });

    it('a dual-stack socket, disconnected (AF_UNSPEC), can reconnect to a v4-mapped address', async () => {
      const want = 'first: OK\nv6only: 0\nread: B\ndisconnect: OK\nsecond: OK\nread: A\n';
      const native = await world.native([sockprobe, 'reconnect-mapped']);
      assert.equal(native.stdout, want, native.stderr);
      const run = await world.graft([sockprobe, 'reconnect-mapped']);
      ok(run);
      assert.equal(run.stdout, want);
      assert.deepEqual(
        connections(run).map((c) => c.dst),
        [`[${B6}]:7000`, `${A4}:7000`],
      );
    });

    it('a dual-stack AF_INET6 socket to v4-mapped ::ffff:A4 stays AF_INET6 and reaches A4', async () => {
      const mark = world.events.length;
      const run = await probe('mapped');
      ok(run);
      assert.equal(run.stdout, 'socket AF_INET6 peer-family AF_INET6\nv6only before 0 after 0\nA\n');
      const conns = connections(run);
      assert.equal(conns.length, 1, JSON.stringify(run.records));
      assert.equal(conns[0]!.dst, `${A4}:7000`, 'graft normalizes a v4-mapped destination');
      assert.equal(conns[0]!.error, undefined);
      // the proxy dialed out over IPv4, from the client's own address
      assert.deepEqual(
        world.since(mark).map((e) => [e.service, e.name, e.remote]),
        [['name', 'A', CLIENT4]],
      );
    });
  });

  describe('pre-bound sockets', () => {
    it(`bound to 0.0.0.0:${FIXED_PORT}: the program keeps its port`, async () => {
      const run = await probe('bind-port', String(FIXED_PORT));
      ok(run);
      assert.equal(run.stdout, `local-port ${FIXED_PORT}\nA\n`);
      const conns = connections(run);
      assert.equal(conns.length, 1, JSON.stringify(run.records));
      assert.equal(conns[0]!.dst, `${A4}:7000`);
      assert.equal(conns[0]!.local, `127.0.0.1:${FIXED_PORT}`);
      assert.equal(conns[0]!.error, undefined);
    });

    it("bound to the client's own address (port 0): works, local is that address", async () => {
      const run = await probe('bind-own');
      ok(run);
      const m = /^bound 192\.0\.2\.1 (\d+)\nsame-after-connect yes\nA\n$/.exec(run.stdout);
      assert.ok(m, `unexpected output: ${JSON.stringify(run.stdout)}`);
      const conns = connections(run);
      assert.equal(conns.length, 1, JSON.stringify(run.records));
      assert.equal(conns[0]!.dst, `${A4}:7000`);
      assert.equal(conns[0]!.local, `${CLIENT4}:${m[1]}`);
      assert.equal(conns[0]!.error, undefined);
    });
  });

  it('a socket disconnected with AF_UNSPEC and connected again reaches the second destination', async () => {
    const want = 'first: OK\nread: A\ndisconnect: OK\nsecond: OK\nread: B\n';
    const native = await world.native([sockprobe, 'reconnect4']);
    assert.equal(native.stdout, want, native.stderr);
    const run = await world.graft([sockprobe, 'reconnect4']);
    ok(run);
    assert.equal(run.stdout, want);
    assert.deepEqual(
      connections(run).map((c) => [c.dst, c.error]),
      [
        [`${A4}:7000`, 'program: ECONNRESET'], // the disconnect resets the first connection
        [`${B4}:7000`, undefined],
      ],
    );
    assert.deepEqual(
      run.records.filter((r) => r.event === 'unregistered'),
      [],
    );
  });

  it('a non-blocking connect: EINPROGRESS (or 0), writable, SO_ERROR 0, then the data', async () => {
    const native = await world.native(['python3', probePy, 'nonblock']);
    const run = await probe('nonblock');
    ok(run);
    const want = 'connect_ex pending-or-done\nwritable yes\nso_error 0\nA\n';
    assert.equal(native.stdout, want, native.stderr);
    assert.equal(run.stdout, want);
    const conns = connections(run);
    assert.equal(conns.length, 1, JSON.stringify(run.records));
    assert.equal(conns[0]!.dst, `${A4}:7000`);
    assert.equal(conns[0]!.error, undefined);
  });

  describe('untouched socket kinds', () => {
    it('UDP (sendto, connected v4, connected v6) goes out directly', async () => {
      const mark = world.events.length;
      const run = await probe('udp');
      ok(run);
      assert.equal(run.stdout, `sendto 'A\\n' from ${A4}:7000\nconnected4 'A\\n' peer ${A4}:7000\nconnected6 'B\\n' peer [${B6}]:7000\n`);
      assert.deepEqual(graftEvents(run), [], 'no records for UDP');
      assert.deepEqual(
        world.since(mark).map((e) => [e.service, e.name, e.remote]),
        [
          ['udp', 'A', CLIENT4],
          ['udp', 'A', CLIENT4],
          ['udp', 'B', CLIENT6],
        ],
        'the datagrams came from the client itself, not through a proxy',
      );
    });

    it('Unix stream sockets (thread and forked server, path and abstract) are untouched', async () => {
      const run = await probe('unix');
      ok(run);
      assert.equal(run.stdout, 'path-thread PING PATH-THREAD\npath-fork PING PATH-FORK\nabstract-thread PING ABSTRACT-THREAD\n');
      assert.deepEqual(graftEvents(run), []);
    });

    it('loopback (127.0.0.1, 127.0.0.2, ::1) connects to the program itself', async () => {
      const run = await probe('loopback');
      ok(run);
      assert.equal(run.stdout, 'hello 127.0.0.1 peer-is-listener\nhello 127.0.0.2 peer-is-listener\nhello ::1 peer-is-listener\n');
      assert.deepEqual(graftEvents(run), []);
    });
  });

  describe('errors a program sees natively stay the same under graft', () => {
    const cases: [string, string][] = [
      ['efault', 'connect: EFAULT\n'],
      ['efault6', 'connect: EFAULT\n'],
      ['enotsock-devnull', 'connect: ENOTSOCK\n'],
      ['enotsock-pipe', 'connect: ENOTSOCK\n'],
      ['ebadf', 'connect: EBADF\n'],
      ['family-appletalk', 'connect: EAFNOSUPPORT\n'],
      ['family-bogus', 'connect: EAFNOSUPPORT\n'],
      ['v6-on-v4', 'connect: EAFNOSUPPORT\n'],
      ['v4-on-v6', 'connect: EINVAL\n'],
      ['short4', 'connect: EINVAL\n'],
      ['short6', 'connect: EINVAL\n'],
      ['family-only', 'connect: EINVAL\n'],
      ['toolong', 'connect: EINVAL\n'],
      ['mapped-v6only', 'connect: ENETUNREACH\n'],
    ];
    for (const [name, want] of cases) {
      it(name, async () => {
        const native = await world.native([sockprobe, name]);
        const run = await world.graft([sockprobe, name]);
        assert.equal(native.code, 0, native.stderr);
        ok(run);
        assert.equal(native.stdout, want, 'the native errno (the expectation itself)');
        assert.equal(run.stdout, native.stdout);
        assert.deepEqual(graftEvents(run), [], JSON.stringify(run.records));
      });
    }

    it('eisconn: a second connect on a connected socket (the first went through graft)', async () => {
      const want = 'first: OK\nsecond: EISCONN\nread: A\n';
      const native = await world.native([sockprobe, 'eisconn']);
      const run = await world.graft([sockprobe, 'eisconn']);
      assert.equal(native.stdout, want, native.stderr);
      ok(run);
      assert.equal(run.stdout, want);
      const conns = connections(run);
      assert.equal(conns.length, 1, JSON.stringify(run.records));
      assert.equal(conns[0]!.dst, `${A4}:7000`);
      assert.equal(conns[0]!.error, undefined);
      assert.equal(graftEvents(run).length, 1);
    });
  });

  describe('failed destinations', { skip: needs('curl') }, () => {
    it('refused (A4 port 1, the host answers RST): connect fails as natively, the record has the error', async () => {
      const run = await world.graft(['curl', '-sS', '--max-time', '20', `http://${A4}:1/`]);
      const native = await world.native(['curl', '-sS', '--max-time', '20', `http://${A4}:1/`]);
      assert.equal(run.code, 7, run.stderr);
      assert.equal(run.code, native.code);
      assert.ok(run.ms < 5000, `took ${run.ms} ms`);
      assert.equal(run.stdout, '');
      assert.match(run.stderr, /^curl: \(7\) Failed to connect to 198\.51\.100\.7 port 1 after \d+ ms: Couldn't connect to server\n$/);
      const conns = connections(run);
      assert.equal(conns.length, 1, JSON.stringify(run.records));
      assert.equal(conns[0]!.dst, `${A4}:1`);
      assert.equal(conns[0]!.error, 'connect: ECONNREFUSED');
      assert.equal(conns[0]!.bytesDown, 0);
    });

    it('a black hole with --connect-timeout 1s: connect fails ETIMEDOUT after 1 s, the record says so', async () => {
      const run = await world.graft(['curl', '-sS', '--max-time', '20', `http://${BLACKHOLE4}:80/`], {
        graftArgs: ['--connect-timeout', '1s'],
      });
      assert.equal(run.code, 28, run.stderr); // curl: the connect failed ETIMEDOUT (curl reports it as a timeout)
      assert.ok(run.ms < 3500, `took ${run.ms} ms`);
      assert.ok(run.ms >= 1000, `took only ${run.ms} ms: the timeout did not wait`);
      assert.equal(run.stdout, '');
      const conns = connections(run);
      assert.equal(conns.length, 1, JSON.stringify(run.records));
      assert.equal(conns[0]!.dst, `${BLACKHOLE4}:80`);
      assert.match(String(conns[0]!.error), /ETIMEDOUT/);
      assert.equal(conns[0]!.bytesDown, 0);
    });
  });
});
