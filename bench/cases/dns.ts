/**
 * DNS: how long a program waits for an answer when graft answers its DNS,
 * and whether graft's memory stays bounded over many distinct names.
 *
 * The server: dnsmasq on 127.0.0.2:53 in the client namespace (loopback:
 * what is measured is graft's part, not a network), answering every name
 * under bench.example with DEST (198.51.100.7) from its own configuration
 * (--address: no upstream, no cache to warm). The client namespace's
 * resolv.conf names it. The client, bench/fixtures/go/dnsq (static Go),
 * asks for COUNT distinct names q0.bench.example, q1.bench.example, ...
 * one after another, each on a UDP socket of its own connected to the
 * resolv.conf server (what a resolver does for one lookup), and checks
 * every answer (id, NOERROR, A records inside the range given):
 *   native  dnsq -names COUNT -warmup COUNT -expect DEST/32
 *   local   graft --dns local -- dnsq ...          (graft forwards each
 *           question to dnsmasq and hands its answer back: real answers)
 *   remote  graft --dns remote --proxy socks5://127.0.0.1:1080 -- dnsq
 *           ... -expect 198.18.0.0/15    (every name goes through
 *           the proxy, so graft answers each with a fake address itself;
 *           nothing is forwarded, and nothing connects to the proxy: dnsq
 *           only asks, so no proxy needs to listen)
 * Each run asks 2 x COUNT names (-warmup COUNT): metrics, from dnsq's own
 * clock (graft's start-up is not in them), the p50 and p99 of the round
 * trips (socket to answer) of the second COUNT, graft's steady state, and
 * p50_first and p99_first of the first COUNT, a fresh graft's (Node has
 * not yet compiled its hot paths: slower, the p99 most).
 *
 * COUNT is 2,000 (500 with --quick); each variant runs 5 times (once),
 * interleaved.
 *
 * Memory: one more graft --dns remote run asks 10,000 distinct names (1,000
 * with --quick) in two halves (dnsq's stdin protocol), sampling the VmRSS
 * of graft's Node process and its tracer before the first name ("start"),
 * after the first half ("middle") and after the second ("end"). Each name
 * holds a fake address slot (docs/names.md: at most 65,536, so none is
 * given up here): some growth is that table doing its job. The check, for
 * each process, is the soak's allowance from the middle on: end <= middle
 * x 1.25 + 10 MB (bench/procs.ts). The middle, not the start: the first
 * names also pay for what graft sets up once. For Node at about 75 MB the
 * allowance is about 29 MB, some 6 KB per name of the second half: a leak
 * that size per name fails; below it, the growth per name printed in the
 * report is the figure to watch.
 */
import type { BenchCase, BenchContext, Row, Variant } from '../case.js';
import { interleave, singleRows } from '../case.js';
import type { BenchLab, RunningGraft } from '../lab.js';
import { buildBenchGo, DEST4, requireTool } from '../lab.js';
import { graftPids, RSS_GROWTH, RSS_SLACK_MB, rssLimitMB, statusKb, type GraftPids } from '../procs.js';
import { poll } from '../../test/lab/procs.js';

const SERVER = '127.0.0.2';
const SUFFIX = 'bench.example';
/** graft's default fake range (docs/names.md) */
const FAKE_RANGE = '198.18.0.0/15';
/** never dialed: dnsq makes no connection */
const PROXY = 'socks5://127.0.0.1:1080';
const REMOTE_ARGS = ['--dns', 'remote', '--proxy', PROXY];

/** What dnsq prints for a batch (see its header). */
interface DnsqResult {
  n: number;
  ok: number;
  failed: number;
  errors: Record<string, number>;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  max_us: number;
}

/** dnsq's arguments, every answer inside `expect`: `count` names after `warmup` (no count: the stdin protocol). */
function dnsqArgs(bin: string, expect: string, count?: number, warmup = 0): string[] {
  const run = count ? ['-names', String(count), ...(warmup ? ['-warmup', String(warmup)] : [])] : [];
  return [bin, '-suffix', SUFFIX, '-expect', expect, ...run];
}

/** dnsq's result lines (with -warmup: the warm-up's, then the measured names'). */
function parseDnsq(stdout: string, lines: number): DnsqResult[] {
  const results = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as DnsqResult);
  if (results.length !== lines) throw new Error(`dnsq printed ${results.length} results, not ${lines}: ${stdout.slice(0, 500)}`);
  return results;
}

