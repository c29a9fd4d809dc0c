/**
 * graft as a process: signals (sent to graft, typed on a terminal, job
 * control) and the program's tree dying with graft. Exit statuses and usage
 * errors need no lab: they are in test/unit/cli.test.ts.
 *
 * Most cases run in the lab's client namespace through world.graft; the
 * terminal cases run graft on a pseudo-terminal (test/fixtures/pty_driver.py)
 * in a session of its own, as an interactive shell would.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { World } from './lab/world.js';
import { repoRoot } from './lab/paths.js';
import { alive, cmdline, descendants, poll, readProc } from './lab/procs.js';
import { LAB, needs } from './lab/capabilities.js';

const graftBin = join(repoRoot, 'bin/graft');
const fixture = (name: string): string => join(repoRoot, 'test', 'fixtures', name);
const sigcount = fixture('sigcount.py');
const ticker = fixture('ticker.py');

/** The bin/graft process is a node process running bin/graft.mjs (ip netns exec execs bin/graft in place, which execs node). */
function isGraft(pid: number): boolean {
  const argv = cmdline(pid);
  // node [its own flags from bin/graft] .../bin/graft.mjs ...
  return /(^|\/)node$/.test(argv[0] ?? '') && argv.slice(1).find((a) => !a.startsWith('-')) === `${graftBin}.mjs`;
}

/** Calls fn once graft's stdout has shown `token` (fn errors are kept for the test to rethrow). */
function whenPrinted(token: string, fn: (child: ChildProcess) => void): { onSpawn: (child: ChildProcess) => void; error: () => unknown } {
  let error: unknown;
  return {
    onSpawn: (child) => {
      let seen = '';
      let done = false;
      child.stdout!.on('data', (d: Buffer) => {
        seen += d.toString();
        if (done || !seen.includes(token)) return;
        done = true;
        try {
          fn(child);
        } catch (err) {
          error = err;
          child.kill('SIGKILL');
        }
      });
    },
    error: () => error,
  };
}

interface PtyReport {
  readonly status: number;
  readonly output: string;
  readonly pgid: number;
  readonly error?: string;
  readonly quiet?: string;
  readonly procs?: { pid: number; ppid: number; comm: string; state: string }[];
  readonly procsAfter?: { pid: number; ppid: number; comm: string; state: string }[];
}

