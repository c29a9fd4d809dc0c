// Builds graft: the native tracer (C) and the TypeScript sources.
// Run by `npm install` / `npm ci` (prepare) and by `npm test`.
//
//   node scripts/build.mjs                  tracer (build/graft-tracer) + TypeScript
//                                           + the command's bundle (dist/bundle/graft.mjs)
//   node scripts/build.mjs --cross aarch64  only the tracer, with aarch64-linux-gnu-gcc,
//                                           into build/aarch64/graft-tracer
import { spawnSync } from 'node:child_process';
import { mkdirSync, existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cflags, findCompiler, nativeDir, newestSource, root, targetArch, units } from './native.mjs';

function fail(msg) {
  process.stderr.write(`graft build: ${msg}\n`);
  process.exit(1);
}

/** Compiles and links every unit plus the target's arch file into `out`. */
function compileTracer(cc, out) {
  const arch = targetArch(cc);
  if (!arch) fail(`${cc} compiles for a target graft has no native/arch/ file for (${cc} -dumpmachine).`);
  mkdirSync(dirname(out), { recursive: true });
  const args = [...cflags, '-o', out, ...units(), join(nativeDir, 'arch', `${arch}.c`)];
  const r = spawnSync(cc, args, { stdio: 'inherit' });
  if (r.status !== 0) fail(`compiling the tracer failed: ${cc} ${args.join(' ')}`);
}

function buildTracer() {
  const out = join(root, 'build', 'graft-tracer');
  if (existsSync(out) && statSync(out).mtimeMs >= newestSource()) return;
  const cc = findCompiler();
  if (!cc) {
    fail(
      'no C compiler found to build the tracer (native/*.c).\n' +
        '  Install one, e.g. on Debian/Ubuntu: apt-get install gcc libc6-dev\n' +
        '  (or set CC to your compiler), then run npm install again.',
    );
  }
  compileTracer(cc, out);
}

/** A cross build: always compiled, so a warning is never hidden by a fresh binary. */
function crossBuild(arch) {
  const compilers = { aarch64: 'aarch64-linux-gnu-gcc' };
  const cc = compilers[arch];
  if (!cc) fail(`--cross: no cross build for "${arch}" (known: ${Object.keys(compilers).join(', ')})`);
  if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status !== 0)
    fail(`--cross ${arch}: ${cc} not found (Debian: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross)`);
  const out = join(root, 'build', arch, 'graft-tracer');
  compileTracer(cc, out);
  process.stdout.write(`graft build: ${out}\n`);
}

/** Both sides' message definitions from spec/tracer-boundary.json (rewritten only when they change). */
function generateBoundary() {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'gen-boundary.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) fail('generating the boundary messages failed.');
}

function buildTypeScript() {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) fail('TypeScript is missing: run npm install first.');
  const r = spawnSync(process.execPath, [tsc, '-p', root], { stdio: 'inherit' });
  if (r.status !== 0) fail('TypeScript compilation failed.');
}

/**
 * The graft command as one file, dist/bundle/graft.mjs, which bin/graft runs:
 * Node 20 resolves, reads and compiles each ES module on its own, and for
 * graft's ~60 modules plus pino's and commander's that was most of its
 * start-up. The bundle is made from tsc's output (dist/src/main.js), the
 * same code the unit tests load. Left out, and loaded from node_modules
 * only when a run needs them: koffi (a native addon), socks (a dynamic
 * import), yaml and dns-packet (required at first use).
 */
async function buildBundle() {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    fail('esbuild is missing: run npm install first.');
  }
  await esbuild.build({
    entryPoints: [join(root, 'dist', 'src', 'main.js')],
    outfile: join(root, 'dist', 'bundle', 'graft.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['koffi', 'socks', 'yaml', 'dns-packet'],
    // CommonJS dependencies (pino, commander) require Node's modules: a
    // require made with createRequire costs a millisecond at start, so it
    // is made only for a module that is not built in (none is, today)
    banner: {
      js: [
        "import { createRequire as graftCreateRequire } from 'node:module';",
        'const require = (id) => process.getBuiltinModule?.(id) ?? graftCreateRequire(import.meta.url)(id);',
      ].join('\n'),
    },
    logLevel: 'warning',
  });
}

if (process.platform !== 'linux') fail('graft runs on Linux only (ptrace + seccomp).');
const cross = process.argv.indexOf('--cross');
if (cross >= 0) {
  crossBuild(process.argv[cross + 1]);
} else {
  generateBoundary();
  buildTracer();
  buildTypeScript();
  await buildBundle();
}
