/**
 * Sequential TCP connects (bench/fixtures/connloop.c: connect, read the
 * reply to EOF, close; COUNT times) to hostB's name service on DEST:7000
 * over uplink B:
 *   native   connloop DEST 7000 COUNT 203.0.113.1   (bound to uplink B's address)
 *   inplace  graft --mode inplace --mark 0x10 -- connloop DEST 7000 COUNT
 *   proxy    graft --mode proxy --mark 0x10 -- connloop DEST 7000 COUNT
 *   inplace-armed  inplace, with a connect fault armed for another
 *            destination: what arming faults costs connects it spares
 *            (a non-blocking client's SO_ERROR read then stops in the
 *            tracer too)
 * Metrics, from connloop's own clock (graft's start-up is not in them):
 *   connects_per_second  whole connections (connect, reply, close) per second
 *   connect_latency      median time one connect() call takes; its difference
 *                        from native is the latency graft adds to a connect
 *   exchange_time        median time from connect() to the reply's EOF. In
 *                        proxy mode connect() returns as soon as graft's local
 *                        proxy has accepted, before the proxy has dialed the
 *                        destination, so the proxy's cost shows here (and in
 *                        connects/s), not in connect_latency.
 *
 * Which server: bench/fixtures/acceptd.c, a C accept-write-close loop
 * sending the same "B\n" as the test suite's Node server
 * (test/fixtures/server.ts, which also prints a JSON line per connection).
 * The Node server was the bottleneck for the native baseline: on the
 * 2-vCPU development VM, native connloop (2,000 connects, via uplink B, the
 * two servers alternated 3 times) made 8,150-10,060 connects/s against Node
 * and 14,990-18,520/s against acceptd.c. With Node, native would look about
 * half as fast as it is and graft's ratio twice as good.
 */
import type { BenchCase, BenchContext, Variant } from '../case.js';
import { interleave } from '../case.js';
import { buildBenchC, DEST4, MARK_B, NAME_PORT, SRC_B4 } from '../lab.js';

export function parseConnloop(stdout: string): Record<string, number> {
  const m = /connects=(\d+) seconds=([\d.]+) per_second=([\d.]+) median_us=([\d.]+) median_exchange_us=([\d.]+)/.exec(stdout);
  if (!m) throw new Error(`connloop printed no result: ${stdout.slice(0, 500)}`);
  return { connects_per_second: Number(m[3]), connect_latency: Number(m[4]), exchange_time: Number(m[5]) };
}

/** A connect fault for an address the clients never connect to. */
const ARMED_FAULT = 'refuse errno=ETIMEDOUT on 203.0.113.250';

/** What differs between the sequential-connect cases: the client program. */
export interface ConnectClient {
  readonly caseName: string;
  readonly summary: string;
  /** how the client is named in the report */
  readonly label: string;
  /** builds the client; returns its path */
  readonly build: () => string;
  /** what connect_latency measures for this client, in the progress line */
  readonly latencyWord: string;
  readonly settings?: Record<string, unknown>;
}

/** Native, in place and through the proxy, interleaved, for one client (connloop's output format). */
export function sequentialConnects(client: ConnectClient): BenchCase {
  return {
    name: client.caseName,
    summary: client.summary,
    async run(ctx: BenchContext) {
      const { lab, quick } = ctx;
      const bin = client.build();
      await lab.startNameServer();
      const count = quick ? 200 : 2000;
      const repeats = quick ? 1 : 3;
      const mark = `0x${MARK_B.toString(16)}`;
      const target = (n: number): string[] => [bin, DEST4, String(NAME_PORT), String(n)];
      const variant = (name: string, command: string, run: (n: number) => Promise<{ stdout: string }>): Variant & { warm: Variant } => {
        const make = (n: number): Variant => ({ name, command, measure: async () => parseConnloop((await run(n)).stdout) });
        return { ...make(count), warm: make(200) };
      };
      const args = `${DEST4} ${NAME_PORT} ${count}`;
      const variants = [
        variant('native', `${client.label} ${args} ${SRC_B4}`, (n) => lab.native([...target(n), SRC_B4])),
        variant('inplace', `graft --mode inplace --mark ${mark} -- ${client.label} ${args}`, (n) =>
          lab.graft(['--mode', 'inplace', '--mark', mark], target(n)),
        ),
        variant('proxy', `graft --mode proxy --mark ${mark} -- ${client.label} ${args}`, (n) => lab.graft(['--mode', 'proxy', '--mark', mark], target(n))),
        variant('inplace-armed', `graft --mode inplace --mark ${mark} --fault '${ARMED_FAULT}' -- ${client.label} ${args}`, (n) =>
          lab.graft(['--mode', 'inplace', '--mark', mark, '--fault', ARMED_FAULT], target(n)),
        ),
      ];
      const metrics = [
        { id: 'connects_per_second', unit: 'conn/s' },
        { id: 'connect_latency', unit: 'us' },
        { id: 'exchange_time', unit: 'us' },
      ];
      const show = (v: Record<string, number>): string =>
        `${v.connects_per_second?.toFixed(0)} conn/s, median ${client.latencyWord} ${v.connect_latency?.toFixed(1)} us, exchange ${v.exchange_time?.toFixed(1)} us`;
      // without --quick, one unrecorded run of 200 connects per variant first
      const warmup = quick ? [] : variants.map((v) => v.warm);
      const rows = await interleave({ caseName: client.caseName, metrics, variants, repeats, warmup, show }, ctx);
      return {
        rows,
        variants: variants.map((v) => ({ name: v.name, command: v.command })),
        settings: {
          count,
          repeats,
          ...client.settings,
          server: `bench/fixtures/acceptd.c on ${DEST4}:${NAME_PORT} (hostB)`,
          warmup: quick ? 'none' : '200 connects per variant',
        },
      };
    },
  };
}

export const connects = sequentialConnects({
  caseName: 'connects',
  summary: 'sequential TCP connects client -> hostB over uplink B (connloop.c against acceptd.c)',
  label: 'connloop',
  build: () => buildBenchC('connloop'),
  latencyWord: 'connect',
});
