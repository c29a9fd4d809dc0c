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

  it('resets a local connection nobody registered (no open relay)', async () => {
    // A program under graft finds the proxy's port in /proc/net/tcp (its
    // socket's peer as the kernel has it; getpeername shows the
    // destination); a second process then tries to use that port directly.
    const probe = [
      'import os, socket, subprocess, sys',
      `s = socket.create_connection(('${A4}', 7000))`,
      'ino = str(os.fstat(s.fileno()).st_ino)',
      'port = [int(f[2].split(":")[1], 16) for f in (l.split() for l in open("/proc/net/tcp").readlines()[1:]) if f[9] == ino][0]',
      's.recv(16)',
      'code = "import socket\\ntry:\\n  c = socket.create_connection((\'127.0.0.1\', %d), timeout=5)\\n  print(repr(c.recv(16)))\\nexcept OSError as e:\\n  print(type(e).__name__)" % port',
      // env -i keeps the child out of nothing: it IS traced, but its connect
      // goes to loopback, which graft passes untouched, so the proxy sees an
      // unregistered peer.
      'print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip())',
    ].join('\n');
    const run = await world.graft(['python3', '-c', probe], { graftArgs: ['--log-level', 'debug'] });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(['ConnectionResetError', "b''"].includes(run.stdout.trim()), `got ${run.stdout}`);
    assert.ok(
      run.records.some((r) => r.event === 'unregistered'),
      'the proxy logs the unregistered peer',
    );
    assert.equal(connections(run).length, 1);
  });
});
