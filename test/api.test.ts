/** The programmatic API: a chaos case for a project's own tests in a few lines. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { repoRoot } from './lab/paths.js';
import { A4, B4, BLACKHOLE4, World } from './lab/world.js';
import { LAB, needs } from './lab/capabilities.js';

interface ApiResult {
  status?: number;
  stdout?: string;
  stderr?: string;
  connections?: Record<string, unknown>[];
  error?: string;
  message?: string;
}

describe('runGraft', { skip: needs(...LAB, 'curl') }, () => {
  let world: World;
  before(async () => {
    world = await new World().start();
  });
  after(() => world?.destroy());

  /** runs runGraft(options) inside the lab's client namespace */
  async function api(options: Record<string, unknown>): Promise<ApiResult> {
    const run = await world.native([process.execPath, join(repoRoot, 'test/fixtures/api-run.mjs'), JSON.stringify(options), join(repoRoot, 'dist/src/api.js')]);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as ApiResult;
  }

  it('resolves with the exit status, the output and the connection records', async () => {
    const script = `curl -sS --max-time 5 http://${A4}:8080/api; curl -sS --max-time 5 http://${B4}:8080/x || echo failed >&2; exit 3`;
    const r = await api({ program: 'sh', args: ['-c', script], toxics: [`latency latency=100ms on ${A4}`], rules: [`${B4} refuse ETIMEDOUT`] });
    assert.equal(r.status, 3);
    assert.equal(r.stdout, 'name=A path=/api\n');
    assert.match(r.stderr!, /failed\n$/);
    const proxied = r.connections!.filter((c) => c.event === 'connection');
    assert.deepEqual(
      proxied.map((c) => [c.dst, c.faults]),
      [[`${A4}:8080`, [`latency latency=100ms on ${A4}`]]],
    );
    assert.ok(Number(proxied[0]!.durationMs) >= 100);
    const refused = r.connections!.filter((c) => c.event === 'refused');
    assert.deepEqual(
      refused.map((c) => [c.dst, c.errno]),
      [[`${B4}:8080`, 'ETIMEDOUT']],
    );
  });

  it('resolves with every record, also those of connections open or dialing when the program exited', async () => {
    const program = [
      'import os, socket, threading, time',
      `ss = [socket.create_connection(('${A4}', 9001)) for _ in range(4)]`,
      `threading.Thread(target=lambda: socket.create_connection(('${BLACKHOLE4}', 80)), daemon=True).start()`,
      'time.sleep(0.3)',
      'os._exit(0)',
    ].join('\n');
    const r = await api({ program: 'python3', args: ['-c', program] });
    assert.equal(r.status, 0, r.stderr);
    const proxied = r.connections!.filter((c) => c.event === 'connection');
    assert.deepEqual(proxied.map((c) => [c.dst, c.atExit]).sort(), [
      [`${A4}:9001`, 'open'],
      [`${A4}:9001`, 'open'],
      [`${A4}:9001`, 'open'],
      [`${A4}:9001`, 'open'],
      [`${BLACKHOLE4}:80`, 'pending'],
    ]);
  });

  it('gives the program stdin, and its environment', async () => {
    const r = await api({ program: 'sh', args: ['-c', 'cat; echo "$GREETING"'], input: 'from stdin\n', env: { PATH: process.env.PATH, GREETING: 'hello' } });
    assert.equal(r.stdout, 'from stdin\nhello\n');
    assert.equal(r.status, 0);
  });

  it('rejects bad options with a usage error naming them', async () => {
    const r = await api({ program: 'true', toxics: ['latency'] });
    assert.deepEqual(r, { error: 'usage', message: "--toxic 1: toxic 'latency': latency needs latency=" });
    const p = await api({ program: 'true', proxy: ['ftp://x:1'] });
    assert.equal(p.error, 'usage');
    assert.match(p.message!, /unsupported scheme 'ftp:'/);
  });

  it('reports a program that is not found as 127, as the CLI does', async () => {
    const r = await api({ program: 'no-such-program-here' });
    assert.equal(r.status, 127);
    assert.equal(r.stderr, 'graft: no-such-program-here: command not found\n');
  });
  it('returns a live handle: control changes toxics on the open connection; records() follows every record', async () => {
    // one connection, a round trip every 50 ms for 3.5 s: "sent_at_ms rtt_ms" per line
    const client = [
      'import socket, time',
      `s = socket.create_connection(('${A4}', 7007))`,
      'end = time.time() + 3.5',
      'while time.time() < end:',
      '  t = time.time(); s.sendall(b"x"); s.recv(16); print("%d %.1f" % (t * 1000, (time.time() - t) * 1000), flush=True); time.sleep(0.05)',
    ].join('\n');
    const run = await world.native([
      process.execPath,
      join(repoRoot, 'test/fixtures/api-live.mjs'),
      JSON.stringify(['python3', '-c', client]),
      `${A4}:7007`,
      join(repoRoot, 'dist/src/api.js'),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const r = JSON.parse(run.stdout) as {
      status: number;
      stdout: string;
      stderr: string;
      marks: { added: number; removed: number };
      refused: { status: number; message: string };
      proxies: { name: string; toxics: unknown[] }[];
      seen: { event: string; proxy?: string; faults?: string[] }[];
    };
    assert.equal(r.status, 0, r.stderr);
    const rtts = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(' ').map(Number) as [number, number]);
    const during = rtts.filter(([t]) => t > r.marks.added + 50 && t < r.marks.removed - 350);
    const afterwards = rtts.filter(([t]) => t > r.marks.removed + 400);
    assert.ok(during.length >= 2 && during.every(([, ms]) => ms >= 280), `with latency: ${JSON.stringify(during)}`);
    assert.ok(afterwards.length >= 3 && afterwards.every(([, ms]) => ms < 150), `after removal: ${JSON.stringify(afterwards)}`);
    assert.deepEqual(r.refused, { status: 404, message: 'toxic not found' });
    assert.deepEqual(
      r.proxies.map((p) => [p.name, p.toxics.length]),
      [['echo', 0]],
    );
    // the one connection (the scope was made before the program started): its opening, then its record, with the toxic it had
    assert.deepEqual(
      r.seen.map((e) => [e.event, e.proxy]),
      [
        ['open', 'echo'],
        ['connection', 'echo'],
      ],
    );
    assert.deepEqual(r.seen[1]!.faults, ['echo/slow: latency latency=300 jitter=0 stream=downstream']);
  });
});
