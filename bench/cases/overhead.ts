/**
 * The tracer's cost on work that makes no connections. graft's seccomp
 * filter stops the program only at connect (and, with egress options, a few
 * more socket calls; see native/filter.h), so everything else should run at
 * native speed, paying only for the filter's run at each system call.
 * Variants, all in the client namespace:
 *   native  PROGRAM
 *   graft   graft -- PROGRAM                      (the default: proxy mode)
 *   egress  graft --mark 0x10 --interface upB --source 203.0.113.1 -- PROGRAM
 *           (the widest filter: it also traps datagram/raw socket(), bind(),
 *           sendto with an address, every sendmsg and sendmmsg)
 * Workloads, one metric each (time in ms, lower is better; ms rather than s so
 * the table's rounding keeps differences of a few percent visible):
 *   open_close, fcntl  bench/fixtures/syscalls.c: COUNT open+close pairs of
 *                 one file, then COUNT fcntl(F_GETFL); each phase timed by
 *                 the program itself (graft's start-up is not in them)
 *   tar           `tar -cf /dev/null DIR` over a tree of small files made
 *                 once by this case, timed as a whole process by the harness
 *                 (graft's start-up is in it; `graft -- true` alone is in the
 *                 settings for comparison). GNU tar does not read the files'
 *                 contents when the archive is /dev/null: this is two
 *                 newfstatat per file and getdents per directory, plus its
 *                 NSS look-ups (a few connects on AF_UNIX sockets, which the
 *                 tracer sees and passes).
 *   udp_send      bench/fixtures/udpsend.c: send() (sendto without an
 *                 address, which no filter traps) on a connected UDP socket
 *   udp_sendmsg   the same socket, sendmsg() without msg_name: the egress
 *                 filter traps every sendmsg (classic BPF cannot look into
 *                 the msghdr), so this is where widening the filter costs
 * The UDP sends go to a bound port on hostB's uplink-B address that never
 * reads (bench/fixtures/udpsink.c): every variant takes the same link and
 * there are no ICMP errors.
 *
 * What graft adds to a system call it does not trap is the kernel's cost for
 * any seccomp filter: on the 2-vCPU development VM (Linux 6.18), 1,000,000
 * fcntl(F_GETFL) took 124-136 ms natively, and 155-167 ms both under graft
 * and under a bare one-instruction allow-all filter (with
 * SECCOMP_FILTER_FLAG_SPEC_ALLOW, no ptrace), alternated 3 times.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { BenchCase, BenchContext, Variant } from '../case.js';
import { interleave } from '../case.js';
import { buildBenchC, MARK_B, SRC_B4, UP_B, type BenchLab } from '../lab.js';
import { median } from '../stats.js';

/** hostB's address on uplink B (test/lab/uplinks.ts), and the discard port there */
const SINK_ADDR = '203.0.113.2';
const SINK_PORT = 9;
const FILES_PER_DIR = 100;

interface Settings {
  readonly count: number;
  readonly files: number;
  readonly sends: number;
  readonly sendmsgs: number;
  readonly repeats: number;
}

function sizes(quick: boolean): Settings {
  return quick
    ? { count: 100_000, files: 2_000, sends: 20_000, sendmsgs: 2_000, repeats: 1 }
    : { count: 1_000_000, files: 20_000, sends: 200_000, sendmsgs: 20_000, repeats: 5 };
}

