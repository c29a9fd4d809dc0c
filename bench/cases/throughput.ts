/**
 * Bulk TCP throughput, one iperf3 stream between the client and hostB over
 * uplink B, each way (forward: the client sends; reverse, iperf3 -R: hostB
 * sends):
 *   native   iperf3 -c DEST --bind 203.0.113.1   (the source rule routes it via B)
 *   inplace  graft --mode inplace --mark 0x10 -- iperf3 -c DEST
 *   proxy    graft --mode proxy --mark 0x10 -- iperf3 -c DEST
 * All three cross the same veth link to the same server, so the ratios are
 * graft's cost alone. Each metric is iperf3's own receiver-side figure
 * (end.sum_received.bits_per_second from -J), so graft's start-up is not in it.
 */
import type { BenchCase, BenchContext, Variant } from '../case.js';
import { interleave } from '../case.js';
import { DEST4, IPERF_PORT, MARK_B, SRC_B4 } from '../lab.js';

interface IperfReport {
  error?: string;
  end?: { sum_received?: { bits_per_second?: number } };
}

export function receivedMBps(stdout: string): number {
  let report: IperfReport;
  try {
    report = JSON.parse(stdout) as IperfReport;
  } catch {
    throw new Error(`iperf3 printed no JSON report: ${stdout.slice(0, 500)}`);
  }
  // iperf3 3.12 with -J exits 0 even when it could not connect: the report's error field says so
  if (report.error) throw new Error(`iperf3: ${report.error}`);
  const bps = report.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number') throw new Error('iperf3 report has no end.sum_received.bits_per_second');
  return bps / 8e6;
}

export const throughput: BenchCase = {
  name: 'throughput',
  summary: 'iperf3, one TCP stream client -> hostB over uplink B',
  async run(ctx: BenchContext) {
    const { lab, quick } = ctx;
    await lab.startIperfServer();
    const seconds = quick ? 1 : 5;
    const repeats = quick ? 1 : 3;
    const mark = `0x${MARK_B.toString(16)}`;
    const client = (secs: number, reverse: boolean): string[] => [
      'iperf3',
      '-c',
      DEST4,
      '-p',
      String(IPERF_PORT),
      '-t',
      String(secs),
      '-J',
      ...(reverse ? ['-R'] : []),
    ];
    const timeoutMs = (secs: number): number => secs * 1000 + 30_000;
    const variant = (name: string, command: string, run: (secs: number, reverse: boolean) => Promise<{ stdout: string }>): Variant & { warm: Variant } => {
      const make = (secs: number): Variant => ({
        name,
        command,
        measure: async () => ({
          forward: receivedMBps((await run(secs, false)).stdout),
          reverse: receivedMBps((await run(secs, true)).stdout),
        }),
      });
      return { ...make(seconds), warm: make(1) };
    };
    const variants = [
      variant('native', `iperf3 -c ${DEST4} --bind ${SRC_B4} -t ${seconds} -J [-R]`, (s, r) => lab.native([...client(s, r), '--bind', SRC_B4], timeoutMs(s))),
      variant('inplace', `graft --mode inplace --mark ${mark} -- iperf3 -c ${DEST4} -t ${seconds} -J [-R]`, (s, r) =>
        lab.graft(['--mode', 'inplace', '--mark', mark], client(s, r), timeoutMs(s)),
      ),
      variant('proxy', `graft --mode proxy --mark ${mark} -- iperf3 -c ${DEST4} -t ${seconds} -J [-R]`, (s, r) =>
        lab.graft(['--mode', 'proxy', '--mark', mark], client(s, r), timeoutMs(s)),
      ),
    ];
    const metrics = [
      { id: 'forward', unit: 'MB/s' },
      { id: 'reverse', unit: 'MB/s' },
    ];
    const show = (v: Record<string, number>): string => `${v.forward?.toFixed(1)} / ${v.reverse?.toFixed(1)} MB/s`;
    // without --quick, one unrecorded 1-second run of each variant first
    const warmup = quick ? [] : variants.map((v) => v.warm);
    const rows = await interleave({ caseName: 'throughput', metrics, variants, repeats, warmup, show }, ctx);
    return {
      rows,
      variants: variants.map((v) => ({ name: v.name, command: v.command })),
      settings: { seconds, repeats, server: `iperf3 -s -B ${DEST4} (hostB)`, warmup: quick ? 'none' : '1 s per variant' },
    };
  },
};
