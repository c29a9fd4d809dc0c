// Builds graft: the native tracer (C) and the TypeScript sources.
// Run by `npm install` / `npm ci` (prepare) and by `npm test`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, existsSync, statSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tracerSrc = join(root, 'native', 'tracer.c');
const tracerOut = join(root, 'build', 'graft-tracer');

function fail(msg) {
  process.stderr.write(`graft build: ${msg}\n`);
  process.exit(1);
}

function findCompiler() {
  for (const cc of [process.env.CC, 'cc', 'gcc', 'clang'].filter(Boolean)) {
    const probe = spawnSync(cc, ['--version'], { stdio: 'ignore' });
    if (probe.status === 0) return cc;
  }
  return null;
}

function buildTracer() {
  const nativeDir = dirname(tracerSrc);
  const newestSource = Math.max(...readdirSync(nativeDir).map((f) => statSync(join(nativeDir, f)).mtimeMs));
  const fresh = existsSync(tracerOut) && statSync(tracerOut).mtimeMs >= newestSource;
  if (fresh) return;
  const cc = findCompiler();
  if (!cc) {
    fail('no C compiler found to build the tracer (native/tracer.c).\n' +
      '  Install one, e.g. on Debian/Ubuntu: apt-get install gcc libc6-dev\n' +
      '  (or set CC to your compiler), then run npm install again.');
  }
  mkdirSync(dirname(tracerOut), { recursive: true });
  const args = ['-O2', '-g', '-Wall', '-Wextra', '-Werror', '-std=gnu11', '-o', tracerOut, tracerSrc];
  const r = spawnSync(cc, args, { stdio: 'inherit' });
  if (r.status !== 0) fail(`compiling the tracer failed: ${cc} ${args.join(' ')}`);
}

function buildTypeScript() {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) fail('TypeScript is missing: run npm install first.');
  const r = spawnSync(process.execPath, [tsc, '-p', root], { stdio: 'inherit' });
  if (r.status !== 0) fail('TypeScript compilation failed.');
}

if (process.platform !== 'linux') fail('graft runs on Linux only (ptrace + seccomp).');
buildTracer();
buildTypeScript();
