/**
 * Faults on the connect itself, decided in the tracer: the program sees them
 * through the path it already uses (a blocking connect's errno; for a
 * non-blocking one, EINPROGRESS at once, then poll and SO_ERROR, as the
 * kernel reports an answer from the network).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildC, buildGo } from './lab/build.js';
import { repoRoot } from './lab/paths.js';
import { inSequence } from './lab/shell.js';
import { A4, A6, B4, World } from './lab/world.js';
import { LAB, needs } from './lab/capabilities.js';

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

/** nbprobe's line as fields: connect, connect_ms, poll, poll_ms, so_error, next */
const fields = (line: string): Record<string, string> =>
  Object.fromEntries(
    line
      .trim()
      .split(' ')
      .map((f) => f.split('=') as [string, string]),
  );

/** a Node client's connect: outcome, ms, ticks of a 20 ms timer meanwhile */
const nodeConnect = (ip: string, port: number) => [process.execPath, join(repoRoot, 'dist/test/fixtures/connect-timing.js'), ip, String(port)];
const parseNode = (out: string) => JSON.parse(out) as { outcome: string; ms: number; ticks: number; data: string };

describe('connect faults', { skip: needs(...LAB, 'go') }, () => {
  let world: World;
  let readprobe: string;
  let nbprobe: string;
  let goclient: string;
  before(async () => {
    readprobe = buildC('readprobe');
    nbprobe = buildC('nbprobe');
    goclient = buildGo('goclient');
    world = await new World().start();
  });
  after(() => world?.destroy());

  it('a blocking C client gets the chosen errno', async () => {
    for (const errno of ['ECONNREFUSED', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNRESET']) {
      const run = await world.graft([readprobe, A4, '7000'], { graftArgs: ['--refuse', errno] });
      assert.equal(run.stdout, `connect=${errno}\n`, errno);
      const refused = run.records.filter((r) => r.event === 'refused');
      assert.deepEqual(
        refused.map((r) => [r.errno, r.faults]),
        [[errno, [`refuse errno=${errno}`]]],
      );
    }
  });

  it('a non-blocking connect sees a refusal through SO_ERROR, as a real one', async () => {
    const run = await world.graft(nonBlocking, { graftArgs: ['--refuse', 'ECONNREFUSED'] });
    assert.match(run.stdout, /^EINPROGRESS ECONNREFUSED /);
  });

  it('a non-blocking connect learns of a fault later, through poll and SO_ERROR, like a real refusal', async () => {
    // the shape of a real asynchronous failure, from this kernel: nothing
    // listens on A:7999, so the host answers the SYN with a RST
    const real = fields(world.client.run(nbprobe, A4, '7999'));
    assert.deepEqual([real.connect, real.poll, real.so_error, real.next], ['EINPROGRESS', 'OUT|ERR|HUP', 'ECONNREFUSED', 'ECONNABORTED']);
    for (const [errno, delay] of [
      ['ETIMEDOUT', 300],
      ['ECONNRESET', 0],
      ['ECONNRESET', 300],
      ['ECONNREFUSED', 300],
      ['EHOSTUNREACH', 300],
      ['ENETUNREACH', 300],
    ] as const) {
      const what = `${errno} delay=${delay}ms`;
      const run = await world.graft([nbprobe, A4, '7000'], { graftArgs: ['--fault', `refuse errno=${errno} delay=${delay}ms`] });
      const got = fields(run.stdout);
      // connect() does not wait: the answer comes through poll
      assert.deepEqual([got.connect, got.poll, got.so_error, got.next], ['EINPROGRESS', real.poll, errno, real.next], what);
      assert.ok(Number(got.connect_ms) < 100, `${what}: connect() took ${got.connect_ms} ms`);
      assert.ok(Number(got.poll_ms) >= delay - 20 && Number(got.poll_ms) < delay + 1000, `${what}: answered after ${got.poll_ms} ms`);
      assert.deepEqual(
        run.records.filter((r) => r.event === 'refused').map((r) => r.errno),
        [errno],
        what,
      );
    }
    // a local routing answer is connect()'s own, at once, as without graft
    const unreach = fields((await world.graft([nbprobe, A4, '7000'], { graftArgs: ['--refuse', 'ENETUNREACH'] })).stdout);
    assert.equal(unreach.connect, 'ENETUNREACH');
  });

  it('a 32-bit program learns of faults the same way, through socketcall and through the direct calls', { skip: needs('i386-exec') }, async () => {
    for (const [variant, flags] of [
      ['i386-socketcall', ['-m32']],
      ['i386-direct', ['-m32', '-DI386_DIRECT']],
    ] as const) {
      const probe = buildC('nbprobe', flags, variant);
      for (const [graftArgs, want] of [
        [[], ['EINPROGRESS', 'OUT', '0', 'A']],
        [
          ['--fault', 'refuse errno=ETIMEDOUT delay=200ms'],
          ['EINPROGRESS', 'OUT|ERR|HUP', 'ETIMEDOUT', 'ECONNABORTED'],
        ],
        [
          ['--fault', 'delay time=200ms'],
          ['EINPROGRESS', 'OUT', '0', 'A'],
        ],
      ] as const) {
        const got = fields((await world.graft([probe, A4, '7000'], { graftArgs: [...graftArgs] })).stdout);
        assert.deepEqual([got.connect, got.poll, got.so_error, got.next], want, `${variant} ${graftArgs.join(' ')}`);
        if (graftArgs.length) assert.ok(Number(got.poll_ms) >= 180, `${variant} ${graftArgs.join(' ')}: after ${got.poll_ms} ms`);
      }
    }
  });

  it('a handshake delay on a non-blocking connect: EINPROGRESS at once, connected after the delay', async () => {
    for (const graftArgs of [[], ['--mode', 'inplace', '--mark', '0x10']]) {
      const run = await world.graft([nbprobe, A4, '7000'], { graftArgs: [...graftArgs, '--fault', 'delay time=400ms'] });
      const got = fields(run.stdout);
      const what = graftArgs.join(' ') || 'default';
      assert.deepEqual([got.connect, got.poll, got.so_error, got.next], ['EINPROGRESS', 'OUT', '0', 'A'], what);
      assert.ok(Number(got.connect_ms) < 100, `${what}: connect() took ${got.connect_ms} ms`);
      assert.ok(Number(got.poll_ms) >= 380 && Number(got.poll_ms) < 1400, `${what}: connected after ${got.poll_ms} ms`);
      assert.deepEqual(
        run.records.map((r) => [r.event, r.faults]),
        [
          ['delayed', ['delay time=400ms']],
          ['connection', ['delay time=400ms']],
        ],
        what,
      );
    }
    // a socket the program bound to its own address first
    const bound = await world.graft(
      [
        'python3',
        '-c',
        `import socket, select\ns = socket.socket(); s.bind(('192.0.2.1', 0)); s.setblocking(False)\ns.connect_ex(('${A4}', 7000)); select.select([], [s], [], 5)\nselect.select([s], [], [], 5); print(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), s.recv(8).decode().strip())`,
      ],
      { graftArgs: ['--fault', 'delay time=300ms'] },
    );
    assert.equal(bound.stdout.trim(), '0 A');
    // a rule that refuses: the refusal comes after the delay, the same way
    const refused = fields(
      (await world.graft([nbprobe, A4, '7000'], { graftArgs: ['--rule', `${A4} refuse ECONNREFUSED`, '--fault', 'delay time=300ms'] })).stdout,
    );
    assert.deepEqual([refused.connect, refused.so_error], ['EINPROGRESS', 'ECONNREFUSED']);
    assert.ok(Number(refused.poll_ms) >= 280, `refused after ${refused.poll_ms} ms`);
  });

  it("a Node client gets the fault as its connect's error, and its event loop runs meanwhile", async () => {
    for (const errno of ['ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH']) {
      const run = await world.graft(nodeConnect(A4, 7000), { graftArgs: ['--fault', `refuse errno=${errno} delay=400ms`] });
      const got = parseNode(run.stdout);
      assert.equal(got.outcome, errno);
      assert.ok(got.ms >= 380 && got.ms < 1400, `${errno} after ${got.ms} ms`);
      assert.ok(got.ticks >= 5, `${errno}: the timer ticked ${got.ticks} times in ${got.ms} ms`);
    }
    const delayed = parseNode((await world.graft(nodeConnect(A6, 7000), { graftArgs: ['--fault', 'delay time=400ms'] })).stdout);
    assert.deepEqual([delayed.outcome, delayed.data], ['connect', 'A']);
    assert.ok(delayed.ms >= 380 && delayed.ms < 1400, `connected after ${delayed.ms} ms`);
    assert.ok(delayed.ticks >= 5, `the timer ticked ${delayed.ticks} times in ${delayed.ms} ms`);
  });

  it('a burst of connects from one event loop, each with its fault, all end as chosen', async () => {
    // every fault is due while the tracer is busy with the burst: a due
    // time must not wait for the program's next stop
    const burst = [process.execPath, join(repoRoot, 'dist/test/fixtures/connect-burst.js'), A4, '7000', '300'];
    const faults = [
      'refuse errno=ETIMEDOUT delay=200ms probability=0.3',
      'delay time=100ms probability=0.3',
      'refuse errno=ECONNRESET probability=0.2',
      'refuse probability=0.2',
    ];
    const run = await world.graft(burst, { graftArgs: ['--seed', '3', ...faults.flatMap((f) => ['--fault', f])], timeoutMs: 30_000 });
    const got = JSON.parse(run.stdout) as Record<string, number>;
    assert.equal(got.stuck, undefined, run.stdout);
    assert.deepEqual(Object.keys(got).sort(), ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ok']);
    assert.equal(
      Object.values(got).reduce((a, b) => a + b),
      300,
    );
    const refused = run.records.filter((r) => r.event === 'refused');
    for (const errno of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT']) assert.equal(got[errno], refused.filter((r) => r.errno === errno).length, errno);
  });

  it('the static Go binary (non-blocking) and curl report the fault', { skip: needs('curl') }, async () => {
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
    // curl -v names the errno it got, from connect() itself ("Immediate
    // connect fail") or later through SO_ERROR ("connect to ... failed")
    for (const [fault, code, message] of [
      ['refuse errno=ECONNREFUSED', 7, /connect to .* failed: Connection refused/],
      ['refuse errno=ETIMEDOUT delay=200ms', 28, /connect to .* failed: Connection timed out/],
      ['refuse errno=ECONNRESET', 7, /connect to .* failed: Connection reset by peer/],
      ['refuse errno=EHOSTUNREACH delay=100ms', 7, /connect to .* failed: No route to host/],
      ['refuse errno=ENETUNREACH delay=100ms', 7, /connect to .* failed: Network is unreachable/],
      ['refuse errno=ENETUNREACH', 7, /Immediate connect fail for .*: Network is unreachable/],
      ['refuse errno=EHOSTUNREACH', 7, /Immediate connect fail for .*: No route to host/],
    ] as const) {
      const curl = await world.graft(['curl', '-sS', '-v', `http://${A4}:8080/`], { graftArgs: ['--fault', fault] });
      assert.equal(curl.code, code, fault);
      assert.match(curl.stderr, message, fault);
    }
  });

  it('ETIMEDOUT after a delay, and a handshake delay', { skip: needs('curl') }, async () => {
    const timed = await world.graft(
      [
        'python3',
        '-c',
        `import socket, time\nt = time.time()\ntry: socket.create_connection(('${A4}', 7000))\nexcept OSError as e: print(e.errno, '%.1f' % (time.time() - t))`,
      ],
      {
        graftArgs: ['--fault', 'refuse errno=ETIMEDOUT delay=800ms'],
      },
    );
    const [errno, secs] = timed.stdout.trim().split(' ');
    assert.equal(errno, '110');
    assert.ok(Number(secs) >= 0.7 && Number(secs) <= 2, `after ${secs} s`);
    const delayed = await world.graft(nonBlocking, { graftArgs: ['--fault', 'delay time=500ms'] });
    const [, soError, took] = delayed.stdout.trim().split(' ');
    assert.equal(soError, 'ok');
    assert.ok(Number(took) >= 0.45 && Number(took) <= 1.5, `took ${took} s`);
    assert.deepEqual(
      delayed.records.filter((r) => r.event === 'delayed').map((r) => r.faults),
      [['delay time=500ms']],
    );
    // the static Go binary and curl connect after the delay
    const go = await world.graft([goclient, '-tcp', `${A4}:7000`], { graftArgs: ['--fault', 'delay time=400ms'] });
    assert.equal(go.stdout.trim(), 'A');
    assert.ok(go.ms >= 400, `the Go run took ${go.ms} ms`);
    const curl = await world.graft(['curl', '-sS', '-w', '|%{time_connect}', `http://${A4}:8080/`], { graftArgs: ['--fault', 'delay time=400ms'] });
    const [body, connectSecs] = curl.stdout.split('|') as [string, string];
    assert.match(body, /name=A/);
    assert.ok(Number(connectSecs) >= 0.38 && Number(connectSecs) < 1.4, `curl connected after ${connectSecs} s`);
  });

  it('which connects: the first N, every Nth, after N', async () => {
    const run = async (fault: string) => (await world.graft(pattern(), { graftArgs: ['--fault', fault] })).stdout.trim();
    assert.equal(await run('refuse first=3'), 'xxx.........');
    assert.equal(await run('refuse every=4'), '...x...x...x');
    assert.equal(await run('refuse after=9'), '.........xxx');
    // after N counts the connects that went through: three refused by
    // another fault first do not count
    const both = await world.graft(pattern(), { graftArgs: ['--fault', 'refuse first=3', '--fault', 'refuse errno=ETIMEDOUT after=4'] });
    assert.equal(both.stdout.trim(), 'xxx....xxxxx');
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
});
