/**
 * graft's benchmarks: `npm run bench [-- --quick] [-- --only NAME]`.
 *
 * Builds the two-uplink lab (bench/lab.ts), runs each case with its variants
 * interleaved (bench/case.ts), prints a table and writes everything to
 * bench/results/latest.json. Reports figures, never judges them, except
 * the soak case, which checks graft's memory, descriptors and records after
 * its churn, and the dns case, which checks graft's memory over 10,000
 * names: the exit status is 1 when a case could not run (a run failed)
 * or a soak or dns check failed, 2 for bad options or a machine that cannot run
 * the lab.
 *
 *   --quick        a short smoke run (one repeat, small sizes, a 15 s soak): what CI runs
 *   --only NAME    run only this case (repeat or comma-separate for several)
 *   --seconds N    how long the soak churns (default 300, 15 with --quick)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../test/lab/paths.js';
import type { BenchCase, Row } from './case.js';
import { concurrency } from './cases/concurrency.js';
import { connects } from './cases/connects.js';
import { control } from './cases/control.js';
import { dns } from './cases/dns.js';
import { overhead } from './cases/overhead.js';
import { startup } from './cases/startup.js';
import { goconnects } from './cases/goconnects.js';
import { proxychains } from './cases/proxychains.js';
import { placement } from './cases/placement.js';
import { soak } from './cases/soak.js';
import { throughput } from './cases/throughput.js';
import { BenchLab } from './lab.js';

const CASES: readonly BenchCase[] = [throughput, connects, goconnects, placement, proxychains, overhead, startup, concurrency, dns, control, soak];
const resultsFile = join(repoRoot, 'bench', 'results', 'latest.json');

interface Options {
  readonly quick: boolean;
  readonly only: readonly string[];
  readonly seconds?: number;
}

function usage(): string {
  return `usage: node dist/bench/run.js [--quick] [--only NAME[,NAME...]]... [--seconds N]\ncases: ${CASES.map((c) => c.name).join(', ')}\n--seconds N: how long the soak churns (default 300, 15 with --quick)\n`;
}

function parseArgs(argv: readonly string[]): Options {
  let quick = false;
  let seconds: number | undefined;
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const value = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (!value) throw new Error('--only needs a case name');
      only.push(...value.split(',').filter(Boolean));
    } else if (a === '--seconds' || a.startsWith('--seconds=')) {
      const value = a === '--seconds' ? argv[++i] : a.slice('--seconds='.length);
      seconds = Number(value);
      if (!value || !Number.isFinite(seconds) || seconds < 5) throw new Error('--seconds needs a number of seconds, at least 5');
    } else if (a === '-h' || a === '--help') {
      process.stdout.write(usage());
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  const unknown = only.filter((n) => !CASES.some((c) => c.name === n));
  if (unknown.length) throw new Error(`no such case: ${unknown.join(', ')}`);
  return { quick, only, ...(seconds !== undefined ? { seconds } : {}) };
}

interface Machine {
  readonly nproc: number;
  readonly kernel: string;
  readonly cpu: string;
  readonly node: string;
  readonly graft: string;
}

function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], cwd: repoRoot }).trim();
  } catch {
    return undefined;
  }
}

function machine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const commit = tryRun('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = tryRun('git', ['status', '--porcelain', '--untracked-files=no']);
  const rev = commit ? ` (${commit}${dirty ? ', uncommitted changes' : ''})` : '';
  return {
    nproc: Number(tryRun('nproc', []) ?? NaN),
    kernel: release(),
    cpu,
    node: process.version,
    graft: `${pkg.version}${rev}`,
  };
}

function fmt(n: number): string {
  const abs = Math.abs(n);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const TIME_UNITS = new Set(['us', 'ms', 's']);

/** The proxychains4 variant's median of the same case and metric, where the case has one. */
function proxychainsMedian(rows: readonly Row[], r: Row): number | undefined {
  return rows.find((p) => p.case === r.case && p.metric === r.metric && p.variant === 'proxychains')?.median;
}

