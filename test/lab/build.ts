/** Builds the tests' own client programs (C and Go) once per source change. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { repoRoot } from './paths.js';

const outDir = join(repoRoot, 'build', 'test-bin');

function stale(out: string, src: string): boolean {
  return !existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs;
}

/**
 * Compiles test/fixtures/NAME.c with any `extra` compiler flags; returns the
 * binary's path. A variant (other flags, e.g. -m32) needs a name of its own.
 */
export function buildC(name: string, extra: readonly string[] = [], variant = ''): string {
  mkdirSync(outDir, { recursive: true });
  const src = join(repoRoot, 'test', 'fixtures', `${name}.c`);
  const out = join(outDir, `${name}${variant && `-${variant}`}`);
  if (stale(out, src)) execFileSync('cc', ['-O2', '-Wall', '-o', out, src, '-lpthread', ...extra], { stdio: 'inherit' });
  return out;
}

/**
 * Builds the Go program in `srcDir` as a static binary (CGO_ENABLED=0,
 * stdlib only, no module downloads) at `out`, when a source is newer.
 */
export function buildStaticGo(srcDir: string, out: string): string {
  mkdirSync(dirname(out), { recursive: true });
  const newest = Math.max(...readdirSync(srcDir).map((f) => statSync(join(srcDir, f)).mtimeMs));
  if (!existsSync(out) || statSync(out).mtimeMs < newest) {
    const go = spawnSync('go', ['version'], { stdio: 'ignore' });
    if (go.error) throw new Error('go is not installed: apt-get install golang-go');
    execFileSync('go', ['build', '-trimpath', '-o', out, '.'], {
      cwd: srcDir,
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
