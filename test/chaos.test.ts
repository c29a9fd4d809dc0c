/** Data faults (toxics) on the proxy path, measured with real clients and servers in the lab. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildC, buildGo } from './lab/build.js';
import { repoRoot } from './lab/paths.js';
import { inSequence } from './lab/shell.js';
import { A4, A6, B4, World, connections } from './lab/world.js';
import { LAB, needs } from './lab/capabilities.js';

const fixture = (name: string): string => join(repoRoot, 'test', 'fixtures', name);

/** python3: N request-response round trips to port 7000 (the server greets and closes); prints the times in ms */
const rtts = (ip: string, n = 5, pauseS = 0): string[] => [
  'python3',
  '-c',
  `import socket, time\nts = []\nfor _ in range(${n}):\n  t = time.time(); s = socket.create_connection(('${ip}', 7000)); s.recv(16); ts.append((time.time() - t) * 1000); s.close(); time.sleep(${pauseS})\nprint(' '.join('%.1f' % x for x in ts))`,
];
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const parseTimes = (out: string): number[] => out.trim().split(' ').map(Number);

describe('toxics', { skip: needs(...LAB, 'go') }, () => {
  let world: World;
  let readprobe: string;
  let goclient: string;
  before(async () => {
    readprobe = buildC('readprobe');
    goclient = buildGo('goclient');
    world = await new World().start();
  });
  after(() => world?.destroy());

  it('latency adds the set delay to a request-response round trip', async () => {
    const base = await world.graft(rtts(A4));
    const slow = await world.graft(rtts(A4), { graftArgs: ['--latency', '200ms'] });
    assert.equal(slow.code, 0, slow.stderr);
    const added = median(parseTimes(slow.stdout)) - median(parseTimes(base.stdout));
    assert.ok(added >= 190 && added <= 400, `added ${added.toFixed(1)} ms`);
    assert.deepEqual(connections(slow)[0]?.faults, ['latency latency=200ms jitter=0ms']);
  });

  it('jitter varies the delay but keeps every byte in order', async () => {
    const run = await world.graft(['python3', fixture('integrity.py'), A4, '9000', '2'], { graftArgs: ['--latency', '50ms±40ms', '--seed', '3'] });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^ok /);
  });

  it('bandwidth limits a 4 MiB transfer to the rate, within 20%', async () => {
    const probe = `import socket, time\ns = socket.create_connection(('${A4}', 9000))\ns.sendall(b'%d\\n' % (4 << 20))\nt = time.time(); got = 0\nimport threading\nthreading.Thread(target=lambda: (s.sendall(b'x' * (4 << 20)), s.shutdown(socket.SHUT_WR)), daemon=True).start()\nwhile got < (4 << 20):\n  d = s.recv(1 << 16)\n  if not d: break\n  got += len(d)\nprint(got, '%.2f' % (time.time() - t))`;
    const run = await world.graft(['python3', '-c', probe], { graftArgs: ['--bandwidth', '1MiB/s'], timeoutMs: 30_000 });
    assert.equal(run.code, 0, run.stderr);
    const [got, secs] = run.stdout.trim().split(' ').map(Number) as [number, number];
    // the server's 128-byte trailer may come in the last read
    assert.ok(got >= 4 << 20 && got <= (4 << 20) + 128, `got ${got}`);
    assert.ok(secs >= 4 * 0.8 && secs <= 4 * 1.2, `4 MiB at 1 MiB/s took ${secs} s`);
  });

  it('slicer keeps bytes intact', async () => {
    const run = await world.graft(['python3', fixture('integrity.py'), A4, '9000', '1'], {
      graftArgs: ['--toxic', 'slicer average_size=700 size_variation=600 direction=both', '--seed', '5'],
      timeoutMs: 60_000,
    });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^ok received=1048576 up=True down=True/);
  });

  it('limit_data closes after exactly N bytes', async () => {
    // the integrity service sends as many bytes as asked for; ask for more
    const probe = `import socket\ns = socket.create_connection(('${A4}', 9000))\ns.sendall(b'100000\\n' + b'y' * 100000)\ngot = 0\nwhile True:\n  d = s.recv(65536)\n  if not d: break\n  got += len(d)\nprint(got)`;
    const run = await world.graft(['python3', '-c', probe], { graftArgs: ['--toxic', 'limit_data bytes=12345'] });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '12345\n');
  });

  it('reset_peer: ECONNRESET in a C client, an error in the Go client', async () => {
    const c = await world.graft([readprobe, A4, '9001'], { graftArgs: ['--reset-after', '300ms'] });
    assert.equal(c.stdout, 'bytes=0 end=ECONNRESET\n', c.stderr);
    const go = await world.graft([goclient, '-v6', `[${A6}]:9001`], { graftArgs: ['--reset-after', '300ms'] });
    assert.notEqual(go.code, 0);
    assert.match(go.stderr, /connection reset by peer/);
    assert.match(String(connections(c)[0]?.error), /reset by a fault/);
  });

  it('timeout stalls the data, then closes', async () => {
    const probe = `import socket, time\nt = time.time(); s = socket.create_connection(('${A4}', 7000))\nd = s.recv(16); e = s.recv(16)\nprint(repr(d), repr(e), '%.1f' % (time.time() - t))`;
    const run = await world.graft(['python3', '-c', probe], { graftArgs: ['--toxic', 'timeout time=600ms'] });
    assert.equal(run.code, 0, run.stderr);
    const [d, e, secs] = run.stdout.trim().split(' ');
    assert.equal(d, "b''", 'the greeting was stalled, never delivered');
    assert.equal(e, "b''");
    assert.ok(Number(secs) >= 0.5 && Number(secs) <= 1.5, `closed after ${secs} s`);
  });

  it('slow_close delivers the data at once and the FIN late', async () => {
    const probe = `import socket, time\nt = time.time(); s = socket.create_connection(('${A4}', 7000))\nd = s.recv(16); t1 = time.time() - t\ne = s.recv(16); t2 = time.time() - t\nprint(repr(d), repr(e), '%.2f' % t1, '%.2f' % t2)`;
    const run = await world.graft(['python3', '-c', probe], { graftArgs: ['--toxic', 'slow_close delay=600ms'] });
    assert.equal(run.code, 0, run.stderr);
    const [d, e, t1, t2] = run.stdout.trim().split(' ');
    assert.equal(d, "b'A\\n'");
    assert.equal(e, "b''");
    assert.ok(Number(t1) < 0.3, `data after ${t1} s`);
    assert.ok(Number(t2) >= 0.55 && Number(t2) <= 1.5, `FIN after ${t2} s`);
  });

  it('toxics on one destination leave another of the same program untouched', async () => {
    const script = inSequence(rtts(A4, 3), rtts(B4, 3));
    const run = await world.graft(script, { graftArgs: ['--toxic', `latency latency=300ms on ${B4}`] });
    assert.equal(run.code, 0, run.stderr);
    const [a, b] = run.stdout.trim().split('\n').map(parseTimes) as [number[], number[]];
    assert.ok(median(a) < 150, `A untouched: ${a.join(' ')}`);
    assert.ok(median(b) >= 290, `B delayed: ${b.join(' ')}`);
    const byDst = (dst: string) => connections(run).filter((c) => c.dst === dst);
    assert.ok(byDst(`${A4}:7000`).every((c) => c.faults === undefined));
    assert.ok(byDst(`${B4}:7000`).every((c) => Array.isArray(c.faults) && c.faults.length === 1));
  });

  it('a seed makes probabilistic faults repeat', async () => {
    const args = ['--toxic', 'latency latency=1ms toxicity=0.5'];
    const pattern = async (seed: string): Promise<string> => {
      // a pause between connections: a record is written when its connection has ended on both sides, which
      // for one with the toxic may be after the program's next connect began
      const run = await world.graft(rtts(A4, 12, 0.05), { graftArgs: [...args, '--seed', seed] });
      assert.equal(run.code, 0, run.stderr);
      return connections(run)
        .map((c) => (c.faults ? 'x' : '.'))
        .join('');
    };
    const first = await pattern('42');
    assert.equal(await pattern('42'), first);
    assert.match(first, /x/);
    assert.match(first, /\./);
    assert.notEqual(await pattern('7'), first);
  });
});
