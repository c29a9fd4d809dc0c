/**
 * The tests' capability probes (test/lab/capabilities.ts): what makes the
 * i386 probe call 32-bit programs missing, and what does not.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { I386_OK, classifyI386, findCommand, needs, type StepResult } from '../lab/capabilities.js';

const ok: StepResult = { status: 0, stdout: '', stderr: '' };
const ran = (stdout: string, status = 0): StepResult => ({ status, stdout, stderr: '' });

describe('capability probes', () => {
  it('i386: a 32-bit program that ran is the capability', () => {
    assert.equal(classifyI386(ok, ran(`${I386_OK}\n`)), false);
  });

  it('i386: ENOEXEC from execv means the kernel cannot run it', () => {
    assert.equal(classifyI386(ok, ran('errno 8\n', 127)), 'this kernel cannot run 32-bit (i386) programs (Exec format error)');
  });

  it('i386: ENOENT from execv means its loader is missing', () => {
    assert.match(classifyI386(ok, ran('errno 2\n', 127)) || '', /loader is missing .*libc6-i386/);
  });

  it("i386: a failed -m32 build is missing too, with the compiler's first line", () => {
    const compile: StepResult = {
      status: 1,
      stdout: '',
      stderr: '/usr/include/stdio.h:27:10: fatal error: bits/libc-header-start.h: No such file or directory\ncompilation terminated.\n',
    };
    assert.equal(
      classifyI386(compile, undefined),
      'cannot build 32-bit (i386) programs here: cc -m32 failed (/usr/include/stdio.h:27:10: fatal error: bits/libc-header-start.h: No such file or directory); Debian packages libc6-dev-i386 and lib32gcc-12-dev provide what it needs',
    );
  });

  it('i386: any other outcome is no reason to skip (the test runs and shows it)', () => {
    for (const run of [ran('errno 13\n', 127), ran('', 139), ran(`${I386_OK}\n`, 1), ran('something else\n')]) {
      assert.equal(classifyI386(ok, run), false, JSON.stringify(run));
    }
  });

  it('programs are looked up on PATH', () => {
    assert.ok(findCommand('sh'));
    assert.equal(findCommand('no-such-program-graft'), undefined);
    assert.equal(needs(), false);
  });

  it('root: skipped with the uid when not root', () => {
    const why = needs('root');
    if (process.getuid?.() === 0) assert.equal(why, false);
    else assert.equal(why, `needs root (running as uid ${process.getuid?.()})`);
  });
});
