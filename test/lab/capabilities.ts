/**
 * What this machine can do for the tests, probed once per test process.
 *
 * A test that needs something the machine lacks is skipped with the reason
 * printed next to it (node:test's `skip: 'reason'`), instead of failing
 * halfway with an error that hides the cause:
 *
 *   it('...', { skip: needs('i386-exec') }, async () => { ... });
 *   describe('...', { skip: needs(...LAB, 'curl') }, () => { ... });
 *
 * needs() returns false when everything is there, else one message naming
 * each missing thing. A probe only reports a capability missing for the
 * causes it recognises; anything else is left to the test, which then fails
 * and shows the real problem.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { m32Flags } from './build.js';

/** Programs the tests run, with the Debian package that has each. */
const PACKAGES = {
  bash: 'bash',
  curl: 'curl',
  danted: 'dante-server',
  dig: 'bind9-dnsutils',
  dnsmasq: 'dnsmasq-base',
  file: 'file',
  getent: 'libc-bin',
  go: 'golang-go',
  ip: 'iproute2',
  iperf3: 'iperf3',
  microsocks: 'microsocks',
  'musl-gcc': 'musl-tools',
  nc: 'netcat-openbsd',
  nft: 'nftables',
  openssl: 'openssl',
  python3: 'python3',
  setpriv: 'util-linux',
  ss: 'iproute2',
  ssh: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  sshd: 'openssh-server',
  tinyproxy: 'tinyproxy',
  unshare: 'util-linux',
  wget: 'wget',
} as const;

export type Command = keyof typeof PACKAGES;
export type Capability = 'root' | 'netns' | 'i386-exec' | 'ipv6-loopback' | Command;

/** What every network-namespace lab (test/lab/world.ts and friends) needs. */
export const LAB: readonly Capability[] = ['root', 'netns', 'ipv6-loopback', 'ip', 'python3'];

const cache = new Map<Capability, string | false>();

/** false when every capability is there, else why not (for `skip`). */
export function needs(...caps: readonly Capability[]): string | false {
  const reasons = [...new Set(caps)].map(missing).filter((r): r is string => r !== false);
  return reasons.length > 0 ? [...new Set(reasons)].join('; ') : false;
}

/** Why `cap` is missing, or false when it is there (probed once, then cached). */
export function missing(cap: Capability): string | false {
  let r = cache.get(cap);
  if (r === undefined) {
    r = probe(cap);
    cache.set(cap, r);
  }
  return r;
}

function probe(cap: Capability): string | false {
  switch (cap) {
    case 'root':
      return process.getuid?.() === 0 ? false : `needs root (running as uid ${process.getuid?.()})`;
    case 'netns':
      return probeNetns();
    case 'i386-exec':
      return probeI386();
    case 'ipv6-loopback':
      return probeIpv6Loopback();
    default:
      return findCommand(cap) ? false : `${cap} is not installed (Debian package ${PACKAGES[cap]})`;
  }
}

/** The command's path on PATH (or in the sbin directories, where danted and sshd live), if any. */
export function findCommand(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs.filter(Boolean)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

function probeNetns(): string | false {
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  if (!findCommand('ip')) return `ip is not installed (Debian package ${PACKAGES.ip})`;
  const name = `graft-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (add.status !== 0) return `cannot create a network namespace (ip netns add: ${firstLine(add.stderr) || `exit ${add.status}`})`;
  const del = spawnSync('ip', ['netns', 'del', name], { encoding: 'utf8' });
  if (del.status !== 0) throw new Error(`the probe's network namespace ${name} could not be removed: ${del.stderr}`);
  return false;
}

/** Binds a TCP listener to ::1 in a child node (the probe stays synchronous). */
function probeIpv6Loopback(): string | false {
  const code = `require('net').createServer().on('error', (e) => { process.stdout.write(e.code || e.message); process.exit(1); }).listen(0, '::1', function () { this.close(); })`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? false : `IPv6 is not available (cannot bind ::1: ${r.stdout.trim() || firstLine(r.stderr) || `exit ${r.status}`})`;
}

/** What a step of the i386 probe gave: exit status and output. */
export interface StepResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** What the 32-bit probe prints when it ran. */
export const I386_OK = 'i386 ok';

/**
 * Classifies the i386 probe: `compile` is `cc -m32` of a small program
 * using <sys/socket.h> (as the tests' 32-bit programs do); `run` is a
 * 64-bit launcher that execv()s it and prints `errno N` when that fails
 * (undefined when compiling failed). Node cannot exec it directly: libuv's
 * execvp hands a file the kernel calls ENOEXEC to /bin/sh, which hides the
 * error. Returns why 32-bit programs cannot run here, or false.
 */
export function classifyI386(compile: StepResult, run: StepResult | undefined): string | false {
  if (compile.status !== 0 || run === undefined) {
    return `cannot build 32-bit (i386) programs here: cc -m32 failed (${firstLine(compile.stderr) || `exit ${compile.status}`}); Debian packages libc6-dev-i386 and lib32gcc-12-dev provide what it needs`;
  }
  if (run.status === 0 && run.stdout.trim() === I386_OK) return false;
  const errno = /^errno (\d+)/.exec(run.stdout.trim())?.[1];
  if (errno === '8') return 'this kernel cannot run 32-bit (i386) programs (Exec format error)';
  if (errno === '2') return '32-bit (i386) programs cannot start here: their loader is missing (No such file or directory; Debian package libc6-i386)';
  // anything else is not a missing capability: let the test run and show it
  return false;
}

const PROBE_32 = `#include <stdio.h>
#include <sys/socket.h>
int main(void) { int s = socket(AF_INET, SOCK_STREAM, 0); if (s < 0) return 3; puts("${I386_OK}"); return 0; }
`;

const LAUNCHER = `#include <errno.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) { (void)argc; execv(argv[1], argv + 1); printf("errno %d\\n", errno); return 127; }
`;

function probeI386(): string | false {
  const dir = mkdtempSync(join(tmpdir(), 'graft-i386-probe-'));
  try {
    writeFileSync(join(dir, 'probe.c'), PROBE_32);
    writeFileSync(join(dir, 'launch.c'), LAUNCHER);
    const step = (cmd: string, args: string[]): StepResult => {
      const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
      return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr || (r.error?.message ?? '') };
    };
    const compile = step('cc', [...m32Flags(), '-o', join(dir, 'probe'), join(dir, 'probe.c')]);
    if (compile.status !== 0) return classifyI386(compile, undefined);
    const launcher = step('cc', ['-o', join(dir, 'launch'), join(dir, 'launch.c')]);
    if (launcher.status !== 0) throw new Error(`the i386 probe's launcher did not compile: ${launcher.stderr}`);
    return classifyI386(compile, step(join(dir, 'launch'), [join(dir, 'probe')]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
