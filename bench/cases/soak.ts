/**
 * Soak: minutes of connection churn under graft, and whether graft's own
 * processes come out of it as they went in.
 *
 *   graft --mark 0x10 --log-file FILE
 *         --toxic 'latency latency=20ms on DEST:7111'
 *         --toxic 'reset_peer time=50ms on DEST:7112'
 *         -- soakclient -host DEST -plain 7110 -latency 7111 -reset 7112 -rate 100
 *
 * in the client namespace, against three bench/fixtures/echod.c servers on
 * hostB's DEST:7110-7112, over uplink B. bench/fixtures/go/soakclient starts
 * RATE connections a second, each on its own goroutine: 3 rounds of 300
 * bytes out and the echo back (checked byte by byte), 10 ms apart, then a
 * close. By connection number, 70 % go to the plain port, 20 % to the
 * latency port (each reply 20 ms late: these stay open about 80 ms) and
 * 10 % to the reset port, where graft's proxy resets the connection 50 ms
 * after it began and the client waits for that reset. The client knows every
 * connection's outcome: ok, reset (expected on the reset port only) or
 * failed (by phase and error). The toxics send every connection through
 * graft's proxy, so each gets one record in the log file.
 *
 * The run (--seconds N, default 300; 15 with --quick):
 *   - "idle": graft's Node process and its tracer when the program is ready,
 *     before any connection
 *   - warm-up: the first tenth of N (2 to 30 s) of churn, then a pause until
 *     graft's descriptors are steady: "baseline" (the counts the end must
 *     come back to; the first connections make Node open what it keeps,
 *     e.g. its socket library)
 *   - the measured churn (the rest of N), sampled 1 s after its start
 *     ("start"), in the middle and 1 s before its end ("end"), and every
 *     few seconds for bench/results/latest.json
 *   - "after": once the client's last connection has closed, the
 *     descriptor counts, polled up to 5 s until they are back
 *   - the program exits; graft's log file is read.
 * Samples: VmRSS of /proc/PID/status and the entries of /proc/PID/fd, for
 * the Node process (the process `ip netns exec` became) and graft-tracer.
 *
 * Checks (any failing one fails the case, and `npm run bench` exits 1):
 *   - RSS: for each process, end <= start x 1.25 + 10 MB (bench/procs.ts).
 *     start and end are both taken mid-churn, so they hold the same load (a handful of
 *     connections in flight). What is left is noise: V8 grows its heap in
 *     steps and collects when it likes, and the kernel counts freed pages
 *     back lazily: in the 5-minute run of docs/benchmarks.md Node's RSS
 *     moved between 75.8 and 86.1 MB mid-churn with no trend (its start
 *     sample was near the top). For Node, at about 80 MB, the allowance
 *     is about 30 MB: a leak of 2 KB per connection (54 MB over the
 *     27,000 measured connections of a 5-minute run) fails, one of under
 *     about 1 KB passes as noise.
 *   - descriptors: "after" equals "baseline" for Node, and for the tracer
 *     apart from its pidfds: it keeps one for each thread of the program it
 *     has seen (native/tracee.c, closed when the thread exits), and Go
 *     starts a thread or two more as the churn goes on, so for those the
 *     check is at most one per live thread of the program.
 *   - records: the connection records in the log file (event "connection",
 *     docs/records.md; also "refused", graft failing a connect, which none
 *     should) equal the connections the client opened (warm-up included):
 *     graft promises exactly one per connect it sends through its proxy.
 *   - outcomes: no connection failed, none was left open at exit
 *     (a record with atExit).
 */
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchCase, BenchContext, Row } from '../case.js';
import { singleRows } from '../case.js';
import type { BenchLab } from '../lab.js';
import { buildBenchC, buildBenchGo, DEST4, MARK_B } from '../lab.js';
import { fdCount, graftPids, lineReader, RSS_GROWTH, RSS_SLACK_MB, rssLimitMB, statusKb, type GraftPids } from '../procs.js';

const PORTS = { plain: 7110, latency: 7111, reset: 7112 } as const;
const RATE = 100;
const LATENCY = '20ms';
const RESET_AFTER = '50ms';
/** how long the descriptors may take to come back after the last close */
const SETTLE_MS = 5000;