/** FILES small files, FILES_PER_DIR to a directory; returns the tree's root. */
function makeTree(root: string, files: number): string {
  const tree = join(root, 'tree');
  for (let i = 0; i < files; i++) {
    const dir = join(tree, `d${Math.floor(i / FILES_PER_DIR)}`);
    if (i % FILES_PER_DIR === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${i}`), `${`file ${i}`.padEnd(63, '.')}\n`);
  }
  return tree;
}

/** The discard port in hostB, until the lab goes (its stdin closes with us). */
async function startSink(lab: BenchLab): Promise<void> {
  const bin = buildBenchC('udpsink');
  const sink = lab.net.lab.adopt(lab.net.hostB.spawn(bin, [SINK_ADDR, String(SINK_PORT)], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let err = '';
  sink.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const lines = createInterface({ input: sink.stdout! });
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      sink.once('exit', (code) => reject(new Error(`udpsink exited with ${code}: ${err.trim()}`)));
      lines.on('line', (line) => {
        if (line === 'ready') resolve();
      });
      timer = setTimeout(() => reject(new Error(`udpsink did not start within 10 s: ${err.trim()}`)), 10_000);
    });
  } finally {
    clearTimeout(timer);
  }
}

function parse(re: RegExp, stdout: string, what: string): RegExpExecArray {
  const m = re.exec(stdout);
  if (!m) throw new Error(`${what} printed no result: ${stdout.slice(0, 500)}`);
  return m;
}

/** Wall clock of a whole run, in ms. */
async function wallMs(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

export const overhead: BenchCase = {
  name: 'overhead',
  summary: 'network-free work (syscall loops, tar) and connected UDP sends, native vs under graft',
  async run(ctx: BenchContext) {
    const { lab, quick } = ctx;
    const s = sizes(quick);
    if (spawnSync('tar', ['--version'], { stdio: 'ignore' }).error) throw new Error('tar is not installed: apt-get install tar');
    const syscalls = buildBenchC('syscalls');
    const udpsend = buildBenchC('udpsend');
    await startSink(lab);

    const root = mkdtempSync(join(tmpdir(), 'graft-bench-overhead-'));
    const cleanup = (): void => rmSync(root, { recursive: true, force: true });
    // run.ts exits on SIGINT/SIGTERM without unwinding this function
    process.once('exit', cleanup);
    try {
      const made = performance.now();
      const tree = makeTree(root, s.files);
      ctx.progress(`overhead: ${s.files} files in ${tree} (${((performance.now() - made) / 1000).toFixed(1)} s)`);
      // the file syscalls.c opens: the tree's first file
      const file = join(tree, 'd0', 'f0');

      const mark = `0x${MARK_B.toString(16)}`;
      const egressArgs = ['--mark', mark, '--interface', UP_B, '--source', SRC_B4];
      type Runner = (program: readonly string[]) => Promise<{ stdout: string }>;
      // `PREFIX true` as a whole process, at each repeat: the start-up inside the tar figure
      const trueMs = new Map<string, number[]>();
      const make = (name: string, prefix: string, run: Runner, z: Settings, record: boolean): Variant => ({
        name,
        command: `${prefix}syscalls FILE ${z.count}; ${prefix}tar -cf /dev/null TREE; ${prefix}true; ${prefix}udpsend ${SINK_ADDR} ${SINK_PORT} ${z.sends} ${z.sendmsgs}`,
        async measure() {
          const programs = {
            syscalls: [syscalls, file, String(z.count)],
            tar: ['tar', '-cf', '/dev/null', tree],
            udp: [udpsend, SINK_ADDR, String(SINK_PORT), String(z.sends), String(z.sendmsgs)],
          };
          const sc = parse(/open_close_seconds=([\d.]+) fcntl_seconds=([\d.]+)/, (await run(programs.syscalls)).stdout, 'syscalls');
          const tar = await wallMs(() => run(programs.tar));
          const t = await wallMs(() => run(['true']));
          if (record) trueMs.set(name, [...(trueMs.get(name) ?? []), t]);
          const udp = parse(/send_seconds=([\d.]+) sendmsg_count=\d+ sendmsg_seconds=([\d.]+)/, (await run(programs.udp)).stdout, 'udpsend');
          const ms = (x: string | undefined): number => Number(x) * 1000;
          return { open_close: ms(sc[1]), fcntl: ms(sc[2]), tar, udp_send: ms(udp[1]), udp_sendmsg: ms(udp[2]) };
        },
      });
      // the warm-up runs the quick sizes (the same tree)
      const variant = (name: string, prefix: string, run: Runner): Variant & { warm: Variant } => ({
        ...make(name, prefix, run, s, true),
        warm: make(name, prefix, run, sizes(true), false),
      });
      const variants = [
        variant('native', '', (p) => lab.native(p)),
        variant('graft', 'graft -- ', (p) => lab.graft([], p)),
        variant('egress', `graft ${egressArgs.join(' ')} -- `, (p) => lab.graft(egressArgs, p)),
      ];
      const metrics = ['open_close', 'fcntl', 'tar', 'udp_send', 'udp_sendmsg'].map((id) => ({ id, unit: 'ms' }));
      const show = (v: Record<string, number>): string =>
        `open+close ${v.open_close?.toFixed(1)} ms, fcntl ${v.fcntl?.toFixed(1)} ms, tar ${v.tar?.toFixed(1)} ms, send ${v.udp_send?.toFixed(1)} ms, sendmsg ${v.udp_sendmsg?.toFixed(1)} ms`;

      // without --quick, one unrecorded shorter run of each variant first (page cache, dentries, ARP)
      const rows = await interleave(
        { caseName: 'overhead', metrics, variants, repeats: s.repeats, warmup: quick ? [] : variants.map((v) => v.warm), show },
        ctx,
      );
      const startupMs = Object.fromEntries([...trueMs].map(([k, v]) => [k, Math.round(median(v) * 10) / 10]));
      ctx.progress(`overhead: \`true\` as a whole process, median ms: ${JSON.stringify(startupMs)}`);
      return {
        rows,
        variants: variants.map((v) => ({ name: v.name, command: v.command })),
        settings: {
          repeats: s.repeats,
          syscalls: `${s.count} open+close, then ${s.count} fcntl(F_GETFL) (bench/fixtures/syscalls.c, own clock)`,
          tar: `${s.files} files of 64 bytes, ${FILES_PER_DIR} per directory, in a temporary directory; wall clock of the whole command`,
          udp: `${s.sends} send() then ${s.sendmsgs} sendmsg() of 32 bytes on one UDP socket connected to ${SINK_ADDR}:${SINK_PORT} (hostB, never read) (bench/fixtures/udpsend.c, own clock)`,
          true_ms: {
            ...startupMs,
            note: `median wall clock of \`true\`, \`graft -- true\` and \`graft ${egressArgs.join(' ')} -- true\` at each repeat, as a whole process like tar: the start-up inside the tar figure`,
          },
          warmup: quick ? 'none' : 'one run of each variant with the --quick counts',
        },
      };
    } finally {
      process.removeListener('exit', cleanup);
      cleanup();
    }
  },
};