function table(rows: readonly Row[]): string {
  const header = ['case', 'variant', 'metric', 'median (min-max)', 'ratio', 'added', 'vs proxychains4'];
  const body = rows.map((r) => {
    const pc = proxychainsMedian(rows, r);
    return [
      r.case,
      r.variant,
      r.metric,
      `${fmt(r.median)} ${r.unit} (${fmt(r.min)}-${fmt(r.max)})`,
      r.ratio.toFixed(2),
      // the difference from the baseline, for latencies ("added latency")
      TIME_UNITS.has(r.unit) && r.variant !== r.baseline ? `${r.delta >= 0 ? '+' : ''}${fmt(r.delta)} ${r.unit}` : '',
      pc ? (r.median / pc).toFixed(2) : '',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i >= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${usage()}`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: needs root: it builds network namespaces (run as root, as the tests do)\n');
    return 2;
  }
  const selected = opts.only.length ? CASES.filter((c) => opts.only.includes(c.name)) : CASES;
  const m = machine();
  const date = new Date().toISOString();
  const head = [
    `graft benchmarks, ${opts.quick ? 'quick (smoke) run' : 'full run'}, ${date}`,
    `machine: nproc ${m.nproc}, ${m.cpu}, Linux ${m.kernel}, node ${m.node}, graft ${m.graft}`,
  ].join('\n');
  process.stdout.write(`${head}\n\n`);

  const progress = (line: string): void => void process.stderr.write(`  ${line}\n`);
  const results: {
    name: string;
    summary: string;
    variants?: unknown;
    settings?: unknown;
    report?: string;
    error?: string;
    seconds: number;
  }[] = [];
  const rows: Row[] = [];

  let lab: BenchLab | undefined;
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals, status: number) => () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`bench: ${signal}: tearing the lab down\n`);
    lab?.destroy();
    // a moment for Node to reap the processes it started (they were just killed)
    setTimeout(() => process.exit(status), 300);
  };
  process.once('SIGINT', onSignal('SIGINT', 130));
  process.once('SIGTERM', onSignal('SIGTERM', 143));
  try {
    lab = new BenchLab();
    for (const c of selected) {
      if (interrupted) break;
      const started = Date.now();
      process.stderr.write(`${c.name}: ${c.summary}\n`);
      try {
        const r = await c.run({ lab, quick: opts.quick, ...(opts.seconds !== undefined ? { seconds: opts.seconds } : {}), progress });
        rows.push(...r.rows);
        const failed = r.failed?.length ? { error: `${r.failed.length} check(s) failed: ${r.failed.join('; ')}` } : {};
        if (failed.error) process.stderr.write(`${c.name}: FAILED: ${failed.error}\n`);
        results.push({
          name: c.name,
          summary: c.summary,
          variants: r.variants,
          settings: r.settings,
          ...(r.report ? { report: r.report } : {}),
          ...failed,
          seconds: (Date.now() - started) / 1000,
        });
      } catch (err) {
        if (interrupted) break;
        const message = err instanceof Error ? err.message : String(err);
        process.stderr.write(`${c.name}: FAILED: ${message}\n`);
        results.push({ name: c.name, summary: c.summary, error: message, seconds: (Date.now() - started) / 1000 });
      }
    }
  } finally {
    lab?.destroy();
  }
  if (interrupted) return new Promise<number>(() => {}); // the signal handler exits

  process.stdout.write(`\n${rows.length ? table(rows) : '(no results)'}\n`);
  process.stdout.write(
    '\nratio: median / native median of the same run; added: median - native median; vs proxychains4: median / proxychains4 median of the same run and metric\n',
  );
  for (const r of results) {
    if (r.error && !r.settings) {
      process.stdout.write(`${r.name}: FAILED: ${r.error.split('\n')[0]}\n`);
      continue;
    }
    process.stdout.write(`${r.name} (${r.seconds.toFixed(1)} s): ${JSON.stringify(r.settings)}\n`);
    for (const v of (r.variants ?? []) as { name: string; command: string }[]) process.stdout.write(`  ${v.name.padEnd(8)} ${v.command}\n`);
    if (r.report) process.stdout.write(`${r.report}\n`);
    if (r.error) process.stdout.write(`${r.name}: FAILED: ${r.error}\n`);
  }
  mkdirSync(join(repoRoot, 'bench', 'results'), { recursive: true });
  const json = { date, quick: opts.quick, only: opts.only, ...(opts.seconds !== undefined ? { seconds: opts.seconds } : {}), machine: m, cases: results, rows };
  writeFileSync(resultsFile, `${JSON.stringify(json, null, 2)}\n`);
  process.stdout.write(`\nwritten to bench/results/latest.json\n`);
  return results.some((r) => r.error) ? 1 : 0;
}

main().then(
  (status) => process.exit(status),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
