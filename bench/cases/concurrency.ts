/**
 * Many TCP connections open at once, client -> hostB over uplink B:
 *   native  concclient -addr DEST:7100 -n N -bind 203.0.113.1
 *   proxy   graft --mode proxy --mark 0x10 -- concclient -addr DEST:7100 -n N
 * both under `prlimit --nofile=L:L` (L = 65536, or the harness's hard limit
 * when that is lower: a process cannot raise its hard limit without
 * CAP_SYS_RESOURCE). bench/fixtures/go/concclient dials all N connections at
 * once, sends 300 bytes of each connection's own data on each, checks every
 * byte of the reply from bench/fixtures/echod.c (an epoll echo server in
 * hostB), holds all N open (a barrier: none closes before all have
 * exchanged, then 0.5 s more), and closes them all.
 *
 * Metrics per N (from concclient's own clock; graft's start-up is not in
 * them):
 *   ok_N         % of the N connections that exchanged exactly the right
 *                bytes and closed cleanly (a failure is measured, not thrown)
 *   establish_N  start until the last connect() returned. Through graft's
 *                proxy a connect returns once the local proxy's kernel has
 *                accepted, before the proxy dials out: the proxy's own cost
 *                shows in exchange_N.
 *   exchange_N   start until the last reply was checked
 *   total_N      start until the last connection was closed, minus the
 *                fixed 0.5 s hold
 * and for graft only, sampled from /proc (the Node process, found as the
 * process `ip netns exec` became, and its graft-tracer child):
 *   rss_N        "proxy before": VmRSS of Node + tracer when the program is
 *                ready, before it dials; "proxy peak": VmHWM of Node +
 *                tracer after the run (the kernel's high-water mark)
 *   rss_per_conn_N  (peak - before) / N, in KB: what each held connection
 *                costs graft's processes
 *   graft_fds_N  Node's and the tracer's open fds before the dials, while all N
 *                connections are open (the peak), and after the program has
 *                closed them all (polled up to 2 s for graft to catch up)
 *   fds_left_open_N  after - before (0: every proxied connection's fds
 *                were released)
 * For these graft-only rows the ratio is against "proxy before", not native.
 * The issue's target (reported, not asserted): 10,000 connections with
 * Node + tracer under 200 MB.
 *
 * Why the server closes first: each connection ends with the client sending
 * '.', on which echod closes; the client reads the EOF, then closes. So
 * TCP's TIME_WAIT stays in hostB. Had the client closed first, every run of
 * 10,000 would leave 10,000 (native) or 20,000 (graft: the program's
 * loopback ports and the proxy's upstream ports) ports in TIME_WAIT in the
 * client namespace for 60 s, and the repeats would run out of ephemeral
 * ports.
 *
 * Namespace settings (inside the lab's namespaces only): hostB
 * net.core.somaxconn and net.ipv4.tcp_max_syn_backlog 16384 (echod listens
 * with a 16384 backlog); client net.ipv4.ip_local_port_range 1024-65535.
 * The client namespace's somaxconn stays at its default, so the proxy's
 * listen backlog (4096) is what graft asks for.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../../test/lab/paths.js';
import type { BenchCase, BenchContext, Row, Variant } from '../case.js';
import { interleave } from '../case.js';
import type { BenchLab } from '../lab.js';
import { buildBenchC, buildBenchGo, DEST4, MARK_B, SRC_B4 } from '../lab.js';
import { fdCount, graftPids, lineReader, statusKb } from '../procs.js';
import { summarize } from '../stats.js';

const ECHO_PORT = 7100;
const ECHO_BACKLOG = 16384;
const PAYLOAD = 300;
const HOLD = '500ms';
const binDir = join(repoRoot, 'build', 'bench-bin');
const graftBin = join(repoRoot, 'bin', 'graft');
/** nstat counters shown with each run: a full accept queue or SYN queue shows here */
const COUNTERS = ['TcpExtListenOverflows', 'TcpExtListenDrops', 'TcpExtTCPReqQFullDrop', 'TcpExtSyncookiesSent', 'TcpExtTCPTimeouts', 'TcpRetransSegs'];

/** The fd limit both variants run with: 65536, or the hard limit this process may not exceed. */
function fdLimit(): number {
  const hard = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
  return hard === 'unlimited' ? 65536 : Math.min(65536, Number(hard));
}

/** Absolute values of the COUNTERS in a namespace. */
function counters(ns: string): Record<string, number> {
  const out = execFileSync('ip', ['netns', 'exec', ns, 'nstat', '-asz', ...COUNTERS], { encoding: 'utf8' });
  const values: Record<string, number> = {};
  for (const line of out.split('\n')) {
    const [name, value] = line.trim().split(/\s+/);
    if (name && COUNTERS.includes(name)) values[name] = Number(value);
  }
  return values;
}

