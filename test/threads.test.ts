/**
 * A multi-threaded C client: concurrent connects through one read-only
 * sockaddr, and one stack sockaddr reused for many sequential connects.
 */
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildC } from './lab/build.js';
import { A4, B4, World, connections, type GraftRun } from './lab/world.js';
import { LAB, needs } from './lab/capabilities.js';

const A = `${A4}:7000`;
const B = `${B4}:7000`;

function count<T>(items: readonly T[]): Map<T, number> {
  const m = new Map<T, number>();
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

function summary(threads: number, perThread: number, sequential: number): string {
  return `ok threads=${threads} per_thread=${perThread} sequential=${sequential} mismatches=0 const_intact=1 const_readonly=1 stack_intact=1\n`;
}

/** Checks what every record has in common; returns them split into worker-thread and main-thread records. */
function splitRecords(run: GraftRun, total: number): { threads: Record<string, unknown>[]; main: Record<string, unknown>[] } {
  const conns = connections(run);
  assert.equal(conns.length, total, 'one record per connect');
  const errors = conns.filter((c) => c.error !== undefined).map((c) => `${String(c.dst)}: ${String(c.error)}`);
  assert.deepEqual(errors, [], 'no connection failed');
  for (const c of conns) {
    assert.equal(c.action, 'proxy');
    assert.match(String(c.exe), /mtclient$/);
    assert.match(String(c.local), /^127\.0\.0\.1:\d+$/);
    assert.equal(c.bytesUp, 0);
    assert.equal(c.bytesDown, 2, `"A\\n" or "B\\n" came down from ${String(c.dst)}`);
  }
  const pids = new Set(conns.map((c) => c.pid));
  assert.equal(pids.size, 1, 'one process');
  const pid = [...pids][0];
  return { threads: conns.filter((c) => c.tid !== pid), main: conns.filter((c) => c.tid === pid) };
}

describe('multi-threaded C client through graft', { skip: needs(...LAB) }, () => {
  let world: World;
  let bin: string;
  before(async () => {
    bin = buildC('mtclient');
    world = await new World().start();
  });
  after(() => world?.destroy());

  it('keeps its shared sockaddr in .rodata', () => {
    assert.match(execFileSync('nm', [bin], { encoding: 'utf8' }), /^[0-9a-f]+ r A_ADDR$/m);
  });

  it('8 threads through one const sockaddr, then 200 connects through one reused stack buffer', async () => {
    const mark = world.events.length;
    const run = await world.graft([bin, '8', '1', '200']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, summary(8, 1, 200));
    assert.equal(run.stderr, '');

    const { threads, main } = splitRecords(run, 208);
    assert.deepEqual(
      count(connections(run).map((c) => c.dst)),
      new Map([
        [A, 108],
        [B, 100],
      ]),
    );

    assert.equal(threads.length, 8, 'eight connects from worker threads');
    assert.ok(threads.every((c) => c.dst === A));
    assert.equal(new Set(threads.map((c) => c.tid)).size, 8, 'one per thread');
    // the eight were all open at the same time (the client holds them with a barrier)
    assert.equal(new Set(threads.map((c) => c.local)).size, 8, 'concurrent connects got distinct local ports');

    assert.equal(main.length, 200);
    assert.deepEqual(
      count(main.map((c) => c.dst)),
      new Map([
        [A, 100],
        [B, 100],
      ]),
    );

    const served = world.since(mark).filter((e) => e.service === 'name');
    assert.deepEqual(
      count(served.map((e) => e.name)),
      new Map([
        ['A', 108],
        ['B', 100],
      ]),
    );
    assert.ok(served.every((e) => e.remote === '192.0.2.1'));

    const native = await world.native([bin, '8', '1', '200']);
    assert.equal(native.code, 0, native.stderr);
    assert.equal(native.stdout, run.stdout, 'same output without graft');
  });

  it('stress: 8 threads connecting 25 times each', async () => {
    const mark = world.events.length;
    const run = await world.graft([bin, '8', '25', '0']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, summary(8, 25, 0));
    assert.equal(run.stderr, '');

    const { threads, main } = splitRecords(run, 200);
    assert.equal(main.length, 0);
    assert.ok(
      threads.every((c) => c.dst === A),
      'all landed on A',
    );
    assert.deepEqual([...count(threads.map((c) => c.tid)).values()], Array(8).fill(25), '25 per thread');
    assert.equal(world.since(mark).filter((e) => e.service === 'name' && e.name === 'A').length, 200);
  });
});
