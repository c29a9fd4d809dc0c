/**
 * graft against proxychains-ng (Debian's proxychains4), on the throughput
 * and connect-cost measurements of cases/throughput.ts and cases/connects.ts.
 *
 * proxychains needs a SOCKS server: microsocks, run in the client namespace
 * on 127.0.0.1:1080 with its outgoing connections bound to uplink B's
 * address (`microsocks -i 127.0.0.1 -p 1080 -b 203.0.113.1`), so the source
 * rule sends them via uplink B like every other variant. The case writes
 * the proxychains config (strict_chain, quiet_mode, no proxy_dns, one
 * `socks5 127.0.0.1 1080`) to a temporary directory.
 *
 * Variants, interleaved per repeat, for iperf3 (one stream to hostB's
 * iperf3 server; metric: iperf3's receiver-side MB/s) and then for connloop
 * (bench/fixtures/connloop.c against acceptd.c on DEST:7000; metrics as in
 * cases/connects.ts):
 *   native       the program bound to 203.0.113.1
 *   inplace      graft --mode inplace --mark 0x10 -- program
 *   proxy        graft --mode proxy --mark 0x10 -- program
 *   proxychains  proxychains4 -q -f CONF program   (via microsocks)
 *   socks        graft --proxy socks5://127.0.0.1:1080 -- program (connects
 *                only: via the same microsocks)
 * proxychains' path is program -> microsocks (a SOCKS5 handshake per
 * connection) -> destination; graft's proxy mode is program -> graft's own
 * relay -> destination, with no SOCKS handshake; `socks` is the
 * like-for-like comparison, graft through the same microsocks.
 * A "microsocks direct" variant is left out: unmodified programs cannot
 * speak SOCKS, which is the whole point of both tools.
 *
 * What the proxychains throughput figure measures is mostly microsocks:
 * Debian's microsocks 1.0.3 relays with one read()/write() of at most
 * 1024 bytes per poll() wake-up (objdump: `mov $0x400,%edx; call read`),
 * so a bulk stream costs it a few system calls per KiB. proxychains itself
 * only hooks connect(); once connected, the program's socket is a plain TCP
 * socket to microsocks. The figure is "proxychains with microsocks", not
 * proxychains with any SOCKS server.
 *
 * Every proxychains run is checked against microsocks' log (a line per
 * connection it made): a connloop run must show exactly COUNT connections to
 * the destination, an iperf3 run at least its control and data connections,
 * so a proxychains variant that bypassed the proxy fails the case instead
 * of being measured.
 *
 * proxychains is an LD_PRELOAD library: it hooks libc's connect(), so it
 * does nothing for a static binary that makes its own system calls. The
 * case shows it once with the static Go client of cases/goconnects.ts:
 * `proxychains4 -q -f CONF goconnloop DEST 7000 5`, unbound. Its connects
 * bypass microsocks, take the default route (uplink A) and are refused by
 * hostA, which serves nothing. The outcome (exit status, error, microsocks'
 * connection count, packets sent on uplink A) goes into the case's settings
 * as `staticGoUnderProxychains`; it is recorded, not asserted on.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { poll } from '../../test/lab/procs.js';
import { UP_A } from '../../test/lab/uplinks.js';
import { runCollect } from '../../test/lab/world.js';
import type { BenchCase, BenchContext, Row, Variant } from '../case.js';
import { interleave } from '../case.js';
import { buildBenchC, buildBenchGo, DEST4, IPERF_PORT, MARK_B, NAME_PORT, requireTool, SRC_B4, type BenchLab } from '../lab.js';
import { parseConnloop } from './connects.js';
import { receivedMBps } from './throughput.js';

const SOCKS_PORT = 1080;

/** microsocks in the client namespace, counting the connections it made. */
interface Microsocks {
  readonly command: string;
  /** connections microsocks made to DEST4:port so far (from its log) */
  made(port: number): number;
  /** waits (up to ms) until its log shows at least `want` connections to DEST4:port; returns the count */
  settle(port: number, want: number, ms?: number): Promise<number>;
}