/** What soakclient prints after each phase (see its header). */
interface Phase {
  seconds: number;
  opened: number;
  ok: number;
  reset: number;
  failed: number;
  errors: Record<string, number>;
  rate: number;
  peak_inflight: number;
  late: number;
}

interface Sample {
  /** seconds into the measured churn (negative: before it) */
  at: number;
  nodeRssMB: number;
  tracerRssMB: number;
  nodeFds: number;
  tracerFds: number;
  /** of tracerFds, the pidfds the tracer keeps for the program's live threads (native/tracee.c) */
  tracerPidfds: number;
  /** the program's threads (Go starts more as the churn needs them) */
  programThreads: number;
}

type Pids = Required<GraftPids>;

interface Records {
  total: number;
  /** by event and action, e.g. "connection proxy" */
  kinds: Record<string, number>;
  /** by error, for the proxied connections that carry one */
  errors: Record<string, number>;
  atExit: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What a process's descriptors are, by target ("socket", "anon_inode:[pidfd]", "/dev/null", ...), for a failed check. */
function fdTargets(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/^(socket|pipe):\[\d+\]$/, '$1');
    } catch {
      continue; // closed meanwhile
    }
    out[target] = (out[target] ?? 0) + 1;
  }
  return out;
}

function sample(pids: Pids, at: number): Sample {
  return {
    at,
    nodeRssMB: statusKb(pids.node, 'VmRSS') / 1024,
    tracerRssMB: statusKb(pids.tracer, 'VmRSS') / 1024,
    nodeFds: fdCount(pids.node),
    tracerFds: fdCount(pids.tracer),
    tracerPidfds: fdTargets(pids.tracer)['anon_inode:[pidfd]'] ?? 0,
    programThreads: readdirSync(`/proc/${pids.program}/task`).length,
  };
}

/** The counts the end must come back to: Node's fds, the tracer's other than its pidfds, and no pidfd without a thread. */
function backToBaseline(s: Sample, baseline: Sample): boolean {
  return s.nodeFds === baseline.nodeFds && s.tracerFds - s.tracerPidfds === baseline.tracerFds - baseline.tracerPidfds && s.tracerPidfds <= s.programThreads;
}

function readRecords(file: string): Records {
  const r: Records = { total: 0, kinds: {}, errors: {}, atExit: 0 };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const rec = JSON.parse(line) as { event?: string; action?: string; error?: string; atExit?: string };
    if (rec.event !== 'connection' && rec.event !== 'refused') continue;
    r.total++;
    const kind = rec.action ? `${rec.event} ${rec.action}` : rec.event;
    r.kinds[kind] = (r.kinds[kind] ?? 0) + 1;
    if (rec.error !== undefined) r.errors[rec.error] = (r.errors[rec.error] ?? 0) + 1;
    if (rec.atExit !== undefined) r.atExit++;
  }
  return r;
}

const servers = new WeakMap<BenchLab, Promise<void>>();

/** echod on hostB's DEST4 at each of PORTS. */
function startEchoServers(lab: BenchLab): Promise<void> {
  let started = servers.get(lab);
  if (!started) {
    started = (async () => {
      const echod = buildBenchC('echod');
      // TIME_WAIT of 30,000 loopback connections to graft's proxy over 60 s
      lab.net.client.run('sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65535');
      for (const port of Object.values(PORTS)) {
        const server = lab.net.lab.adopt(lab.net.hostB.spawn(echod, [DEST4, String(port), '1024']));
        let err = '';
        server.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        await lineReader(server, `echod :${port}`)((l) => l === 'ready', '"ready"', 10_000).catch((e: Error) => {
          throw new Error(`${e.message}: ${err.trim()}`);
        });
      }
    })();
    servers.set(lab, started);
  }
  return started;
}

const mb = (n: number): string => n.toFixed(1);
const int = (n: number): string => n.toLocaleString('en-US');

interface Soak {
  seconds: number;
  warmupSeconds: number;
  command: string;
  idle: Sample;
  baseline: Sample;
  series: Sample[];
  start: Sample;
  middle: Sample;
  end: Sample;
  after: Sample;
  settledMs: number;
  /** what graft's processes hold, by target, at the baseline and after (shown when a check fails) */
  targets: {
    baseline: { node: Record<string, number>; tracer: Record<string, number> };
    after: { node: Record<string, number>; tracer: Record<string, number> };
  };
  warmup: Phase;
  main: Phase;
  records: Records;
  exitCode: number | null;
  stderr: string;
}