/** Runs `pty_driver.py mode args -- bin/graft -- program` and returns its report. */
function onPty(mode: string, args: readonly string[], program: readonly string[]): Promise<PtyReport> {
  return new Promise((resolve, reject) => {
    execFile(
      'python3',
      [fixture('pty_driver.py'), mode, ...args, '--', graftBin, '--', ...program],
      { timeout: 40_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`pty driver failed: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout) as PtyReport);
        } catch {
          reject(new Error(`pty driver printed no report: ${stdout}\n${stderr}`));
        }
      },
    );
  });
}

/** The terminal's output without CRs and without the echoed control characters. */
function screen(output: string): string {
  return output.replace(/\r\n/g, '\n').replace(/\^[CZ\\]/g, '');
}

describe('graft as a process', { skip: needs(...LAB) }, () => {
  let world: World;
  before(async () => {
    world = await new World().start();
  });
  after(() => world?.destroy());

  describe('signals sent to graft reach the program exactly once', () => {
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const) {
      it(sig, async () => {
        const send = whenPrinted('ready\n', (child) => {
          assert.ok(child.pid && isGraft(child.pid), `pid ${child.pid} is bin/graft (${cmdline(child.pid ?? 0).join(' ')})`);
          child.kill(sig);
        });
        const run = await world.graft(['python3', sigcount, sig, '7'], { onSpawn: send.onSpawn, timeoutMs: 20_000 });
        if (send.error()) throw send.error();
        assert.equal(run.signal, null);
        assert.equal(run.code, 7, run.stderr);
        assert.equal(run.stdout, `ready\ngot ${sig.slice(3)}\ncount 1\n`);
        assert.equal(run.stderr, '');
      });
    }
  });

  describe('on a terminal', () => {
    it('^C: the program gets one SIGINT (the terminal sends it to the whole group)', async () => {
      const r = await onPty('act', ['key:03'], ['python3', sigcount, 'SIGINT', '7']);
      assert.equal(r.error, undefined, r.output);
      assert.equal(screen(r.output), 'ready\ngot INT\ncount 1\n');
      assert.equal(r.status, 7);
    });

    it('^\\: the program gets one SIGQUIT', async () => {
      const r = await onPty('act', ['key:1c'], ['python3', sigcount, 'SIGQUIT', '7']);
      assert.equal(r.error, undefined, r.output);
      assert.equal(screen(r.output), 'ready\ngot QUIT\ncount 1\n');
      assert.equal(r.status, 7);
    });

    it('two ^C 300 ms apart are two SIGINTs', async () => {
      const r = await onPty('act', ['key:03', 'sleep:0.3', 'key:03'], ['python3', sigcount, 'SIGINT', '7']);
      assert.equal(r.error, undefined, r.output);
      assert.equal(screen(r.output), 'ready\ngot INT\ngot INT\ncount 2\n');
      assert.equal(r.status, 7);
    });

    it('a kill of graft right after a ^C is not swallowed', async () => {
      const r = await onPty('act', ['key:03', 'sleep:0.3', 'kill:SIGINT'], ['python3', sigcount, 'SIGINT', '7']);
      assert.equal(r.error, undefined, r.output);
      assert.equal(screen(r.output), 'ready\ngot INT\ngot INT\ncount 2\n');
      assert.equal(r.status, 7);
    });

    it('a terminal resize: the program gets one SIGWINCH', async () => {
      const r = await onPty('act', ['winch:30x100'], ['python3', sigcount, 'SIGWINCH', '7']);
      assert.equal(r.error, undefined, r.output);
      assert.equal(screen(r.output), 'ready\ngot WINCH\ncount 1\n');
      assert.equal(r.status, 7);
    });

    it('^Z stops graft and the program; SIGCONT resumes them and the program finishes', async () => {
      const r = await onPty('tstp', [], ['python3', ticker, '10']);
      assert.equal(r.error, undefined, r.output);
      assert.equal(r.quiet, '', 'no output while stopped');
      const procs = r.procs ?? [];
      const node = procs.find((p) => p.pid === r.pgid);
      assert.equal(node?.comm, 'node', JSON.stringify(procs));
      assert.equal(node?.state, 'T', `graft is stopped: ${JSON.stringify(procs)}`);
      const tracer = procs.find((p) => p.comm === 'graft-tracer');
      assert.equal(tracer?.ppid, r.pgid, JSON.stringify(procs));
      const program = procs.find((p) => p.comm === 'python3' && p.ppid === tracer?.pid);
      assert.ok(program && (program.state === 'T' || program.state === 't'), `the program is stopped: ${JSON.stringify(procs)}`);
      const nodeAfter = (r.procsAfter ?? []).find((p) => p.pid === r.pgid);
      assert.ok(nodeAfter && nodeAfter.state !== 'T', `graft runs again after SIGCONT: ${JSON.stringify(r.procsAfter)}`);
      const expected = [...Array.from({ length: 10 }, (_, i) => `tick ${i}`), 'done'];
      assert.deepEqual(screen(r.output).split('\n').filter(Boolean), expected);
      assert.equal(r.status, 0);
    });
  });

  describe("the program's tree dies with graft", () => {
    async function startTree(): Promise<{ graft: ChildProcess; tracer: number; sleeps: number[]; done: ReturnType<World['graft']> }> {
      let graft: ChildProcess | undefined;
      const done = world.graft(['sh', '-c', 'sleep 1000 & sleep 1001 & wait'], { onSpawn: (c) => (graft = c), timeoutMs: 20_000 });
      const g = await poll(() => graft, 1000, 'graft to spawn');
      const pid = g.pid!;
      const sleeps = await poll(
        () => {
          const s = descendants(pid).filter((p) => p.comm === 'sleep');
          return s.length === 2 && s;
        },
        10_000,
        'the two sleeps',
      );
      assert.ok(isGraft(pid), `pid ${pid} is bin/graft`);
      const tracer = descendants(pid).find((p) => p.comm === 'graft-tracer' && p.ppid === pid);
      assert.ok(tracer, 'the tracer is a child of graft');
      return { graft: g, tracer: tracer.pid, sleeps: sleeps.map((p) => p.pid), done };
    }

    it('SIGKILL of graft (node) takes the tracer and the program tree down', async () => {
      const t = await startTree();
      process.kill(t.graft.pid!, 'SIGKILL');
      const started = Date.now();
      await poll(() => ![t.tracer, ...t.sleeps].some(alive), 2000, 'the tracer and the sleeps to die');
      const run = await t.done;
      assert.equal(run.signal, 'SIGKILL');
      assert.ok(Date.now() - started < 2000);
    });

    it('SIGKILL of the tracer takes the program tree down and graft reports it', async () => {
      const t = await startTree();
      process.kill(t.tracer, 'SIGKILL');
      await poll(() => !t.sleeps.some(alive), 2000, 'the sleeps to die');
      const run = await t.done;
      assert.equal(run.signal, null);
      assert.equal(run.code, 70, run.stderr);
      assert.match(run.stderr, /graft: the tracer was killed by SIGKILL/);
      assert.equal(readProc(t.graft.pid!), null, 'graft has exited');
    });
  });
});