function countersSince(ns: string, before: Record<string, number>): Record<string, number> {
  const now = counters(ns);
  const diff: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) if (v - (before[k] ?? 0) !== 0) diff[k] = v - (before[k] ?? 0);
  return diff;
}

/** What concclient prints (see its header). */
interface ClientResult {
  n: number;
  ok: number;
  bad: number;
  failed: number;
  errors: Record<string, number>;
  seconds_to_establish: number;
  seconds_to_verify: number;
  seconds_total: number;
  hold_seconds: number;
  threads: number;
  rlimit_nofile: number;
}

/** graft's processes, sampled around one run */
interface GraftSample {
  rssBeforeMB: number;
  rssPeakMB: number;
  /** the two parts of rssPeakMB at the end: VmHWM of Node, of the tracer */
  rssPeakNodeMB: number;
  rssPeakTracerMB: number;
  fdsBefore: number;
  fdsPeak: number;
  fdsAfter: number;
  /** how long after the program's last close graft's fds were back (or the 2 s limit) */
  fdsSettledMs: number;
}

interface Run {
  result: ClientResult;
  graft?: GraftSample;
  clientCounters: Record<string, number>;
  hostCounters: Record<string, number>;
}

/**
 * One run of concclient with N connections, natively or under graft, in the
 * client namespace; samples graft's processes on the way.
 */
async function runClient(lab: BenchLab, graft: boolean, n: number, limit: number): Promise<Run> {
  const concclient = join(binDir, 'concclient');
  const clientArgs = [concclient, '-addr', `${DEST4}:${ECHO_PORT}`, '-n', String(n), '-size', String(PAYLOAD), '-hold', HOLD];
  const mark = `0x${MARK_B.toString(16)}`;
  const program = graft ? [graftBin, '--mode', 'proxy', '--mark', mark, '--', ...clientArgs] : [...clientArgs, '-bind', SRC_B4];
  const { client: clientNs, hostB } = lab.namespaces;
  const clientBefore = counters(clientNs);
  const hostBefore = counters(hostB);
  // `ip netns exec`, prlimit and env (bin/graft's #!) each exec the next:
  // the spawned pid ends up being graft's Node process
  const child = spawn('ip', ['netns', 'exec', clientNs, 'prlimit', `--nofile=${limit}:${limit}`, ...program], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => {});
  const closed = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (code, signal) => resolve([code, signal])));
  const killer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const next = lineReader(child, 'concclient');
  let sampler: NodeJS.Timeout | undefined;
  try {
    await next((l) => l === 'ready', '"ready"', 30_000);
    let pids: { node: number; tracer: number } | undefined;
    let sample: GraftSample | undefined;
    if (graft) {
      pids = graftPids(child.pid!);
      const { node, tracer } = pids;
      sample = {
        rssBeforeMB: (statusKb(node, 'VmRSS') + statusKb(tracer, 'VmRSS')) / 1024,
        rssPeakMB: 0,
        rssPeakNodeMB: 0,
        rssPeakTracerMB: 0,
        fdsBefore: fdCount(node) + fdCount(tracer),
        fdsPeak: 0,
        fdsAfter: 0,
        fdsSettledMs: 0,
      };
      // VmHWM is the kernel's own peak; sampling it keeps the last value
      // read before the processes exit
      const p = pids;
      const s = sample;
      sampler = setInterval(() => {
        try {
          s.rssPeakMB = Math.max(s.rssPeakMB, (statusKb(p.node, 'VmHWM') + statusKb(p.tracer, 'VmHWM')) / 1024);
        } catch {
          /* exiting */
        }
      }, 50);
    }
    child.stdin.write('go\n');
    await next((l) => l === 'holding', '"holding"', 150_000);
    if (sample && pids) sample.fdsPeak = fdCount(pids.node) + fdCount(pids.tracer);
    const json = await next((l) => l.startsWith('{'), 'its JSON result', 60_000);
    const result = JSON.parse(json) as ClientResult;
    await next((l) => l === 'closed', '"closed"', 10_000);
    if (sample && pids) {
      // the program has closed everything; give graft up to 2 s to see the FINs
      const closedAt = Date.now();
      for (;;) {
        sample.fdsAfter = fdCount(pids.node) + fdCount(pids.tracer);
        sample.fdsSettledMs = Date.now() - closedAt;
        if (sample.fdsAfter <= sample.fdsBefore || sample.fdsSettledMs > 2000) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      clearInterval(sampler);
      sample.rssPeakNodeMB = statusKb(pids.node, 'VmHWM') / 1024;
      sample.rssPeakTracerMB = statusKb(pids.tracer, 'VmHWM') / 1024;
      sample.rssPeakMB = Math.max(sample.rssPeakMB, sample.rssPeakNodeMB + sample.rssPeakTracerMB);
    }
    child.stdin.end('exit\n');
    const [code, signal] = await closed;
    // concclient exits 1 when a connection failed: that is a result (ok_N), not a failed run
    if (signal || (code !== 0 && !(code === 1 && result.ok < result.n))) {
      throw new Error(`exited with ${signal ?? code}: ${stderr.trim().slice(0, 2000)}`);
    }
    return {
      result,
      ...(sample ? { graft: sample } : {}),
      clientCounters: countersSince(clientNs, clientBefore),
      hostCounters: countersSince(hostB, hostBefore),
    };
  } catch (err) {
    child.kill('SIGKILL');
    await closed;
    const what = graft ? `graft --mode proxy --mark ${mark} -- concclient -n ${n}` : `concclient -n ${n}`;
    throw new Error(`${what}: ${(err as Error).message}${stderr.trim() ? `\n${stderr.trim().slice(0, 2000)}` : ''}`, { cause: err });
  } finally {
    clearInterval(sampler);
    clearTimeout(killer);
  }
}

