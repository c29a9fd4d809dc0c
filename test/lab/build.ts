/** Builds the tests' own client programs (C and Go) once per source change. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repoRoot } from './paths.js';

const outDir = join(repoRoot, 'build', 'test-bin');

function stale(out: string, src: string): boolean {
  return !existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs;
}

/**
 * Where `asm/` headers come from for -m32 builds. Debian's gcc-multilib
 * provides /usr/include/asm; without it (CI installs libc6-dev-i386 and
 * lib32gcc-*-dev instead, which lack it) <sys/socket.h> cannot find
 * <asm/socket.h> under -m32. The x86_64 asm headers serve both ABIs, so a
 * directory holding a link asm -> the x86_64 ones, passed with -isystem,
 * stands in for it.
 */
const m32IncludeDir = join(repoRoot, 'build', 'm32-include');
const archAsm = '/usr/include/x86_64-linux-gnu/asm';

/** Compiler flags for a 32-bit (i386) build: -m32 plus the asm include directory. */
export function m32Flags(): string[] {
  mkdirSync(m32IncludeDir, { recursive: true });
  const link = join(m32IncludeDir, 'asm');
  let current: string | undefined;
  try {
    current = readlinkSync(link);
  } catch {
    current = undefined;
  }
  if (current !== archAsm) {
    if (current !== undefined) unlinkSync(link);
    try {
      symlinkSync(archAsm, link);
    } catch (err) {
      // another test process made it meanwhile
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return ['-m32', '-isystem', m32IncludeDir];
}

/**
 * Compiles test/fixtures/NAME.c with any `extra` compiler flags; returns the
 * binary's path. A variant (other flags, e.g. -m32) needs a name of its own.
 */
export function buildC(name: string, extra: readonly string[] = [], variant = ''): string {
  mkdirSync(outDir, { recursive: true });
  const src = join(repoRoot, 'test', 'fixtures', `${name}.c`);
  const out = join(outDir, `${name}${variant && `-${variant}`}`);
  // -m32 brings the include directory that stands in for gcc-multilib's asm link
  const flags = extra.flatMap((f) => (f === '-m32' ? m32Flags() : [f]));
  if (stale(out, src)) execFileSync('cc', ['-O2', '-Wall', '-o', out, src, '-lpthread', ...flags], { stdio: 'inherit' });
  return out;
}

/** The newest modification time of the Go sources (.go, go.mod, go.sum) under `dir`, recursively. */
function newestGoSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestGoSource(path));
    else if (/\.go$|^go\.(mod|sum)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Compiles test/fixtures/NAME.c as a static musl binary (musl-gcc -static,
 * Debian's musl-tools); returns the binary's path.
 */
export function buildMusl(name: string): string {
  mkdirSync(outDir, { recursive: true });
  const src = join(repoRoot, 'test', 'fixtures', `${name}.c`);
  const out = join(outDir, `${name}-musl`);
  if (stale(out, src)) execFileSync('musl-gcc', ['-static', '-O2', '-Wall', '-o', out, src], { stdio: 'inherit' });
  return out;
}

/**
 * Builds package `pkg` (a path relative to the module root, `.` for the root
 * package) of the Go module in `moduleDir` as a static binary (CGO_ENABLED=0,
 * stdlib only, no module downloads) at `out`, when any of the module's Go
 * sources is newer.
 */
export function buildStaticGo(moduleDir: string, out: string, pkg = '.'): string {
  mkdirSync(dirname(out), { recursive: true });
  if (!existsSync(out) || statSync(out).mtimeMs < newestGoSource(moduleDir)) {
    const go = spawnSync('go', ['version'], { stdio: 'ignore' });
    if (go.error) throw new Error('go is not installed: apt-get install golang-go');
    execFileSync('go', ['build', '-trimpath', '-o', out, pkg.startsWith('.') ? pkg : `./${pkg}`], {
      cwd: moduleDir,
      stdio: 'inherit',
      env: {
        ...process.env,
        CGO_ENABLED: '0',
        GOFLAGS: '-mod=mod',
        GO111MODULE: 'on',
        GOPROXY: 'off',
        GOCACHE: process.env.GOCACHE ?? join(repoRoot, 'build', 'go-cache'),
        HOME: process.env.HOME ?? '/root',
      },
    });
  }
  return out;
}

/** Builds test/fixtures/NAME/ as a static Go binary. */
export function buildGo(name: string): string {
  return buildStaticGo(join(repoRoot, 'test', 'fixtures', name), join(outDir, name));
}

/**
 * The tracer's boundary codec as a filter (native/tools/boundary_echo.c):
 * reads lines, writes each back decoded and encoded again.
 */
export function buildBoundaryEcho(): string {
  mkdirSync(outDir, { recursive: true });
  const native = join(repoRoot, 'native');
  const sources = [join(native, 'tools', 'boundary_echo.c'), join(native, 'boundary.c'), join(native, 'boundary_messages.c')];
  const out = join(outDir, 'boundary-echo');
  if (sources.some((src) => stale(out, src)) || stale(out, join(native, 'boundary.h')) || stale(out, join(native, 'boundary_messages.h'))) {
    execFileSync('cc', ['-O2', '-std=gnu11', '-Wall', '-Wextra', '-Werror', '-o', out, ...sources], { stdio: 'inherit' });
  }
  return out;
}