async function startMicrosocks(lab: BenchLab): Promise<Microsocks> {
  requireTool('microsocks', '-h', 'apt-get install microsocks');
  const args = ['-i', '127.0.0.1', '-p', String(SOCKS_PORT), '-b', SRC_B4];
  const child = lab.net.lab.adopt(lab.net.client.spawn('microsocks', args));
  // one line per connection: "client[FD] 127.0.0.1: connected to ADDR:PORT"
  const counts = new Map<number, number>();
  let partial = '';
  let log = '';
  child.stdout!.resume();
  child.stderr!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const m = /: connected to ([\d.]+):(\d+)$/.exec(line);
      if (m && m[1] === DEST4) counts.set(Number(m[2]), (counts.get(Number(m[2])) ?? 0) + 1);
      else if (log.length < 2000) log += `${line}\n`;
    }
  });
  await poll(
    () => {
      if (child.exitCode !== null) throw new Error(`microsocks exited with ${child.exitCode}: ${log.trim()}`);
      return lab.net.client.run('ss', '-Hltn', `sport = :${SOCKS_PORT}`).includes(`127.0.0.1:${SOCKS_PORT}`);
    },
    10_000,
    'microsocks to listen',
  );
  const made = (port: number): number => counts.get(port) ?? 0;
  return {
    command: `microsocks ${args.join(' ')}`,
    made,
    async settle(port, want, ms = 2_000) {
      // its log lines reach us through a pipe, possibly after the client exited
      await poll(() => made(port) >= want, ms, `microsocks to log ${want} connections to ${DEST4}:${port}`).catch(() => {});
      return made(port);
    },
  };
}

/** The proxychains config, in a new temporary directory. */
function writeConfig(dir: string): string {
  const file = join(dir, 'proxychains.conf');
  writeFileSync(
    file,
    [
      '# written by bench/cases/proxychains.ts',
      'strict_chain',
      'quiet_mode',
      // proxy_dns is off: proxychains-ng has no "proxy_dns off"; the bare
      // keyword turns it on, its absence leaves it off
      '[ProxyList]',
      `socks5 127.0.0.1 ${SOCKS_PORT}`,
      '',
    ].join('\n'),
  );
  return file;
}