const servers = new WeakMap<BenchLab, Promise<void>>();

/** echod on hostB's DEST4:7100, with the namespace settings it needs (see the header). */
function startEchoServer(lab: BenchLab, limit: number): Promise<void> {
  let started = servers.get(lab);
  if (!started) {
    started = (async () => {
      const echod = buildBenchC('echod');
      lab.net.hostB.run('sysctl', '-qw', `net.core.somaxconn=${ECHO_BACKLOG}`, `net.ipv4.tcp_max_syn_backlog=${ECHO_BACKLOG}`);
      lab.net.client.run('sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535');
      const server = lab.net.lab.adopt(lab.net.hostB.spawn('prlimit', [`--nofile=${limit}:${limit}`, echod, DEST4, String(ECHO_PORT), String(ECHO_BACKLOG)]));
      let err = '';
      server.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const next = lineReader(server, 'echod');
      await next((l) => l === 'ready', '"ready"', 10_000).catch((e: Error) => {
        throw new Error(`${e.message}: ${err.trim()}`);
      });
      // first contact over uplink B (ARP) paid here, not in a measurement
      await runClient(lab, false, 10, limit);
    })();
    servers.set(lab, started);
  }
  return started;
}

function describe(r: Run): string {
  const res = r.result;
  const parts = [
    `${res.ok}/${res.n} ok`,
    `established ${(res.seconds_to_establish * 1000).toFixed(0)} ms`,
    `exchanged ${(res.seconds_to_verify * 1000).toFixed(0)} ms`,
    `total ${((res.seconds_total - res.hold_seconds) * 1000).toFixed(0)} ms`,
    `${res.threads} threads`,
  ];
  if (r.graft) {
    const g = r.graft;
    parts.push(
      `rss ${g.rssBeforeMB.toFixed(0)} -> ${g.rssPeakMB.toFixed(0)} MB (node ${g.rssPeakNodeMB.toFixed(0)}, tracer ${g.rssPeakTracerMB.toFixed(1)})`,
      `graft fds ${g.fdsBefore}/${g.fdsPeak}/${g.fdsAfter} (after ${g.fdsSettledMs} ms)`,
    );
  }
  if (res.ok < res.n) parts.push(`errors ${JSON.stringify(res.errors)}`);
  if (Object.keys(r.clientCounters).length) parts.push(`client ns ${JSON.stringify(r.clientCounters)}`);
  if (Object.keys(r.hostCounters).length) parts.push(`hostB ${JSON.stringify(r.hostCounters)}`);
  return parts.join(', ');
}

/** Rows for the graft-only figures, each against its own "before" value. */
function graftRows(n: number, samples: readonly GraftSample[]): Row[] {
  const rows: Row[] = [];
  const add = (metric: string, unit: string, series: [string, number[]][]): void => {
    const base = summarize(series[0]![1]);
    for (const [variant, runs] of series) {
      const s = summarize(runs);
      rows.push({
        case: 'concurrency',
        variant,
        metric,
        unit,
        baseline: series[0]![0],
        runs,
        median: s.median,
        min: s.min,
        max: s.max,
        ratio: s.median / base.median,
        delta: s.median - base.median,
      });
    }
  };
  add(`rss_${n}`, 'MB', [
    ['proxy before', samples.map((s) => s.rssBeforeMB)],
    ['proxy peak', samples.map((s) => s.rssPeakMB)],
  ]);
  // the issue's memory target: at most 10 KB per held connection above idle
  add(`rss_per_conn_${n}`, 'KB', [['proxy', samples.map((s) => ((s.rssPeakMB - s.rssBeforeMB) * 1024) / n)]]);
  add(`graft_fds_${n}`, 'fds', [
    ['proxy before', samples.map((s) => s.fdsBefore)],
    ['proxy peak', samples.map((s) => s.fdsPeak)],
    ['proxy after', samples.map((s) => s.fdsAfter)],
  ]);
  const left = samples.map((s) => s.fdsAfter - s.fdsBefore);
  const l = summarize(left);
  const before = summarize(samples.map((s) => s.fdsBefore));
  // ratio: fds after / fds before (1.00 when every connection's fds were released)
  rows.push({
    case: 'concurrency',
    variant: 'proxy',
    metric: `fds_left_open_${n}`,
    unit: 'fds',
    baseline: 'proxy before',
    runs: left,
    median: l.median,
    min: l.min,
    max: l.max,
    ratio: (before.median + l.median) / before.median,
    delta: l.median,
  });
  return rows;
}