async function runSoak(ctx: BenchContext, seconds: number): Promise<Soak> {
  const { lab } = ctx;
  const client = buildBenchGo('soakclient');
  await startEchoServers(lab);
  const warmupSeconds = Math.min(30, Math.max(2, Math.round(seconds / 10)));
  const mainSeconds = seconds - warmupSeconds;
  const dir = mkdtempSync(join(tmpdir(), 'graft-soak-'));
  const logFile = join(dir, 'records.ndjson');
  const mark = `0x${MARK_B.toString(16)}`;
  const graftArgs = [
    '--mark',
    mark,
    '--log-file',
    logFile,
    '--toxic',
    `latency latency=${LATENCY} on ${DEST4}:${PORTS.latency}`,
    '--toxic',
    `reset_peer time=${RESET_AFTER} on ${DEST4}:${PORTS.reset}`,
  ];
  const clientArgs = ['-host', DEST4, '-plain', String(PORTS.plain), '-latency', String(PORTS.latency), '-reset', String(PORTS.reset), '-rate', String(RATE)];
  const command = `graft ${graftArgs.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')} -- soakclient ${clientArgs.join(' ')}`;
  const run = lab.startGraft(graftArgs, [client, ...clientArgs], (seconds + 180) * 1000);
  const { child, next, closed } = run;
  const phase = async (s: number): Promise<Phase> => {
    child.stdin!.write(`churn ${s}\n`);
    return JSON.parse(await next((l) => l.startsWith('{'), 'its phase result', (s + 60) * 1000)) as Phase;
  };
  try {
    await next((l) => l === 'ready', '"ready"', 30_000);
    const pids = graftPids(child.pid!, 'soakclient') as Pids;
    const idle = sample(pids, -warmupSeconds);

    const warmup = await phase(warmupSeconds);
    ctx.progress(`soak warm-up: ${warmup.opened} connections in ${warmup.seconds.toFixed(1)} s, ${warmup.failed} failed`);
    // the baseline: descriptor counts steady for 1 s (at most 10 s)
    let baseline = sample(pids, 0);
    for (let steady = 0, waited = 0; steady < 1000 && waited < 10_000; waited += 100) {
      await sleep(100);
      const s = sample(pids, 0);
      steady = s.nodeFds === baseline.nodeFds && s.tracerFds === baseline.tracerFds ? steady + 100 : 0;
      baseline = s;
    }
    const baselineTargets = { node: fdTargets(pids.node), tracer: fdTargets(pids.tracer) };

    const series: Sample[] = [];
    const marks: Record<'start' | 'middle' | 'end', Sample | undefined> = { start: undefined, middle: undefined, end: undefined };
    const began = Date.now();
    const mainPhase = phase(mainSeconds);
    const every = Math.max(1, Math.round(mainSeconds / 30));
    const at = (name: 'start' | 'middle' | 'end', s: number): Promise<void> =>
      sleep(began + s * 1000 - Date.now()).then(() => {
        marks[name] = sample(pids, s);
        ctx.progress(
          `soak ${name} (${s} s): node ${mb(marks[name].nodeRssMB)} MB, ${marks[name].nodeFds} fds; tracer ${mb(marks[name].tracerRssMB)} MB, ${marks[name].tracerFds} fds`,
        );
      });
    const sampler = setInterval(() => series.push(sample(pids, Math.round((Date.now() - began) / 1000))), every * 1000);
    const main = await Promise.all([mainPhase, at('start', 1), at('middle', Math.round(mainSeconds / 2)), at('end', mainSeconds - 1)]).finally(() =>
      clearInterval(sampler),
    );
    const mainResult = main[0];
    ctx.progress(`soak: ${mainResult.opened} connections in ${mainResult.seconds.toFixed(1)} s, ${mainResult.failed} failed`);

    // the client's last connection has closed: the counts must come back to the baseline
    const closedAt = Date.now();
    let after = sample(pids, mainSeconds);
    while (!backToBaseline(after, baseline) && Date.now() - closedAt < SETTLE_MS) {
      await sleep(50);
      after = sample(pids, mainSeconds);
    }
    const settledMs = Date.now() - closedAt;
    const afterTargets = { node: fdTargets(pids.node), tracer: fdTargets(pids.tracer) };

    child.stdin!.end('exit\n');
    const [code, signal] = await closed;
    if (signal) throw new Error(`graft was killed by ${signal}: ${run.stderr()}`);
    // soakclient exits 1 when a connection failed: a result, checked below
    if (code !== 0 && code !== 1) throw new Error(`graft exited with ${code}: ${run.stderr()}`);
    return {
      seconds,
      warmupSeconds,
      command,
      idle,
      baseline,
      series,
      start: marks.start!,
      middle: marks.middle!,
      end: marks.end!,
      after,
      settledMs,
      targets: { baseline: baselineTargets, after: afterTargets },
      warmup,
      main: mainResult,
      records: readRecords(logFile),
      exitCode: code,
      stderr: run.stderr(),
    };
  } catch (err) {
    child.kill('SIGKILL');
    await closed;
    throw new Error(`${command}: ${(err as Error).message}${run.stderr() ? `\n${run.stderr()}` : ''}`, { cause: err });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The checks of the header: a sentence for each, and whether it held. */
function checks(s: Soak): { ok: boolean; text: string }[] {
  const out: { ok: boolean; text: string }[] = [];
  for (const [who, start, end] of [
    ['Node', s.start.nodeRssMB, s.end.nodeRssMB],
    ['tracer', s.start.tracerRssMB, s.end.tracerRssMB],
  ] as const) {
    const limit = rssLimitMB(start);
    out.push({ ok: end <= limit, text: `${who} RSS: end ${mb(end)} MB, allowed start ${mb(start)} MB x ${RSS_GROWTH} + ${RSS_SLACK_MB} MB = ${mb(limit)} MB` });
  }
  const when = backToBaseline(s.after, s.baseline) ? `back ${s.settledMs} ms after the last close` : `${SETTLE_MS / 1000} s after the last close`;
  const held = (t: Record<string, number>): string => JSON.stringify(t);
  const nodeOk = s.after.nodeFds === s.baseline.nodeFds;
  out.push({
    ok: nodeOk,
    text: `Node descriptors after the churn: ${s.after.nodeFds}, baseline ${s.baseline.nodeFds} (${when})${nodeOk ? '' : `; held at the baseline ${held(s.targets.baseline.node)}, after ${held(s.targets.after.node)}`}`,
  });
  const other = (x: Sample): number => x.tracerFds - x.tracerPidfds;
  const tracerOk = other(s.after) === other(s.baseline) && s.after.tracerPidfds <= s.after.programThreads;
  out.push({
    ok: tracerOk,
    text:
      `tracer descriptors after the churn: ${other(s.after)} besides its pidfds, baseline ${other(s.baseline)}; ` +
      `${s.after.tracerPidfds} pidfds for the program's ${s.after.programThreads} threads (${when})` +
      (tracerOk ? '' : `; held at the baseline ${held(s.targets.baseline.tracer)}, after ${held(s.targets.after.tracer)}`),
  });
  const opened = s.warmup.opened + s.main.opened;
  out.push({ ok: s.records.total === opened, text: `connection records in the log file: ${int(s.records.total)}, connections opened: ${int(opened)}` });
  const failed = s.warmup.failed + s.main.failed;
  const errors = { ...s.warmup.errors };
  for (const [k, v] of Object.entries(s.main.errors)) errors[k] = (errors[k] ?? 0) + v;
  out.push({ ok: failed === 0, text: `connections that failed: ${failed}${failed ? ` (${JSON.stringify(errors)})` : ''}` });
  out.push({ ok: s.records.atExit === 0, text: `connections still open when the program exited (records with atExit): ${s.records.atExit}` });
  return out;
}

function report(s: Soak, results: { ok: boolean; text: string }[]): string {
  const cols: [string, Sample][] = [
    ['idle', s.idle],
    ['baseline', s.baseline],
    ['start', s.start],
    ['middle', s.middle],
    ['end', s.end],
    ['after', s.after],
  ];
  const lines: [string, ...string[]][] = [
    ['', ...cols.map(([name]) => name)],
    ['seconds into the measured churn', ...cols.map(([name, c]) => (name === 'idle' ? `-${s.warmupSeconds}` : String(c.at)))],
    ['Node RSS, MB', ...cols.map(([, c]) => mb(c.nodeRssMB))],
    ['Node fds', ...cols.map(([, c]) => String(c.nodeFds))],
    ['tracer RSS, MB', ...cols.map(([, c]) => mb(c.tracerRssMB))],
    ['tracer fds', ...cols.map(([, c]) => String(c.tracerFds))],
    ['  of which pidfds', ...cols.map(([, c]) => String(c.tracerPidfds))],
    ["program's threads", ...cols.map(([, c]) => String(c.programThreads))],
  ];
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const table = lines.map((l) => l.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  const p = (name: string, ph: Phase): string =>
    `${name} ${int(ph.opened)} in ${ph.seconds.toFixed(1)} s (${ph.rate.toFixed(1)}/s, at most ${ph.peak_inflight} open, ${ph.late} started late): ` +
    `${int(ph.ok)} ok, ${int(ph.reset)} reset as due, ${int(ph.failed)} failed`;
  const kinds = Object.entries(s.records.kinds)
    .map(([k, v]) => `${int(v)} ${k}`)
    .join(', ');
  const errs = Object.entries(s.records.errors)
    .map(([k, v]) => `${int(v)} "${k}"`)
    .join(', ');
  return [
    `soak: ${s.seconds} s of churn at ${RATE} connections/s (${s.warmupSeconds} s warm-up, ${s.seconds - s.warmupSeconds} s measured)`,
    ...table.map((l) => `  ${l}`),
    `  connections: ${p('warm-up', s.warmup)}`,
    `               ${p('measured', s.main)}`,
    `  log file: ${int(s.records.total)} connection records (${kinds || 'none'})${errs ? `; with an error: ${errs}` : ''}`,
    '  checks:',
    ...results.map((r) => `    ${r.ok ? 'ok  ' : 'FAIL'}  ${r.text}`),
  ].join('\n');
}

function rows(s: Soak): Row[] {
  const out: Row[] = [];
  const add = (metric: string, unit: string, series: [string, number][]): void => void out.push(...singleRows('soak', metric, unit, series));
  const points = (f: (x: Sample) => number, names: ('baseline' | 'start' | 'middle' | 'end' | 'after')[]): [string, number][] =>
    names.map((n) => [`proxy ${n}`, f(s[n])]);
  add(
    'node_rss',
    'MB',
    points((x) => x.nodeRssMB, ['start', 'middle', 'end']),
  );
  add(
    'tracer_rss',
    'MB',
    points((x) => x.tracerRssMB, ['start', 'middle', 'end']),
  );
  add(
    'node_fds',
    'fds',
    points((x) => x.nodeFds, ['baseline', 'start', 'middle', 'end', 'after']),
  );
  add(
    'tracer_fds',
    'fds',
    points((x) => x.tracerFds, ['baseline', 'start', 'middle', 'end', 'after']),
  );
  return out;
}

export const soak: BenchCase = {
  name: 'soak',
  summary: 'connection churn under graft for minutes (soakclient against echod.c, with latency and reset_peer toxics): memory, descriptors, records',
  async run(ctx: BenchContext) {
    const seconds = ctx.seconds ?? (ctx.quick ? 15 : 300);
    const s = await runSoak(ctx, seconds);
    const results = checks(s);
    const failed = results.filter((r) => !r.ok).map((r) => r.text);
    return {
      rows: rows(s),
      variants: [{ name: 'proxy', command: s.command }],
      settings: {
        seconds: s.seconds,
        warmupSeconds: s.warmupSeconds,
        rate: RATE,
        connection: '3 rounds of 300 bytes each way, 10 ms apart, then close; by number: 70 % plain, 20 % latency toxic, 10 % reset_peer toxic',
        servers: `bench/fixtures/echod.c on ${DEST4}:${PORTS.plain},${PORTS.latency},${PORTS.reset} (hostB)`,
        allowance: `RSS end <= start x ${RSS_GROWTH} + ${RSS_SLACK_MB} MB; fds after == baseline within ${SETTLE_MS / 1000} s (tracer: besides pidfds, at most one per program thread); records == connections opened`,
        warmup: s.warmup,
        measured: s.main,
        records: s.records,
        samples: {
          idle: s.idle,
          baseline: s.baseline,
          start: s.start,
          middle: s.middle,
          end: s.end,
          after: s.after,
          settledMs: s.settledMs,
          descriptors: s.targets,
          series: s.series,
        },
        ...(s.exitCode ? { clientStderr: s.stderr } : {}),
      },
      report: report(s, results),
      failed,
    };
  },
};