/** The installed Debian package's version, for the report. */
function debVersion(pkg: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function txPackets(lab: BenchLab, ifname: string): number {
  return Number(lab.net.client.run('cat', `/sys/class/net/${ifname}/statistics/tx_packets`).trim());
}

export const proxychains: BenchCase = {
  name: 'proxychains',
  summary: 'graft against proxychains4 + microsocks: iperf3 throughput and connloop connects, client -> hostB over uplink B',
  async run(ctx: BenchContext) {
    const { lab, quick } = ctx;
    requireTool('proxychains4', '--help', 'apt-get install proxychains4');
    const connloop = buildBenchC('connloop');
    const goconnloop = buildBenchGo('goconnloop');
    await lab.startIperfServer();
    await lab.startNameServer();
    const socks = await startMicrosocks(lab);
    const dir = mkdtempSync(join(tmpdir(), 'graft-bench-proxychains-'));
    try {
      const conf = writeConfig(dir);
      const mark = `0x${MARK_B.toString(16)}`;
      const repeats = quick ? 1 : 3;
      const pc = ['proxychains4', '-q', '-f', conf];
      const pcShown = 'proxychains4 -q -f CONF';

      // -- throughput: iperf3, as in cases/throughput.ts
      const seconds = quick ? 1 : 5;
      const iperf = (secs: number): string[] => ['iperf3', '-c', DEST4, '-p', String(IPERF_PORT), '-t', String(secs), '-J'];
      const iperfShown = `iperf3 -c ${DEST4} -t ${seconds} -J`;
      const iperfTimeout = (secs: number): number => secs * 1000 + 30_000;
      const tVariant = (name: string, command: string, run: (secs: number) => Promise<{ stdout: string }>): Variant & { warm: Variant } => {
        const make = (secs: number): Variant => ({ name, command, measure: async () => ({ received: receivedMBps((await run(secs)).stdout) }) });
        return { ...make(seconds), warm: make(1) };
      };
      const viaSocks = async <T>(port: number, atLeast: number, exactly: boolean, run: () => Promise<T>): Promise<T> => {
        const before = socks.made(port);
        const result = await run();
        const seen = (await socks.settle(port, before + atLeast)) - before;
        if (seen < atLeast || (exactly && seen !== atLeast)) {
          throw new Error(`proxychains: microsocks made ${seen} connections to ${DEST4}:${port}, expected ${exactly ? '' : 'at least '}${atLeast}`);
        }
        return result;
      };
      const tVariants = [
        tVariant('native', `iperf3 -c ${DEST4} --bind ${SRC_B4} -t ${seconds} -J`, (s) => lab.native([...iperf(s), '--bind', SRC_B4], iperfTimeout(s))),
        tVariant('inplace', `graft --mode inplace --mark ${mark} -- ${iperfShown}`, (s) =>
          lab.graft(['--mode', 'inplace', '--mark', mark], iperf(s), iperfTimeout(s)),
        ),
        tVariant('proxy', `graft --mode proxy --mark ${mark} -- ${iperfShown}`, (s) =>
          lab.graft(['--mode', 'proxy', '--mark', mark], iperf(s), iperfTimeout(s)),
        ),
        // iperf3: a control connection and one data connection
        tVariant('proxychains', `${pcShown} ${iperfShown}`, (s) => viaSocks(IPERF_PORT, 2, false, () => lab.native([...pc, ...iperf(s)], iperfTimeout(s)))),
      ];
      const rows: Row[] = await interleave(
        {
          caseName: 'proxychains',
          metrics: [{ id: 'received', unit: 'MB/s' }],
          variants: tVariants,
          repeats,
          warmup: quick ? [] : tVariants.map((v) => v.warm),
          show: (v) => `iperf3 ${v.received?.toFixed(1)} MB/s`,
        },
        ctx,
      );

      // -- connects: connloop, as in cases/connects.ts
      const count = quick ? 200 : 2000;
      const loop = (n: number): string[] => [connloop, DEST4, String(NAME_PORT), String(n)];
      const loopShown = `connloop ${DEST4} ${NAME_PORT} ${count}`;
      const cVariant = (name: string, command: string, run: (n: number) => Promise<{ stdout: string }>): Variant & { warm: Variant } => {
        const make = (n: number): Variant => ({ name, command, measure: async () => parseConnloop((await run(n)).stdout) });
        return { ...make(count), warm: make(200) };
      };
      const cVariants = [
        cVariant('native', `${loopShown} ${SRC_B4}`, (n) => lab.native([...loop(n), SRC_B4])),
        cVariant('inplace', `graft --mode inplace --mark ${mark} -- ${loopShown}`, (n) => lab.graft(['--mode', 'inplace', '--mark', mark], loop(n))),
        cVariant('proxy', `graft --mode proxy --mark ${mark} -- ${loopShown}`, (n) => lab.graft(['--mode', 'proxy', '--mark', mark], loop(n))),
        cVariant('proxychains', `${pcShown} ${loopShown}`, (n) => viaSocks(NAME_PORT, n, true, () => lab.native([...pc, ...loop(n)]))),
        cVariant('socks', `graft --proxy socks5://127.0.0.1:1080 -- ${loopShown}`, (n) =>
          viaSocks(NAME_PORT, n, true, () => lab.graft(['--proxy', 'socks5://127.0.0.1:1080'], loop(n))),
        ),
      ];
      rows.push(
        ...(await interleave(
          {
            caseName: 'proxychains',
            metrics: [
              { id: 'connects_per_second', unit: 'conn/s' },
              { id: 'connect_latency', unit: 'us' },
              { id: 'exchange_time', unit: 'us' },
            ],
            variants: cVariants,
            repeats,
            warmup: quick ? [] : cVariants.map((v) => v.warm),
            show: (v) =>
              `connloop ${v.connects_per_second?.toFixed(0)} conn/s, median connect ${v.connect_latency?.toFixed(1)} us, exchange ${v.exchange_time?.toFixed(1)} us`,
          },
          ctx,
        )),
      );

      // -- the static Go client under proxychains: LD_PRELOAD cannot reach it
      const goCount = 5;
      const goArgv = [...pc, goconnloop, DEST4, String(NAME_PORT), String(goCount)];
      const socksBefore = socks.made(NAME_PORT);
      const upABefore = txPackets(lab, UP_A);
      const goRun = await runCollect('ip', ['netns', 'exec', lab.net.client.name, ...goArgv], { timeoutMs: 30_000 }, undefined);
      const viaMicrosocks = (await socks.settle(NAME_PORT, socksBefore + 1, 500)) - socksBefore;
      const staticGo = {
        command: `${pcShown} goconnloop ${DEST4} ${NAME_PORT} ${goCount}`,
        exitCode: goRun.code,
        error: goRun.stderr.trim().split('\n')[0] ?? '',
        output: goRun.stdout.trim(),
        microsocksConnections: viaMicrosocks,
        uplinkAPacketsSent: txPackets(lab, UP_A) - upABefore,
        result:
          viaMicrosocks === 0
            ? goRun.code === 0
              ? 'bypassed proxychains (not via microsocks), yet reached a server'
              : 'bypassed proxychains: not via microsocks; went out uplink A (default route) and was refused by hostA'
            : 'went through microsocks',
      };
      ctx.progress(
        `proxychains static Go: exit ${staticGo.exitCode}, ${viaMicrosocks} via microsocks, ${staticGo.uplinkAPacketsSent} packets out uplink A: ${staticGo.error || staticGo.output}`,
      );

      return {
        rows,
        variants: [...tVariants, ...cVariants].map((v) => ({ name: v.name, command: v.command })),
        settings: {
          seconds,
          count,
          repeats,
          servers: `iperf3 -s -B ${DEST4} and bench/fixtures/acceptd.c on ${DEST4}:${NAME_PORT} (hostB)`,
          socks: `${socks.command} (client namespace)`,
          versions: { proxychains4: debVersion('proxychains4'), microsocks: debVersion('microsocks') },
          conf: 'strict_chain, quiet_mode, proxy_dns off, [ProxyList] socks5 127.0.0.1 1080',
          warmup: quick ? 'none' : '1 s of iperf3 and 200 connects per variant',
          staticGoUnderProxychains: staticGo,
        },
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
