/**
 * The program starts with what graft's caller gave it, as if graft were
 * not there: each check runs one probe natively and under bin/graft, both
 * from the same caller (fixtures/caller.py: extra descriptors, ignored and
 * blocked signals, lowered limits, another working directory), and wants
 * the same report. No root: graft runs on loopback.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../lab/paths.js';
import { runGraft } from '../../src/api.js';

const tmp = mkdtempSync(join(tmpdir(), 'graft-caller-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
for (const name of ['three', 'four', 'five']) writeFileSync(join(tmp, name), `this is ${name}\n`);

const caller = join(repoRoot, 'test', 'fixtures', 'caller.py');
const graft = join(repoRoot, 'bin', 'graft');

/**
 * What a program sees of its start. Descriptors are listed by find, whose
 * own show the same in both runs; pipe and socket numbers and pids are
 * made neutral, as they differ between any two runs.
 */
const PROBE = [
  'for fd in 3 4 5; do echo "fd $fd: $(cat <&$fd 2>&1)"; done',
  "find /proc/self/fd/ -mindepth 1 -printf 'fd %f -> %l\\n' | sort -n -k2",
  "grep -E '^Sig(Ign|Blk)' /proc/self/status",
  'echo "quit: $(trap -p QUIT)"',
  'ulimit -a',
  'ulimit -Ha',
  'echo "umask $(umask)"',
  'echo "pwd $(pwd -P)"',
  // the environment as the program got it (this shell would set PWD)
  'tr "\\0" "\\n" </proc/$$/environ | LC_ALL=C sort',
].join('\n');

function neutral(text: string): string {
  return text.replace(/(pipe|socket|anon_inode:\[?\w*\]?):\[\d+\]/g, '$1:[N]').replace(/\/proc\/\d+\//g, '/proc/PID/');
}

/** caller.py [flags] -- [bin/graft -q --] bash -c PROBE (bash keeps the signal mask, dash clears it); its output, made neutral. */
async function report(underGraft: boolean, flags: readonly string[] = []): Promise<string> {
  const program = [...(underGraft ? [graft, '-q', '--'] : []), 'bash', '-c', PROBE];
  const child = spawn('python3', [caller, tmp, ...flags, '--', ...program], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.end();
  const [code] = (await once(child, 'close')) as [number | null];
  assert.equal(code, 0, err);
  return neutral(out);
}

/** The probe's lines natively and under graft, for a line-by-line comparison that names what differs. */
async function both(flags: readonly string[] = []): Promise<{ native: string; grafted: string }> {
  const [native, grafted] = await Promise.all([report(false, flags), report(true, flags)]);
  return { native, grafted };
}

describe("the program starts with the caller's", { concurrency: true }, () => {
  it('descriptors, signals, limits, environment and directory', async () => {
    const { native, grafted } = await both();
    // the probe saw what the caller set up, so the comparison means something
    assert.match(native, /^fd 3: this is three$/m);
    assert.match(native, /^fd 5: this is five$/m);
    assert.match(native, /^fd 7 -> pipe:\[N\]$/m);
    assert.match(native, /^SigIgn:\s+0*1003$/m);
    assert.match(native, /^SigBlk:\s+0*4200$/m);
    assert.match(native, /^PWD=/m);
    assert.match(native, /^quit: $/m);
    assert.equal(grafted, native);
  });

  it('closed stdin and an unset PWD', async () => {
    const { native, grafted } = await both(['closed-stdin', 'no-pwd']);
    assert.doesNotMatch(native, /^fd 0 /m);
    assert.equal(grafted, native);
  });
});

describe('the programmatic API', () => {
  it('gives the program stdio and nothing of graft', async () => {
    // this process's own other descriptors are not passed either (a choice:
    // the API's caller did not ask for them)
    const r = await runGraft({ program: 'sh', args: ['-c', 'cd /proc/$$/fd && echo *'] });
    assert.equal(r.status, 0, r.stderr);
    // 3: the listing's own
    assert.equal(r.stdout, '0 1 2 3\n');
  });
});
