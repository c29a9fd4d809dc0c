/**
 * What getpeername(2) and getsockname(2) tell a program about a socket
 * graft redirected to its proxy: the same as natively. The peer is the
 * destination the program gave connect, in its form; the local address is
 * the one the kernel would have picked (or the program bound), with the
 * socket's own port. The program is test/fixtures/nameprobe.c, run
 * natively and under graft (the proxy, the default path); a static Go
 * client checks what Go learns after each connect.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { A4, A6, BLACKHOLE4, World, connections, type GraftRun } from './lab/world.js';
import { buildC, buildGo } from './lab/build.js';
import { LAB, needs } from './lab/capabilities.js';

const CLIENT4 = '192.0.2.1';
const CLIENT6 = '2001:db8:1::1';

interface Names {
  peer: string;
  local: { family: string; addr: string; port: number; len: number } | string;
}

/** The "peer" and "local" lines nameprobe prints after one connect. */
function namesOf(stdout: string): Names {
  const peer = /^peer (.*)$/m.exec(stdout)?.[1];
  const local = /^local (AF_INET6?) (\S+) (\d+) len (\d+)$/m.exec(stdout);
  assert.ok(peer !== undefined, stdout);
  return {
    peer,
    local: local ? { family: local[1]!, addr: local[2]!, port: Number(local[3]), len: Number(local[4]) } : (/^local (.*)$/m.exec(stdout)?.[1] ?? ''),
  };
}

