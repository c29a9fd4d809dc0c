/** What the proxy guarantees: bytes intact both ways, half-close, no open relay. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { A4, A6, World, connections } from './lab/world.js';
import { repoRoot } from './lab/paths.js';
import { LAB, needs } from './lab/capabilities.js';

const fixture = (name: string): string => join(repoRoot, 'test', 'fixtures', name);

describe('proxy relay', { skip: needs(...LAB) }, () => {
  let world: World;
  before(async () => {
    world = await new World().start();
  });
  after(() => world?.destroy());

  it('moves 64 MiB each way with matching SHA-256', async () => {
    const run = await world.graft(['python3', fixture('integrity.py'), A4, '9000', '64'], { timeoutMs: 120_000 });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.equal(run.stdout.trim(), `ok received=${64 << 20} up=True down=True`);
    const [conn] = connections(run);
    assert.ok(conn);
    assert.equal(conn.bytesUp, (64 << 20) + `${64 << 20}\n`.length);
    assert.equal(conn.bytesDown, (64 << 20) + 128);
    assert.equal(conn.error, undefined);
  });

  it('keeps bytes intact over IPv6 too', async () => {
    const run = await world.graft(['python3', fixture('integrity.py'), A6, '9000', '8'], { timeoutMs: 60_000 });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^ok /);
  });

  it('passes a half-close through while the other direction goes on', async () => {
    const run = await world.graft(['python3', fixture('halfclose.py'), A4, '9001']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'got 100000\n');
    const [conn] = connections(run);
    assert.equal(conn?.bytesUp, 100000);
    assert.equal(conn?.bytesDown, 'got 100000\n'.length);
  });

  it("passes a reset on both ways, as natively: the destination's reaches the program, the program's reaches the destination", async () => {
    // the destination answers, then resets while the program reads on
    const probe = [
      'import socket, errno',
      `s = socket.create_connection(('${A4}', 7008))`,
      "s.sendall(b'hello\\n')",
      'got = b""',
      'try:',
      '    while True:',
      '        d = s.recv(100)',
      '        if not d: break',
      '        got += d',
      '    print(got, "eof")',
      'except OSError as e:',
      '    print(got, errno.errorcode[e.errno])',
    ].join('\n');
    const native = await world.native(['python3', '-c', probe]);
    const run = await world.graft(['python3', '-c', probe]);
    assert.equal(native.stdout, "b'bye\\n' ECONNRESET\n", native.stderr);
    assert.equal(run.stdout, native.stdout, run.stderr);
    const [conn] = connections(run);
    assert.equal(conn?.error, 'upstream: ECONNRESET');
    assert.equal(conn?.bytesDown, 4);

    // the program closes with unread bytes (its kernel sends an RST): the
    // destination's side is reset too, and the record says whose it was
    const abort = ['import socket, time', `s = socket.create_connection(('${A4}', 7007))`, "s.sendall(b'unread\\n')", 'time.sleep(0.3)', 's.close()'].join(
      '\n',
    );
    const aborted = await world.graft(['python3', '-c', abort]);
    assert.equal(aborted.code, 0, aborted.stderr);
    const [closed] = connections(aborted);
    assert.equal(closed?.error, 'program: ECONNRESET');
    assert.equal(closed?.bytesUp, 7);
  });

  it("relays only the program's own socket: another local user can neither take its port nor reach the relay", { skip: needs('setpriv') }, async () => {
    // The program starts a connect (a handshake delay fault holds it 1.5 s),
    // finds its socket's local port and graft's black hole port in
    // /proc/net/tcp, and gives the connect up (closes the socket). Another
    // user then tries what would hijack the connection: take the program's
    // port, and connect to graft's black hole.
    const attacker = [
      'import errno, socket, sys',
      'port, hole = int(sys.argv[1]), int(sys.argv[2])',
      'b = socket.socket()',
      'try:',
      '    b.bind(("127.0.0.1", port)); print("bound")',
      'except OSError as e:',
      '    print(errno.errorcode[e.errno])',
      'try:',
      '    c = socket.create_connection(("127.0.0.1", hole), timeout=3); print(repr(c.recv(16)))',
      'except OSError as e:',
      '    print(type(e).__name__)',
    ].join('\n');
    const probe = [
      'import os, socket, subprocess, sys',
      's = socket.socket()',
      's.setblocking(False)',
      `s.connect_ex(('${A4}', 7000))`,
      'ino = str(os.fstat(s.fileno()).st_ino)',
      'f = [f for f in (l.split() for l in open("/proc/net/tcp").readlines()[1:]) if f[9] == ino][0]',
      'port, hole = int(f[1].split(":")[1], 16), int(f[2].split(":")[1], 16)',
      's.close()',
      'cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", sys.argv[1], str(port), str(hole)]',
      'print(subprocess.run(cmd, capture_output=True, text=True).stdout.strip())',
    ].join('\n');
    const mark = world.events.length;
    const run = await world.graft(['python3', '-c', probe, attacker], { graftArgs: ['--fault', `delay time=1500ms on ${A4}:7000`] });
    assert.equal(run.code, 0, run.stderr);
    // the port stays the program's socket's (graft holds it until the proxy
    // is done), and graft's black hole answers nobody
    assert.deepEqual(run.stdout.trim().split('\n'), ['EADDRINUSE', 'TimeoutError'], run.stdout);
    const [conn] = connections(run);
    assert.equal(connections(run).length, 1);
    assert.equal(conn?.bytesUp, 0);
    // the destination saw graft's one dial for the program's connect, nothing more
    assert.equal(world.since(mark).length, 1, JSON.stringify(world.since(mark)));
  });
  it("the destination sees the address the program's getsockname shows, and a source the program bound", async () => {
    const probe = (bind: string): string =>
      ['import socket', 's = socket.socket()', bind, `s.connect(('${A4}', 7000))`, 'print("%s %d" % s.getsockname())', 's.recv(16)'].join('\n');
    for (const bind of ['', "s.bind(('192.0.2.1', 0))"]) {
      const mark = world.events.length;
      const run = await world.graft(['python3', '-c', probe(bind)]);
      const native = await world.native(['python3', '-c', probe(bind)]);
      assert.equal(run.code, 0, run.stderr);
      const [addr, port] = run.stdout.trim().split(' ');
      // the same source address as natively (the lab's client address)
      assert.equal(addr, native.stdout.trim().split(' ')[0]);
      const seen = world.since(mark).find((e) => e.service === 'name');
      assert.equal(seen?.remote, addr, JSON.stringify(world.since(mark)));
      // (the port is the proxy's own: docs/fidelity.md)
      assert.ok(Number(port) > 0);
    }
  });
});
