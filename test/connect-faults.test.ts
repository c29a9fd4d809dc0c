/**
 * Faults on the connect itself, decided in the tracer: the program sees them
 * through the path it already uses (a blocking connect's errno; for a
 * non-blocking one, EINPROGRESS then SO_ERROR for refusals, as the kernel
 * reports a real one).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildC, buildGo } from './lab/build.js';
import { inSequence } from './lab/shell.js';
import { A4, B4, World } from './lab/world.js';

/** python3: 12 connects to A:7000, '.' for each that worked, 'x' for each refused */
const pattern = (ip = A4, n = 12): string[] => [
  'python3',
  '-c',
  `import socket\nout = ''\nfor i in range(${n}):\n  try:\n    socket.create_connection(('${ip}', 7000)).recv(4); out += '.'\n  except OSError: out += 'x'\nprint(out)`,
];

/** python3: one non-blocking connect; prints connect_ex's errno, SO_ERROR and seconds */
const nonBlocking = [
  'python3',
  '-c',
  `import socket, errno, select, time\ns = socket.socket(); s.setblocking(False); t = time.time()\nr = s.connect_ex(('${A4}', 7000)); select.select([], [s], [], 5)\nprint(errno.errorcode.get(r, r), errno.errorcode.get(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), 'ok'), '%.2f' % (time.time() - t))`,
];

describe('connect faults', () => {
  let world: World;
  let readprobe: string;
  let goclient: string;
  before(async () => {
    readprobe = buildC('readprobe');
    goclient = buildGo('goclient');
    world = await new World().start();
  });
  after(() => world?.destroy());

  it('a blocking C client gets the chosen errno', async () => {
    for (const errno of ['ECONNREFUSED', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNRESET']) {
      const run = await world.graft([readprobe, A4, '7000'], { graftArgs: ['--refuse', errno] });
      assert.equal(run.stdout, `connect=${errno}\n`, errno);
      const refused = run.records.filter((r) => r.event === 'refused');
      assert.deepEqual(refused.map((r) => [r.errno, r.faults]), [[errno, [`refuse errno=${errno}`]]]);
    }
  });

  it('a non-blocking connect sees a refusal through SO_ERROR, as a real one', async () => {
    const run = await world.graft(nonBlocking, { graftArgs: ['--refuse', 'ECONNREFUSED'] });
    assert.match(run.stdout, /^EINPROGRESS ECONNREFUSED /);
  });

  it('the static Go binary (non-blocking) and curl report the fault', async () => {
    const go = await world.graft([goclient, '-tcp', `${A4}:7000`], { graftArgs: ['--refuse', 'ECONNREFUSED'] });
    assert.notEqual(go.code, 0);
    assert.match(go.stderr, /connection refused/);
    for (const [errno, message] of [
      ['ENETUNREACH', /network is unreachable/],
      ['ETIMEDOUT', /connection timed out/],
      ['EHOSTUNREACH', /no route to host/],
      ['ECONNRESET', /connection reset by peer/],
    ] as const) {
      const go2 = await world.graft([goclient, '-tcp', `${A4}:7000`], { graftArgs: ['--refuse', errno] });
      assert.notEqual(go2.code, 0, errno);
      assert.match(go2.stderr, message, errno);
    }
    const curl = await world.graft(['curl', '-sS', `http://${A4}:8080/`], { graftArgs: ['--refuse', 'ECONNREFUSED'] });
    assert.equal(curl.code, 7);
    assert.match(curl.stderr, /Couldn't connect to server|Connection refused/);
  });

  it('ETIMEDOUT after a delay, and a handshake delay', async () => {
    const timed = await world.graft(['python3', '-c', `import socket, time\nt = time.time()\ntry: socket.create_connection(('${A4}', 7000))\nexcept OSError as e: print(e.errno, '%.1f' % (time.time() - t))`], {
      graftArgs: ['--fault', 'refuse errno=ETIMEDOUT delay=800ms'],
    });
    const [errno, secs] = timed.stdout.trim().split(' ');
    assert.equal(errno, '110');
    assert.ok(Number(secs) >= 0.7 && Number(secs) <= 2, `after ${secs} s`);
    const delayed = await world.graft(nonBlocking, { graftArgs: ['--fault', 'delay time=500ms'] });
    const [, soError, took] = delayed.stdout.trim().split(' ');
    assert.equal(soError, 'ok');
    assert.ok(Number(took) >= 0.45 && Number(took) <= 1.5, `took ${took} s`);
    assert.deepEqual(delayed.records.filter((r) => r.event === 'delayed').map((r) => r.faults), [['delay time=500ms']]);
  });

  it('which connects: the first N, every Nth, after N', async () => {
    const run = async (fault: string) => (await world.graft(pattern(), { graftArgs: ['--fault', fault] })).stdout.trim();
    assert.equal(await run('refuse first=3'), 'xxx.........');
    assert.equal(await run('refuse every=4'), '...x...x...x');
    assert.equal(await run('refuse after=9'), '.........xxx');
  });

  it('a probability with a fixed seed gives the same outcome twice', async () => {
    const run = async (seed: string) => (await world.graft(pattern(A4, 20), { graftArgs: ['--refuse', 'ECONNREFUSED@0.5', '--seed', seed] })).stdout.trim();
    const first = await run('11');
    assert.equal(await run('11'), first);
    assert.match(first, /x/);
    assert.match(first, /\./);
  });

  it('a fault on one destination leaves another untouched', async () => {
    const run = await world.graft(inSequence(pattern(A4, 3), pattern(B4, 3)), {
      graftArgs: ['--fault', `refuse on ${B4}`],
    });
    assert.equal(run.stdout, '...\nxxx\n');
  });

  it('bad faults are usage errors naming the problem', async () => {
    for (const [args, want] of [
      [['--refuse', 'EWHAT'], /--refuse: fault 'refuse errno=EWHAT': 'EWHAT' is not an errno/],
      [['--refuse', 'ECONNREFUSED@2'], /probability '2' is not between 0 and 1/],
      [['--fault', 'refuse first=2 every=3'], /give one of probability, first, every, after/],
      [['--fault', 'delay'], /delay needs time=/],
      [['--fault', 'delay time=30s'], /a delay of at most 8s/],
      [['--fault', 'explode'], /'explode' is not a connect fault/],
    ] as const) {
      const run = await world.graft(['true'], { graftArgs: [...args] });
      assert.equal(run.code, 2, args.join(' '));
      assert.match(run.stderr, want);
    }
  });
});