function ok(run: GraftRun): void {
  assert.equal(run.code, 0, `exit ${run.code} ${run.signal ?? ''}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
}

/** The port of the one proxied connection's program-side socket. */
function proxiedPort(run: GraftRun): number {
  const conns = connections(run);
  assert.equal(conns.length, 1, JSON.stringify(run.records));
  const m = /:(\d+)$/.exec(String(conns[0]!.local));
  assert.ok(m, String(conns[0]!.local));
  return Number(m[1]);
}

describe('getpeername and getsockname under graft', { skip: needs(...LAB) }, () => {
  let world: World;
  let nameprobe: string;
  before(async () => {
    nameprobe = buildC('nameprobe');
    world = await new World().start();
  });
  after(() => world?.destroy());

  const cases: [string, string, string][] = [
    ['v4', `AF_INET ${A4} 7000 len 16`, CLIENT4],
    ['v6', `AF_INET6 ${A6} 7000 len 28`, CLIENT6],
    ['mapped', `AF_INET6 ::ffff:${A4} 7000 len 28`, `::ffff:${CLIENT4}`],
    ['bound', `AF_INET ${A4} 7000 len 16`, CLIENT4],
  ];
  for (const [name, peer, localAddr] of cases) {
    it(`${name}: the destination as the peer, the kernel's source with the socket's own port`, async () => {
      const native = await world.native([nameprobe, name]);
      ok(native);
      const want = namesOf(native.stdout);
      assert.equal(want.peer, peer, native.stdout);
      const run = await world.graft([nameprobe, name]);
      ok(run);
      const got = namesOf(run.stdout);
      assert.equal(got.peer, want.peer, run.stdout);
      assert.equal(typeof got.local, 'object', run.stdout);
      const [g, w] = [got.local as Exclude<Names['local'], string>, want.local as Exclude<Names['local'], string>];
      assert.deepEqual([g.family, g.addr, g.len], [w.family, w.addr, w.len], run.stdout);
      assert.equal(g.addr, localAddr);
      assert.equal(g.port, proxiedPort(run), "the socket's own port");
      assert.doesNotMatch(run.stdout, /flowinfo|scope/);
    });
  }

  it('buffers too small: the same bytes and lengths as natively; EINVAL, EFAULT', async () => {
    const native = await world.native([nameprobe, 'small']);
    ok(native);
    const run = await world.graft([nameprobe, 'small']);
    ok(run);
    assert.equal(run.stdout, native.stdout);
    assert.match(native.stdout, /^peer-bytes rc 0 len 28: 0a 00 1b 58 aa aa$/m); // 4 bytes: family, port
    assert.match(native.stdout, /^local-bytes rc 0 len 28: 0a 00 aa$/m);
    assert.match(native.stdout, /^peer negative-length rc -1 EINVAL$/m);
    assert.match(native.stdout, /^peer bad-pointer rc -1 EFAULT$/m);
    assert.match(native.stdout, /^local bad-length-pointer rc -1 EFAULT$/m);
    assert.equal(connections(run).length, 1);
  });

  it('still connecting: ENOTCONN as natively, the destination once connected', async () => {
    // natively: a destination that never answers; under graft: a handshake
    // delay (the socket waits in graft's black hole, then the proxy
    // completes it from there)
    const native = await world.native([nameprobe, 'connecting', BLACKHOLE4, '80', '300']);
    ok(native);
    assert.match(
      native.stdout,
      new RegExp(`^connect EINPROGRESS\npeer ENOTCONN\nlocal AF_INET ${CLIENT4.replace(/\./g, '\\.')} \\d+ len 16\nstill connecting\n$`),
    );
    const run = await world.graft([nameprobe, 'connecting', A4, '7000', '5000'], { graftArgs: ['--fault', 'delay time=400ms'] });
    ok(run);
    const port = proxiedPort(run);
    assert.equal(
      run.stdout,
      `connect EINPROGRESS\npeer ENOTCONN\nlocal AF_INET ${CLIENT4} ${port} len 16\nwritable\npeer AF_INET ${A4} 7000 len 16\nlocal AF_INET ${CLIENT4} ${port} len 16\n`,
    );
  });

  it('a 32-bit program: through socketcall and through the direct calls', { skip: needs('i386-exec') }, async () => {
    for (const [variant, flags] of [
      ['i386-socketcall', ['-m32']],
      ['i386-direct', ['-m32', '-DI386_DIRECT']],
    ] as const) {
      const probe = buildC('nameprobe', flags, variant);
      for (const name of ['v4', 'mapped', 'small']) {
        const native = await world.native([probe, name]);
        ok(native);
        const run = await world.graft([probe, name]);
        ok(run);
        if (name === 'small') {
          assert.equal(run.stdout, native.stdout, `${variant} ${name}`);
          continue;
        }
        const [got, want] = [namesOf(run.stdout), namesOf(native.stdout)];
        assert.equal(got.peer, want.peer, `${variant} ${name}`);
        const [g, w] = [got.local as Exclude<Names['local'], string>, want.local as Exclude<Names['local'], string>];
        assert.deepEqual([g.family, g.addr, g.len], [w.family, w.addr, w.len], `${variant} ${name}`);
        assert.equal(g.port, proxiedPort(run), `${variant} ${name}`);
      }
    }
  });

  describe('a static Go client', { skip: needs('go') }, () => {
    let goclient: string;
    before(() => {
      goclient = buildGo('goclient');
    });
    for (const [what, args, remote, local] of [
      ['IPv4', ['-tcp', `${A4}:7000`], `${A4}:7000`, CLIENT4],
      ['IPv6', ['-v6', `[${A6}]:7000`], `[${A6}]:7000`, `[${CLIENT6}]`],
    ] as const) {
      it(`${what}: RemoteAddr is the destination, LocalAddr the source with the socket's port`, async () => {
        const native = await world.native([goclient, '-names', ...args]);
        const run = await world.graft([goclient, '-names', ...args]);
        const line = (r: GraftRun): string => /^remote .*$/m.exec(r.stdout)?.[0] ?? r.stdout + r.stderr;
        assert.match(line(native), new RegExp(`^remote ${remote.replace(/[[\].]/g, '\\$&')} local ${local.replace(/[[\].]/g, '\\$&')}:\\d+$`));
        const m = /^remote (\S+) local (\S+):(\d+)$/.exec(line(run));
        assert.ok(m, line(run));
        assert.equal(m[1], remote);
        assert.equal(m[2], local);
        assert.equal(Number(m[3]), proxiedPort(run));
      });
    }
  });
});
