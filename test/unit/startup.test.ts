/** graft says clearly, in one line with exit status 2, why it cannot start. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../lab/paths.js';
import { needs } from '../lab/capabilities.js';

const graft = join(repoRoot, 'bin/graft');
const deny = join(repoRoot, 'test/fixtures/deny.py');

/** x86_64 syscall numbers and errnos for deny.py */
const NR = { ptrace: 101, seccomp: 317, pidfd_getfd: 438 } as const;
const ERR = { EPERM: 1, EINVAL: 22, ENOSYS: 38 } as const;

/** Runs a command as a subprocess that does not block the other tests. */
function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(args[0]!, args.slice(1), { encoding: 'utf8', env, timeout: 30_000 }, (err, _stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr }),
    );
  });
}

describe('start-up errors', { concurrency: true }, () => {
  // deny.py installs a seccomp filter that fails one system call
  const withDeny = { skip: needs('python3') };
  it('ptrace not permitted (as in a locked-down container)', withDeny, async () => {
    const r = await run(['python3', deny, String(NR.ptrace), String(ERR.EPERM), graft, '--', 'true']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^graft: cannot trace true: ptrace is not permitted here .*SYS_PTRACE.*\n$/);
  });

  it('seccomp filters unavailable', withDeny, async () => {
    const r = await run(['python3', deny, String(NR.seccomp), String(ERR.EINVAL), graft, '--', 'true']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^graft: cannot install the seccomp filter that traps connect \(Invalid argument\).*CONFIG_SECCOMP_FILTER.*\n$/);
  });

  it('a kernel without pidfd_getfd (older than 5.6)', withDeny, async () => {
    const r = await run(['python3', deny, String(NR.pidfd_getfd), String(ERR.ENOSYS), graft, '--', 'true']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'graft: this kernel has no pidfd_getfd; graft needs Linux 5.6 or newer\n');
  });

  it('a missing tracer binary', async () => {
    const r = await run([graft, '--', 'true'], { ...process.env, GRAFT_TRACER: '/nonexistent/graft-tracer' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^graft: the tracer binary is missing \(\/nonexistent\/graft-tracer\); run `npm install`.*\n$/);
  });

  it('-v and -q together', async () => {
    const r = await run([graft, '-v', '-q', '--', 'true']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'graft: -v/--verbose and -q/--quiet cannot be used together\n');
  });

  it('a bad --log-level names the choices', async () => {
    const r = await run([graft, '--log-level', 'loud', '--', 'true']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^graft: --log-level: 'loud' is not one of trace, debug, info, warn, error, fatal, silent\n$/);
  });
});
