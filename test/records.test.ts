/** Records are complete: every proxied connection gets one, also when the program exits first; graft then exits at once. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { A4, BLACKHOLE4, World, connections } from './lab/world.js';
import { LAB, needs } from './lab/capabilities.js';

describe('records at the program exit', { skip: needs(...LAB) }, () => {
  let world: World;
  before(async () => {
    world = await new World().start();
  });
  after(() => world?.destroy());

  it('six data-less connections, then an immediate exit: all six records, every run', async () => {
    // each connection is made and left as it is; the program exits at once
    const program = ['python3', '-c', `import os, socket\nss = [socket.create_connection(('${A4}', 9001)) for _ in range(6)]\nos._exit(0)`];
    for (let run = 0; run < 5; run++) {
      const r = await world.graft(program);
      assert.equal(r.code, 0, r.stderr);
      const conns = connections(r);
      assert.equal(conns.length, 6, `run ${run}: ${JSON.stringify(r.records)}`);
      assert.equal(new Set(conns.map((c) => c.local)).size, 6);
      for (const c of conns) {
        assert.equal(c.dst, `${A4}:9001`);
        assert.equal(c.bytesUp, 0);
        // each one reached the proxy: the program's connect had returned
        assert.notEqual(c.atExit, 'unaccepted', JSON.stringify(c));
      }
    }
  });

  it('a connection open and one still dialing a silent host at exit: both recorded as such, graft exits at once', async () => {
    // One connection sends "hello" and stays open; a thread's connect to a
    // host that drops every packet is still waiting on graft's dial. The
    // program prints the time and exits.
    const program = [
      'python3',
      '-c',
      [
        'import os, socket, threading, time',
        `s = socket.create_connection(('${A4}', 9001))`,
        "s.sendall(b'hello')",
        `threading.Thread(target=lambda: socket.create_connection(('${BLACKHOLE4}', 80)), daemon=True).start()`,
        'time.sleep(0.3)',
        'print(time.time(), flush=True)',
        'os._exit(0)',
      ].join('\n'),
    ];
    let started = 0;
    const r = await world.graft(program, { onSpawn: () => (started = Date.now()) });
    const exitedAt = started + r.ms;
    assert.equal(r.code, 0, r.stderr);
    const delay = exitedAt - Number(r.stdout.trim()) * 1000;
    assert.ok(delay < 1000, `graft exited ${delay.toFixed(0)} ms after the program (the old grace was 2 s)`);
    const conns = connections(r);
    assert.equal(conns.length, 2, JSON.stringify(r.records));
    const open = conns.find((c) => c.dst === `${A4}:9001`);
    const dialing = conns.find((c) => c.dst === `${BLACKHOLE4}:80`);
    assert.equal(open?.bytesUp, 5);
    // the server answers the program's FIN (sent by its kernel at exit):
    // graft either learns of the exit first and winds the connection down,
    // or hands the answer to the program's closed socket first, which
    // resets it, as it would natively (the tracer relays this connection
    // and often sees the answer before the exit)
    if (open?.atExit === 'open') assert.equal(open.error, undefined, JSON.stringify(open));
    else assert.match(String(open?.error), /^program: (EPIPE|ECONNRESET)$/, JSON.stringify(open));
    assert.equal(dialing?.atExit, 'pending', JSON.stringify(dialing));
    assert.equal(dialing?.bytesUp, 0);
    assert.match(String(dialing?.error), /exited while its destination was being dialed/);
  });
});
