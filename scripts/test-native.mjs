// Tests of the native tracer that need no root and no network:
//   - the C unit tests in native/test/ (the pure units: addresses, rules,
//     faults, table parsing, record formatting), and native/arch/test_<arch>.c
//     (the seccomp filter of the build machine's arch);
//   - every header compiles on its own;
//   - the aarch64 arch file refuses at start with its one line.
// Prints one closing line, "native: N passed, M failed"; exits 1 on a failure.
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { allSources, cflags, findCompiler, nativeDir, root, targetArch, units } from './native.mjs';

const out = join(root, 'build', 'native-test');
mkdirSync(out, { recursive: true });
const cc = findCompiler();
if (!cc) {
  process.stderr.write('test-native: no C compiler found\n');
  process.exit(1);
}
let passed = 0;
let failed = 0;

function compile(args) {
  return spawnSync(cc, [...cflags, ...args], { encoding: 'utf8' });
}

function report(ok, name, detail = '') {
  if (ok) passed++;
  else {
    failed++;
    process.stdout.write(`FAIL ${name}\n${detail}`);
  }
}

/**
 * What the unit tests link against: the pure units, and the seccomp filter
 * with its arch part (built, not installed; the arch file's other
 * functions need a tracee and are not called).
 */
const pure = [
  'boundary.c',
  'boundary_messages.c',
  'sockaddr.c',
  'rules.c',
  'byname.c',
  'faults.c',
  'table.c',
  'records.c',
  'egress.c',
  'util.c',
  'filter.c',
  'tracee.c',
  'tasks.c',
  'peers.c',
];

function unitTests() {
  const bin = join(out, 'unit-tests');
  const arch = targetArch(cc);
  if (!arch) return report(false, 'native/test', `no native/arch/ file for ${cc}'s target\n`);
  // the arch file's own tests sit beside it (arch details stay in native/arch/)
  const archTests = join(nativeDir, 'arch', `test_${arch}.c`);
  const tests = allSources(join(nativeDir, 'test'))
    .filter((f) => f.endsWith('.c'))
    .concat(existsSync(archTests) ? [archTests] : []);
  const c = compile(['-o', bin, ...tests, ...pure.map((f) => join(nativeDir, f)), join(nativeDir, 'arch', `${arch}.c`)]);
  if (c.status !== 0) return report(false, 'building native/test', c.stderr);
  const r = spawnSync(bin, process.argv.includes('-v') ? ['-v'] : [], { encoding: 'utf8' });
  const summary = /^tests: (\d+) passed, (\d+) failed$/m.exec(r.stdout);
  process.stdout.write(r.stdout.replace(/^tests: .*\n/m, ''));
  if (!summary) return report(false, 'native/test', `no summary line (status ${r.status})\n${r.stderr}`);
  passed += Number(summary[1]);
  failed += Number(summary[2]);
  if (r.status !== 0 && Number(summary[2]) === 0) report(false, 'native/test', `exit status ${r.status}\n`);
}

/** `compile`, without waiting: resolves to { status, stderr }. */
function compileAsync(args) {
  return new Promise((resolve) => {
    const child = spawn(cc, [...cflags, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

/** Every header, included alone in a translation unit, compiles (a few at a time). */
async function headersStandalone() {
  const headers = allSources().filter((f) => f.endsWith('.h'));
  const results = new Array(headers.length);
  let next = 0;
  async function worker() {
    while (next < headers.length) {
      const i = next++;
      const tu = join(out, `header-${relative(nativeDir, headers[i]).replace(/[/.]/g, '_')}.c`);
      writeFileSync(tu, `#include "${headers[i]}"\n`);
      results[i] = await compileAsync(['-fsyntax-only', tu]);
    }
  }
  await Promise.all(Array.from({ length: Math.max(2, availableParallelism()) }, worker));
  headers.forEach((h, i) => report(results[i].status === 0, `header ${relative(nativeDir, h)} does not compile on its own`, results[i].stderr));
}

/** The tracer built with arch/aarch64.c says it is not supported, and nothing else. */
function aarch64Refuses() {
  const bin = join(out, 'tracer-aarch64-stub');
  const c = compile(['-o', bin, ...units(), join(nativeDir, 'arch', 'aarch64.c')]);
  if (c.status !== 0) return report(false, 'building the tracer with arch/aarch64.c', c.stderr);
  const r = spawnSync(bin, ['--', 'true'], { encoding: 'utf8' });
  const ok = r.status === 2 && r.stderr === 'graft: aarch64 is not supported yet\n' && r.stdout === '';
  report(ok, 'arch/aarch64.c refuses at start', `status ${r.status}, stderr ${JSON.stringify(r.stderr)}\n`);
}

unitTests();
await headersStandalone();
aarch64Refuses();
process.stdout.write(`native: ${passed} passed, ${failed} failed\n`);
process.exit(failed ? 1 : 0);
