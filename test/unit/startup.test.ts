/** graft says clearly, in one line with exit status 2, why it cannot start. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../lab/paths.js';
import { needs } from '../lab/capabilities.js';

const graft = join(repoRoot, 'bin/graft');
const deny = join(repoRoot, 'test/fixtures/deny.py');

/** x86_64 syscall numbers and errnos for deny.py */
const NR = { ptrace: 101, seccomp: 317, pidfd_getfd: 438 } as const;
const ERR = { EPERM: 1, EINVAL: 22, ENOSYS: 38 } as const;

function run(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', env, timeout: 30_000 });
}

describe('start-up errors', () => {
  // deny.py installs a seccomp filter that fails one system call
  const withDeny = { skip: needs('python3') };
  it('ptrace not permitted (as in a locked-down container)', withDeny, () => {
    const r = run(['python3', deny, String(NR.ptrace), String(ERR.EPERM), graft, '--', 'true']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^graft: cannot trace true: ptrace is not permitted here .*SYS_PTRACE.*\n$/);
  });

  it('seccomp filters unavailable', withDeny, () => {
    const r = run(['python3', deny, String(NR.seccomp), String(ERR.EINVAL), graft, '--', 'true']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^graft: cannot install the seccomp filter that traps connect \(Invalid argument\).*CONFIG_SECCOMP_FILTER.*\n$/);
  });

  it('a kernel without pidfd_getfd (older than 5.6)', withDeny, () => {
    const r = run(['python3', deny, String(NR.pidfd_getfd), String(ERR.ENOSYS), graft, '--', 'true']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'graft: this kernel has no pidfd_getfd; graft needs Linux 5.6 or newer\n');
  });

  it('a missing tracer binary', () => {
    const r = run([graft, '--', 'true'], { ...process.env, GRAFT_TRACER: '/nonexistent/graft-tracer' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^graft: the tracer binary is missing \(\/nonexistent\/graft-tracer\); run `npm install`.*\n$/);
  });

  it('-v and -q together', () => {
    const r = run([graft, '-v', '-q', '--', 'true']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'graft: -v/--verbose and -q/--quiet cannot be used together\n');
  });

  it('a bad --log-level names the choices', () => {
    const r = run([graft, '--log-level', 'loud', '--', 'true']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^graft: option '--log-level <level>' argument 'loud' is invalid\. Allowed choices are trace, debug, info, warn, error, fatal, silent\.\n$/);
  });
});
