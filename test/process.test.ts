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
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { World } from './lab/world.js';
import { repoRoot } from './lab/paths.js';
import { alive, cmdline, descendants, poll, readProc } from './lab/procs.js';
import { LAB, needs } from './lab/capabilities.js';

const graftBin = join(repoRoot, 'bin/graft');
const fixture = (name: string): string => join(repoRoot, 'test', 'fixtures', name);
const sigcount = fixture('sigcount.py');
const ticker = fixture('ticker.py');
const sigtree = fixture('sigtree.py');

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

  describe('ending signals reach every traced process', () => {
    it("SIGTERM after the program exited: its background child gets it, graft exits with the program's 0", async () => {
      let killedAt = 0;
      const send = whenPrinted('\n', (child) => {
        // bash has printed the child's pid and exits; graft stays for the child
        setTimeout(() => {
          killedAt = Date.now();
          child.kill('SIGTERM');
        }, 500);
      });
      const run = await world.graft(['bash', '-c', 'sleep 60 >/dev/null 2>&1 & echo $!; exit 0'], {
        onSpawn: send.onSpawn,
        timeoutMs: 20_000,
      });
      if (send.error()) throw send.error();
      const took = Date.now() - killedAt;
      const bg = Number(run.stdout.trim());
      assert.ok(killedAt > 0, 'graft still ran 500 ms after the program exited');
      assert.equal(run.signal, null);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(took < 1000, `graft exited ${took} ms after the SIGTERM`);
      assert.ok(bg > 0 && !alive(bg), `the background sleep (${bg}) is gone`);
    });

    it('a second SIGTERM, ignored by the tree, ends it with SIGKILL; the first does not', async () => {
      let ended = false;
      let secondAt = 0;
      let stillThere = false;
      const send = whenPrinted('ready\n', (child) => {
        child.kill('SIGTERM');
        setTimeout(() => {
          stillThere = !ended && descendants(child.pid!).some((p) => p.comm === 'sleep');
          secondAt = Date.now();
          child.kill('SIGTERM');
        }, 1000);
      });
      const run = await world
        .graft(['bash', '-c', 'trap "" TERM; echo ready; sleep 30'], { onSpawn: send.onSpawn, timeoutMs: 20_000 })
        .finally(() => (ended = true));
      if (send.error()) throw send.error();
      const took = Date.now() - secondAt;
      assert.ok(stillThere, 'the first SIGTERM is ignored: graft and the sleep still run a second later');
      assert.equal(run.code, 128 + 9, run.stderr);
      assert.ok(took < 1000, `graft exited ${took} ms after the second SIGTERM`);
    });

    it('a signal the tree ignores, after a different one, is forwarded, not escalated', async () => {
      const send = whenPrinted('ready\n', (child) => {
        child.kill('SIGHUP');
        setTimeout(() => child.kill('SIGTERM'), 300);
      });
      const script = 'trap "" TERM; trap "echo hup" HUP; echo ready; for i in 1 2 3 4 5 6 7 8; do sleep 0.2; done; echo done';
      const run = await world.graft(['bash', '-c', script], { onSpawn: send.onSpawn, timeoutMs: 20_000 });
      if (send.error()) throw send.error();
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'ready\nhup\ndone\n');
    });

    it("one kill of graft's process group (as `kill %1`) is not an escalation", async () => {
      // setsid: graft leads a process group of its own, which the kill reaches whole (node, tracer, program)
      const child = spawn('setsid', [graftBin, '--', 'bash', '-c', 'trap "" TERM; echo ready; sleep 1.5; echo done'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdout.on('data', (d: Buffer) => {
        const before = stdout;
        stdout += d.toString();
        if (!before.includes('ready') && stdout.includes('ready')) process.kill(-child.pid!, 'SIGTERM');
      });
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      assert.equal(code, 0, stderr);
      assert.equal(stdout, 'ready\ndone\n');
    });

    it('a second SIGTERM to a program that handles it is delivered, not escalated', async () => {
      const send = whenPrinted('ready\n', (child) => {
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGTERM'), 300);
      });
      const run = await world.graft(['python3', sigcount, 'SIGTERM', '7'], { onSpawn: send.onSpawn, timeoutMs: 20_000 });
      if (send.error()) throw send.error();
      assert.equal(run.code, 7, run.stderr);
      assert.equal(run.stdout, 'ready\ngot TERM\ngot TERM\ncount 2\n');
    });

    it('a program with threads gets SIGTERM once (one kill per process)', async () => {
      const send = whenPrinted('ready\n', (child) => child.kill('SIGTERM'));
      const threaded = [
        'import runpy, sys, threading, time',
        'for _ in range(4): threading.Thread(target=time.sleep, args=(30,), daemon=True).start()',
        `sys.argv = ['sigcount.py', 'SIGTERM', '7']`,
        `runpy.run_path(${JSON.stringify(sigcount)}, run_name='__main__')`,
      ].join('\n');
      const run = await world.graft(['python3', '-c', threaded], { onSpawn: send.onSpawn, timeoutMs: 20_000 });
      if (send.error()) throw send.error();
      assert.equal(run.code, 7, run.stderr);
      assert.equal(run.stdout, 'ready\ngot TERM\ncount 1\n');
    });

    for (const sig of ['SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGTERM'] as const) {
      it(`${sig}: the program and its child both get it`, async () => {
        const dir = mkdtempSync(join(tmpdir(), 'graft-sigtree-'));
        try {
          const send = whenPrinted('ready\n', (child) => child.kill(sig));
          const run = await world.graft(['python3', sigtree, sig, dir], { onSpawn: send.onSpawn, timeoutMs: 20_000 });
          if (send.error()) throw send.error();
          assert.equal(run.code, 7, run.stderr);
          assert.equal(run.stdout, 'ready\n');
          assert.equal(readFileSync(join(dir, 'parent'), 'utf8'), sig.slice(3));
          assert.equal(readFileSync(join(dir, 'child'), 'utf8'), sig.slice(3));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
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

    it('a second ^C ends a background child that ignores SIGINT (the first does not)', async () => {
      // a non-interactive shell's background job ignores SIGINT; bash has exited before it prints ready
      const program = ['bash', '-c', '(sleep 0.5; echo ready; sleep 1; echo alive; sleep 60) & exit 0'];
      const r = await onPty('act', ['sleep:0.3', 'key:03', 'sleep:1.5', 'key:03'], program);
      assert.equal(r.error, undefined, r.output);
      assert.equal(screen(r.output), 'ready\nalive\n');
      assert.equal(r.status, 0);
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
