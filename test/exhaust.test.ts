/**
 * graft out of resources: file descriptors (the program's connects that
 * cannot be served fail at connect, each recorded and counted) and a log
 * file that cannot be written (the program runs on; the loss is said once
 * and counted).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { A4, World, runCollect, type GraftRun } from './lab/world.js';
import { LAB, needs } from './lab/capabilities.js';
import { repoRoot } from './lab/paths.js';

const HOLD = join(repoRoot, 'test/fixtures/holdconns.py');
const GRAFT = join(repoRoot, 'bin/graft');

interface Held {
  readonly connected: number;
  readonly echoed: number;
  readonly failedConnect: Record<string, number>;
  readonly brokenAfter: Record<string, number>;
  readonly ports: number[];
}

/** The exit summary's count of connections graft could not serve (0 without the line). */
function lostConnections(stderr: string): number {
  const m = /^graft: (\d+) connections? could not be served/m.exec(stderr);
  return m ? Number(m[1]) : 0;
}

describe('graft out of resources', { skip: needs(...LAB) }, () => {
  let world: World;
  before(async () => {
    world = await new World().start();
  });
  after(() => world?.destroy());

  /** Runs a command in the client namespace with the open-files limit at 1024 (soft and hard), as `ulimit -n 1024` would. */
  function withLimit(argv: readonly string[], logFile?: string): Promise<GraftRun> {
    return runCollect('ip', ['netns', 'exec', world.client.name, 'prlimit', '--nofile=1024:1024', ...argv], { timeoutMs: 120_000 }, logFile);
  }

  it('the program keeps the open-files limits it was given; the tracer and Node run with the hard limit', async () => {
    // the program prints its own limits, its parent's (the tracer) and its grandparent's (graft's Node)
    const program = [
      'python3',
      '-c',
      [
        'import os, resource',
        'def soft(pid):',
        "    line = [l for l in open('/proc/%d/limits' % pid) if l.startswith('Max open files')][0]",
        '    return int(line.split()[3])',
        "tracer = os.getppid(); node = int(open('/proc/%d/stat' % tracer).read().rsplit(')', 1)[1].split()[1])",
        'print(*resource.getrlimit(resource.RLIMIT_NOFILE), soft(tracer), soft(node))',
      ].join('\n'),
    ];
    const r = await runCollect('ip', ['netns', 'exec', world.client.name, 'prlimit', '--nofile=1000:1024', GRAFT, '--', ...program], {}, undefined);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '1000 1024 1024 1024');
  });

  it('700 connections held at once under ulimit -n 1024: most work, every other fails at connect, recorded and counted', async () => {
    const program = ['python3', HOLD, A4, '7007', '700'];
    const native = JSON.parse((await withLimit(program)).stdout) as Held;
    assert.equal(native.echoed, 700, JSON.stringify(native));

    const logFile = world.path('exhaust.ndjson');
    const r = await withLimit([GRAFT, '--log-file', logFile, '--', ...program], logFile);
    assert.equal(r.code, 0, r.stderr);
    const held = JSON.parse(r.stdout) as Held;
    const failed = 700 - held.connected;
    process.stdout.write(`# under graft: ${held.echoed} of 700 echoed; failed at connect: ${JSON.stringify(held.failedConnect)}\n`);
    assert.deepEqual(held.brokenAfter, {}, 'no connection may break after it connected');
    // each failed at once, with the errno graft gives a connect it cannot serve (none left waiting)
    assert.deepEqual(Object.keys(held.failedConnect), failed > 0 ? ['ECONNREFUSED'] : [], JSON.stringify(held.failedConnect));
    assert.equal(held.echoed, held.connected);
    // the tracer holds two descriptors per relayed connection, and for a
    // moment three (its duplicate of the program's socket until the
    // handshake) plus pipes while bytes move: 430-510 of 700 over runs
    assert.ok(held.echoed >= 400, `only ${held.echoed} of 700 worked`);

    // every failed one: a record naming the reason, at error level. The
    // tracer (which dials and relays these) refuses a connect it has no
    // descriptor for at once (event refused); one it ran out for later, at
    // the handshake, ends as a failed connection
    const lost = r.records.filter((x) => x.lost === 'descriptors');
    assert.equal(lost.length, failed, JSON.stringify(r.records.filter((x) => x.event !== 'connection' || x.error !== undefined).slice(0, 5)));
    for (const x of lost) {
      assert.equal(x.dst, `${A4}:7007`);
      assert.equal(x.level, 50);
      assert.match(String(x.event === 'refused' ? x.reason : x.error), /out of file descriptors \(.*limit 1024\)/);
    }
    // the summary line at exit, once
    assert.equal(lostConnections(r.stderr), failed, r.stderr);
    if (failed > 0) assert.match(r.stderr, /out of file descriptors \(limit 1024\); raise it with ulimit -n/);
    assert.equal((r.stderr.match(/could not be served/g) ?? []).length, failed > 0 ? 1 : 0, r.stderr);
  });

  it('--log-file /dev/full: the program runs to its end with its connections intact; the loss is said once and counted at exit', async () => {
    // five connections, one after the other, each echoing a line
    const program = [
      'python3',
      '-c',
      [
        'import socket',
        'for i in range(5):',
        `    s = socket.create_connection(('${A4}', 7007))`,
        "    s.sendall(b'line %d\\n' % i)",
        "    got = b''",
        "    while not got.endswith(b'\\n'): got += s.recv(100)",
        '    print(got.decode().strip(), flush=True)',
        '    s.close()',
        "print('done')",
      ].join('\n'),
    ];
    const native = await world.native(program);
    assert.equal(native.code, 0, native.stderr);
    const r = await runCollect('ip', ['netns', 'exec', world.client.name, GRAFT, '--log-file', '/dev/full', '--', ...program], {}, undefined);
    assert.equal(r.code, native.code, r.stderr);
    assert.equal(r.stdout, native.stdout);
    const warnings = r.stderr.split('\n').filter((l) => l.includes('cannot write log records'));
    assert.deepEqual(warnings, [
      'graft: cannot write log records to /dev/full (ENOSPC): records are being lost; the program runs on, the count is given at exit',
    ]);
    const summary = /^graft: (\d+) log records? could not be written to \/dev\/full \(ENOSPC\)$/m.exec(r.stderr);
    assert.ok(summary, r.stderr);
    assert.equal(Number(summary[1]), 5, 'one record per connection, each lost');
    assert.equal(r.stderr.trim().split('\n').length, 2, r.stderr);
  });

  it('runGraft with logFile /dev/full: the run completes, lost counts the records, nothing is said', async () => {
    const program = `import socket\ns = socket.create_connection(('${A4}', 7007))\ns.sendall(b'x\\n')\nprint(s.recv(10).decode().strip())`;
    const options = { program: 'python3', args: ['-c', program], logFile: '/dev/full' };
    const run = await world.native([process.execPath, join(repoRoot, 'test/fixtures/api-run.mjs'), JSON.stringify(options), join(repoRoot, 'dist/src/api.js')]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    const r = JSON.parse(run.stdout) as { status: number; stdout: string; connections: unknown[]; lost: { connections: number; records: number } };
    assert.equal(r.status, 0);
    assert.equal(r.stdout, 'x\n');
    assert.equal(r.connections.length, 1);
    assert.deepEqual(r.lost, { connections: 0, records: 1 });
  });
});