export const concurrency: BenchCase = {
  name: 'concurrency',
  summary: 'N TCP connections open at once client -> hostB over uplink B (concclient against echod.c)',
  async run(ctx: BenchContext) {
    const { lab, quick } = ctx;
    buildBenchGo('concclient');
    const limit = fdLimit();
    await startEchoServer(lab, limit);
    const sizes = quick ? [200] : [2000, 10000];
    const repeats = quick ? 1 : 3;
    const mark = `0x${MARK_B.toString(16)}`;
    const rows: Row[] = [];
    const failures: Record<string, unknown>[] = [];
    for (const n of sizes) {
      const samples: GraftSample[] = [];
      let last: Run | undefined;
      const variant = (name: string, graft: boolean, command: string): Variant => ({
        name,
        command,
        measure: async () => {
          const run = await runClient(lab, graft, n, limit);
          if (run.graft) samples.push(run.graft);
          if (run.result.ok < run.result.n) {
            const r = run.result;
            const fds = run.graft ? { nodeFds: { before: run.graft.fdsBefore, peak: run.graft.fdsPeak, after: run.graft.fdsAfter } } : {};
            failures.push({
              n,
              variant: name,
              ok: r.ok,
              bad: r.bad,
              failed: r.failed,
              errors: r.errors,
              ...fds,
              clientNs: run.clientCounters,
              hostB: run.hostCounters,
            });
          }
          last = run;
          const r = run.result;
          return {
            [`ok_${n}`]: (100 * r.ok) / r.n,
            [`establish_${n}`]: r.seconds_to_establish * 1000,
            [`exchange_${n}`]: r.seconds_to_verify * 1000,
            [`total_${n}`]: (r.seconds_total - r.hold_seconds) * 1000,
          };
        },
      });
      const client = `concclient -addr ${DEST4}:${ECHO_PORT} -n ${n} -size ${PAYLOAD} -hold ${HOLD}`;
      const variants = [
        variant('native', false, `prlimit --nofile=${limit}:${limit} ${client} -bind ${SRC_B4}`),
        variant('proxy', true, `prlimit --nofile=${limit}:${limit} graft --mode proxy --mark ${mark} -- ${client}`),
      ];
      const metrics = [
        { id: `ok_${n}`, unit: '%' },
        { id: `establish_${n}`, unit: 'ms' },
        { id: `exchange_${n}`, unit: 'ms' },
        { id: `total_${n}`, unit: 'ms' },
      ];
      const show = (): string => (last ? describe(last) : '');
      rows.push(...(await interleave({ caseName: 'concurrency', metrics, variants, repeats, show }, ctx)));
      rows.push(...graftRows(n, samples));
    }
    return {
      rows,
      variants: [
        {
          name: 'native',
          command: `prlimit --nofile=${limit}:${limit} concclient -addr ${DEST4}:${ECHO_PORT} -n N -size ${PAYLOAD} -hold ${HOLD} -bind ${SRC_B4}`,
        },
        {
          name: 'proxy',
          command: `prlimit --nofile=${limit}:${limit} graft --mode proxy --mark ${mark} -- concclient -addr ${DEST4}:${ECHO_PORT} -n N -size ${PAYLOAD} -hold ${HOLD}`,
        },
      ],
      settings: {
        connections: sizes,
        repeats,
        payloadBytes: PAYLOAD,
        hold: HOLD,
        nofile: limit,
        server: `bench/fixtures/echod.c on ${DEST4}:${ECHO_PORT} (hostB), backlog ${ECHO_BACKLOG}`,
        namespaces: `hostB net.core.somaxconn=${ECHO_BACKLOG} net.ipv4.tcp_max_syn_backlog=${ECHO_BACKLOG}; client net.ipv4.ip_local_port_range=1024 65535`,
        target: '10,000 connections with graft (Node + tracer VmHWM) under 200 MB',
        // the runs where a connection failed, with the client's errors and the namespaces' TCP counters
        ...(failures.length ? { failures } : {}),
      },
    };
  },
};