/** dnsmasq in the client namespace, answering *.SUFFIX with DEST4, and the namespace's resolv.conf naming it; returns how to stop both. */
async function startDnsmasq(lab: BenchLab, dnsq: string): Promise<() => void> {
  requireTool('dnsmasq', '--version', 'apt-get install dnsmasq-base');
  const args = [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    `--listen-address=${SERVER}`,
    '--port=53',
    '--user=root',
    '--pid-file=',
    `--address=/${SUFFIX}/${DEST4}`,
  ];
  const server = lab.net.lab.adopt(lab.net.client.spawn('dnsmasq', args));
  let err = '';
  server.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  server.stdout!.resume();
  const stop = (): void => {
    server.kill('SIGKILL');
    lab.clientResolvConf(undefined);
  };
  try {
    lab.clientResolvConf(`nameserver ${SERVER}\n`);
    await poll(
      () => {
        if (server.exitCode !== null) throw new Error(`dnsmasq exited with ${server.exitCode}: ${err.trim()}`);
        return lab.net.client.run('ss', '-Hlun', 'sport = :53').includes(`${SERVER}:53`);
      },
      10_000,
      'dnsmasq to listen',
    );
    // one answer natively: the server works, and first-use costs are paid here
    await lab.native(dnsqArgs(dnsq, `${DEST4}/32`, 1));
    return stop;
  } catch (err) {
    stop();
    throw err;
  }
}

interface MemorySample {
  /** names asked so far */
  names: number;
  nodeRssMB: number;
  tracerRssMB: number;
}

interface Memory {
  command: string;
  samples: [MemorySample, MemorySample, MemorySample];
  /** the two halves' dnsq results */
  batches: DnsqResult[];
}

function sampleMemory(pids: GraftPids, names: number): MemorySample {
  return { names, nodeRssMB: statusKb(pids.node, 'VmRSS') / 1024, tracerRssMB: statusKb(pids.tracer, 'VmRSS') / 1024 };
}

/** The remote-mode run of `names` distinct names in two halves, sampled at start, middle and end. */
async function runMemory(ctx: BenchContext, dnsq: string, names: number): Promise<Memory> {
  const half = names / 2;
  const program = dnsqArgs(dnsq, FAKE_RANGE);
  const command = `graft ${REMOTE_ARGS.join(' ')} -- dnsq ${program.slice(1).join(' ')} (then "query ${half}" twice)`;
  const run: RunningGraft = ctx.lab.startGraft(REMOTE_ARGS, program, 300_000);
  const { child, next } = run;
  try {
    await next((l) => l === 'ready', '"ready"', 30_000);
    const pids = graftPids(child.pid!);
    const batch = async (): Promise<DnsqResult> => {
      child.stdin!.write(`query ${half}\n`);
      const result = JSON.parse(await next((l) => l.startsWith('{'), 'its batch result', 120_000)) as DnsqResult;
      if (result.failed) throw new Error(`${result.failed} of ${result.n} queries failed: ${JSON.stringify(result.errors)}`);
      return result;
    };
    const start = sampleMemory(pids, 0);
    const first = await batch();
    const middle = sampleMemory(pids, half);
    ctx.progress(`dns memory: ${half} names, node ${mb(middle.nodeRssMB)} MB, tracer ${mb(middle.tracerRssMB)} MB`);
    const second = await batch();
    const end = sampleMemory(pids, names);
    ctx.progress(`dns memory: ${names} names, node ${mb(end.nodeRssMB)} MB, tracer ${mb(end.tracerRssMB)} MB`);
    child.stdin!.end('exit\n');
    const [code, signal] = await run.closed;
    if (code !== 0) throw new Error(`exited with ${signal ?? code}`);
    return { command, samples: [start, middle, end], batches: [first, second] };
  } catch (err) {
    child.kill('SIGKILL');
    await run.closed;
    throw new Error(`${command}: ${(err as Error).message}${run.stderr() ? `\n${run.stderr()}` : ''}`, { cause: err });
  }
}

const mb = (n: number): string => n.toFixed(1);

/** The memory check of the header, for each process: a sentence, and whether it held. */
function memoryChecks(m: Memory): { ok: boolean; text: string }[] {
  const [, middle, end] = m.samples;
  return (['node', 'tracer'] as const).map((who) => {
    const [from, to] = [middle[`${who}RssMB`], end[`${who}RssMB`]];
    const limit = rssLimitMB(from);
    return {
      ok: to <= limit,
      text: `${who} RSS after ${end.names} names: ${mb(to)} MB, allowed ${mb(from)} MB (after ${middle.names}) x ${RSS_GROWTH} + ${RSS_SLACK_MB} MB = ${mb(limit)} MB`,
    };
  });
}

