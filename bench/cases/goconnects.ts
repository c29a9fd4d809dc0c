/**
 * The connect-cost comparison again, with a static Go binary as the client
 * (bench/fixtures/goconnloop: net.Dial, read the reply to EOF, close; COUNT
 * times; CGO_ENABLED=0, so no libc) against the same server as the connects
 * case (bench/fixtures/acceptd.c on hostB's DEST:7000, over uplink B):
 *   native   goconnloop DEST 7000 COUNT 203.0.113.1   (bound to uplink B's address)
 *   inplace  graft --mode inplace --mark 0x10 -- goconnloop DEST 7000 COUNT
 *   proxy    graft --mode proxy --mark 0x10 -- goconnloop DEST 7000 COUNT
 * goconnloop prints connloop.c's line, so the metrics are the connects
 * case's (see cases/connects.ts), from the program's own clock. Go's dial is
 * a non-blocking connect() followed by a wait in Go's poller, so
 * connect_latency here is that whole dial, not one blocking connect() call.
 */
import { join } from 'node:path';
import { repoRoot } from '../../test/lab/paths.js';
import { buildStaticGo } from '../../test/lab/build.js';
import type { BenchCase, BenchContext, Variant } from '../case.js';
import { interleave } from '../case.js';
import { DEST4, MARK_B, NAME_PORT, SRC_B4 } from '../lab.js';
import { parseConnloop } from './connects.js';

/**
 * Builds bench/fixtures/NAME/ (a Go module, standard library only) as a
 * static binary build/bench-bin/NAME, when a source file is newer.
 */
/** Builds bench/fixtures/NAME/ as a static Go binary into build/bench-bin/. */
export function buildBenchGo(name: string): string {
  return buildStaticGo(join(repoRoot, 'bench', 'fixtures', name), join(repoRoot, 'build', 'bench-bin', name));
}

export const goconnects: BenchCase = {
  name: 'goconnects',
  summary: 'sequential TCP connects from a static Go binary client -> hostB over uplink B (goconnloop against acceptd.c)',
  async run(ctx: BenchContext) {
    const { lab, quick } = ctx;
    const goconnloop = buildBenchGo('goconnloop');
    await lab.startNameServer();
    const count = quick ? 200 : 2000;
    const repeats = quick ? 1 : 3;
    const mark = `0x${MARK_B.toString(16)}`;
    const target = (n: number): string[] => [goconnloop, DEST4, String(NAME_PORT), String(n)];
    const variant = (name: string, command: string, run: (n: number) => Promise<{ stdout: string }>): Variant & { warm: Variant } => {
      const make = (n: number): Variant => ({ name, command, measure: async () => parseConnloop((await run(n)).stdout) });
      return { ...make(count), warm: make(200) };
    };
    const variants = [
      variant('native', `goconnloop ${DEST4} ${NAME_PORT} ${count} ${SRC_B4}`, (n) => lab.native([...target(n), SRC_B4])),
      variant('inplace', `graft --mode inplace --mark ${mark} -- goconnloop ${DEST4} ${NAME_PORT} ${count}`, (n) =>
        lab.graft(['--mode', 'inplace', '--mark', mark], target(n))),
      variant('proxy', `graft --mode proxy --mark ${mark} -- goconnloop ${DEST4} ${NAME_PORT} ${count}`, (n) =>
        lab.graft(['--mode', 'proxy', '--mark', mark], target(n))),
    ];
    const metrics = [
      { id: 'connects_per_second', unit: 'conn/s' },
      { id: 'connect_latency', unit: 'us' },
      { id: 'exchange_time', unit: 'us' },
    ];
    const show = (v: Record<string, number>): string => `${v.connects_per_second?.toFixed(0)} conn/s, median dial ${v.connect_latency?.toFixed(1)} us, exchange ${v.exchange_time?.toFixed(1)} us`;
    // without --quick, one unrecorded run of 200 connects per variant first
    const warmup = quick ? [] : variants.map((v) => v.warm);
    const rows = await interleave({ caseName: 'goconnects', metrics, variants, repeats, warmup, show }, ctx);
    return {
      rows,
      variants: variants.map((v) => ({ name: v.name, command: v.command })),
      settings: {
        count,
        repeats,
        client: 'bench/fixtures/goconnloop (Go, CGO_ENABLED=0, statically linked)',
        server: `bench/fixtures/acceptd.c on ${DEST4}:${NAME_PORT} (hostB)`,
        warmup: quick ? 'none' : '200 connects per variant',
      },
    };
  },
};
