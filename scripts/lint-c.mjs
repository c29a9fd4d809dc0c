// Checks the tracer's C sources (native/**/*.c, native/**/*.h) against the
// repo's .clang-format: `node scripts/lint-c.mjs` reports what clang-format
// would change and fails; `node scripts/lint-c.mjs --fix` rewrites in place.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const fix = process.argv.includes('--fix');

function fail(msg) {
  process.stderr.write(`lint-c: ${msg}\n`);
  process.exit(1);
}

const clangFormat = process.env.CLANG_FORMAT || 'clang-format';
const probe = spawnSync(clangFormat, ['--version'], { stdio: 'ignore' });
if (probe.error || probe.status !== 0) {
  fail(
    `${clangFormat} not found: it checks the C sources in native/.\n` +
      '  Install it, e.g. on Debian/Ubuntu: apt-get install clang-format (or set CLANG_FORMAT).',
  );
}

// clang-format --style=file looks for the file from each source's folder
// upwards: native/ first, then the repo root. Without one there is nothing
// to check against, and clang-format's built-in default is not the project's.
const styleFiles = [nativeDir, root].flatMap((d) => ['.clang-format', '_clang-format'].map((f) => join(d, f)));
if (!styleFiles.some((f) => existsSync(f))) fail('no .clang-format in native/ or at the repo root: nothing to check the C sources against.');

const sources = readdirSync(nativeDir, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.c') || f.endsWith('.h'))
  .sort()
  .map((f) => join(nativeDir, f));
if (!sources.length) fail('no .c or .h files under native/');

const args = fix ? ['-i', '--style=file', ...sources] : ['--dry-run', '-Werror', '--style=file', ...sources];
const r = spawnSync(clangFormat, args, { stdio: 'inherit' });
if (r.status !== 0) {
  fail(fix ? `${clangFormat} failed` : `${sources.length} files checked; the ones above differ from .clang-format (npm run format fixes them).`);
}
process.stdout.write(`lint-c: ${sources.length} C files ${fix ? 'formatted' : 'match .clang-format'}\n`);
