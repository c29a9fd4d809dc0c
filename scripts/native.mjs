// What the native tracer is built from, shared by build.mjs and
// test-native.mjs: the units in native/, and one file of native/arch/
// chosen by the compiler's target.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const nativeDir = join(root, 'native');
export const cflags = ['-O2', '-g', '-Wall', '-Wextra', '-Werror', '-std=gnu11'];

/** The architectures native/arch/ has a file for, by `cc -dumpmachine` prefix. */
const archs = { x86_64: 'x86_64', aarch64: 'aarch64' };

/** The compiler to use: $CC, else the first of cc, gcc, clang that runs. */
export function findCompiler() {
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
    const probe = spawnSync(cc, ['--version'], { stdio: 'ignore' });
    if (probe.status === 0) return cc;
  }
  return null;
}

/** The architecture `cc` compiles for (its native/arch/ file), or null. */
export function targetArch(cc) {
  const r = spawnSync(cc, ['-dumpmachine'], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const machine = r.stdout.trim().split('-')[0];
  return archs[machine] ?? null;
}

/** The units in native/ (without main's tracer.c when `withMain` is false). */
export function units({ withMain = true } = {}) {
  return readdirSync(nativeDir)
    .filter((f) => f.endsWith('.c') && (withMain || f !== 'tracer.c'))
    .sort()
    .map((f) => join(nativeDir, f));
}

/** Every .c and .h under native/ (recursively), optionally leaving out dirs. */
export function allSources(dir = nativeDir, skip = []) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!skip.includes(entry.name)) out.push(...allSources(p, skip));
    } else if (/\.[ch]$/.test(entry.name)) {
      out.push(p);
    }
  }
  return out.sort();
}

/** Newest modification time of the tracer's sources (tests left out). */
export function newestSource() {
  const sources = allSources(nativeDir, ['test']).filter((f) => !basename(f).startsWith('test_'));
  return Math.max(...sources.map((f) => statSync(f).mtimeMs));
}