function memoryReport(m: Memory, checks: { ok: boolean; text: string }[]): string {
  const [, middle, end] = m.samples;
  // from the middle on: the first names also pay for what graft sets up once (Node compiling the DNS path, its heap growing to its working size)
  const perName = (who: 'node' | 'tracer'): string => (((end[`${who}RssMB`] - middle[`${who}RssMB`]) * 1024 * 1024) / (end.names - middle.names)).toFixed(0);
  return [
    `dns memory: ${end.names} distinct names under graft --dns remote`,
    ...m.samples.map((s) => `  after ${String(s.names).padStart(6)} names: node ${mb(s.nodeRssMB)} MB, tracer ${mb(s.tracerRssMB)} MB`),
    `  growth per name from ${middle.names} names on: node ${perName('node')} bytes, tracer ${perName('tracer')} bytes`,
    `  latency of the halves: p50 ${m.batches.map((b) => b.p50_us.toFixed(0)).join(' / ')} us, p99 ${m.batches.map((b) => b.p99_us.toFixed(0)).join(' / ')} us`,
    `  checks (from ${middle.names} names on):`,
    ...checks.map((c) => `    ${c.ok ? 'ok  ' : 'FAIL'}  ${c.text}`),
  ].join('\n');
}

function memoryRows(m: Memory): Row[] {
  const points = (f: (s: MemorySample) => number): [string, number][] => m.samples.map((s) => [`remote ${s.names}`, f(s)]);
  return [
    ...singleRows(
      'dns',
      'node_rss',
      'MB',
      points((s) => s.nodeRssMB),
    ),
    ...singleRows(
      'dns',
      'tracer_rss',
      'MB',
      points((s) => s.tracerRssMB),
    ),
  ];
}

/**
 * The latency variants: native, graft --dns local, graft --dns remote, each
 * a run of `count` names after `count` others: p50 and p99 of the second
 * batch (the steady state), p50_first and p99_first of the first (what a
 * fresh graft answers at: see dnsq's -warmup).
 */
function variants(lab: BenchLab, dnsq: string, count: number): Variant[] {
  const real = `${DEST4}/32`;
  const variant = (name: string, graftArgs: readonly string[] | undefined, expect: string): Variant => {
    const program = dnsqArgs(dnsq, expect, count, count);
    const shown = `dnsq ${program.slice(1).join(' ')}`;
    return {
      name,
      command: graftArgs ? `graft ${graftArgs.join(' ')} -- ${shown}` : shown,
      measure: async () => {
        const [first, steady] = parseDnsq((graftArgs ? await lab.graft(graftArgs, program) : await lab.native(program)).stdout, 2);
        return { p50: steady!.p50_us, p99: steady!.p99_us, p50_first: first!.p50_us, p99_first: first!.p99_us };
      },
    };
  };
  return [variant('native', undefined, real), variant('local', ['--dns', 'local'], real), variant('remote', REMOTE_ARGS, FAKE_RANGE)];
}

export const dns: BenchCase = {
  name: 'dns',
  summary: 'DNS answer latency under graft --dns local and remote (dnsq against dnsmasq on loopback), and graft memory over 10,000 distinct names',
  async run(ctx: BenchContext) {
    const { lab, quick } = ctx;
    const dnsq = buildBenchGo('dnsq');
    // names per batch: each run asks 2 x count names (first, then measured)
    const count = quick ? 500 : 2000;
    const repeats = quick ? 1 : 5;
    const memoryNames = quick ? 1000 : 10_000;
    const stop = await startDnsmasq(lab, dnsq);
    try {
      const vs = variants(lab, dnsq, count);
      const metrics = [
        { id: 'p50', unit: 'us' },
        { id: 'p99', unit: 'us' },
        { id: 'p50_first', unit: 'us' },
        { id: 'p99_first', unit: 'us' },
      ];
      const show = (v: Record<string, number>): string =>
        `p50 ${v.p50?.toFixed(0)} us, p99 ${v.p99?.toFixed(0)} us (first ${count}: p50 ${v.p50_first?.toFixed(0)} us, p99 ${v.p99_first?.toFixed(0)} us)`;
      // without --quick, one unrecorded run of 200 + 200 names per variant first (the disk cache: graft's own files)
      const warmup = quick ? [] : variants(lab, dnsq, 200);
      const rows = await interleave({ caseName: 'dns', metrics, variants: vs, repeats, warmup, show }, ctx);
      const memory = await runMemory(ctx, dnsq, memoryNames);
      const checks = memoryChecks(memory);
      return {
        rows: [...rows, ...memoryRows(memory)],
        variants: [...vs.map((v) => ({ name: v.name, command: v.command })), { name: 'memory', command: memory.command }],
        settings: {
          count,
          repeats,
          warmup: quick ? 'none' : '200 + 200 names per variant',
          server: `dnsmasq on ${SERVER}:53 in the client namespace, *.${SUFFIX} -> ${DEST4}`,
          client: 'bench/fixtures/go/dnsq (Go, CGO_ENABLED=0): one connected UDP socket per query',
          memoryNames,
          allowance: `RSS after all names <= RSS after half x ${RSS_GROWTH} + ${RSS_SLACK_MB} MB`,
          memory: { samples: memory.samples, batches: memory.batches },
        },
        report: memoryReport(memory, checks),
        failed: checks.filter((c) => !c.ok).map((c) => c.text),
      };
    } finally {
      stop();
    }
  },
};
