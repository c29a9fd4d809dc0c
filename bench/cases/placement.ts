/**
 * CPU placement of the tracer against the program, for the connect-heavy
 * case where the tracer's stop is the cost (in-place mode, connloop.c,
 * sequential connects over uplink B). The design notes measured a seccomp
 * stop at ~4 us with tracer and program on one CPU and ~70 us across vCPUs;
 * this case checks whether a placement is worth making graft's default:
 *   native       connloop, bound to uplink B's address
 *   free         graft inplace, the scheduler places everything (graft's default)
 *   same-cpu     program pinned to CPU 1 (taskset inside graft) and the
 *                tracer pinned to CPU 1 too (GRAFT_TRACER wrapper)
 *   other-cpu    program pinned to CPU 1, tracer pinned to CPU 0
 *   all-one-cpu  `taskset -c 1 graft ...`: Node, tracer and program on CPU 1
 * Needs two CPUs; on one it reports nothing.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { BenchCase, BenchContext, Variant } from '../case.js';
import { interleave } from '../case.js';
import { parseConnloop } from './connects.js';
import { buildBenchC, DEST4, MARK_B, NAME_PORT, SRC_B4 } from '../lab.js';
import { repoRoot } from '../../test/lab/paths.js';

const graftBin = join(repoRoot, 'bin', 'graft');

/** A tracer wrapper pinned to one CPU, for GRAFT_TRACER. */
function pinnedTracer(cpu: number): string {
  const dir = join(repoRoot, 'build', 'bench-bin');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `tracer-on-cpu${cpu}.sh`);
  writeFileSync(path, `#!/bin/sh\nexec taskset -c ${cpu} ${join(repoRoot, 'build', 'graft-tracer')} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

export const placement: BenchCase = {
  name: 'placement',
  summary: 'CPU placement of tracer and program: sequential connects in place (connloop.c)',
  async run(ctx: BenchContext) {
    const { lab, quick } = ctx;
    if (availableParallelism() < 2) {
      ctx.progress('placement: needs 2 CPUs, skipped');
      return { rows: [], variants: [], settings: { skipped: 'fewer than 2 CPUs' } };
    }
    const connloop = buildBenchC('connloop');
    await lab.startNameServer();
    const count = quick ? 200 : 2000;
    const repeats = quick ? 1 : 5;
    const mark = `0x${MARK_B.toString(16)}`;
    const target = [connloop, DEST4, String(NAME_PORT), String(count)];
    const inplace = ['--mode', 'inplace', '--mark', mark];
    const graftWith = (env: string[], pre: string[], program: string[]) => [...pre, 'env', ...env, graftBin, ...inplace, '--', ...program];
    const defs: [string, string, string[]][] = [
      ['native', `connloop ... ${SRC_B4}`, [...target, SRC_B4]],
      ['free', 'graft inplace -- connloop', graftWith([], [], target)],
      [
        'same-cpu',
        'GRAFT_TRACER=<taskset -c 1 tracer> graft inplace -- taskset -c 1 connloop',
        graftWith([`GRAFT_TRACER=${pinnedTracer(1)}`], [], ['taskset', '-c', '1', ...target]),
      ],
      [
        'other-cpu',
        'GRAFT_TRACER=<taskset -c 0 tracer> graft inplace -- taskset -c 1 connloop',
        graftWith([`GRAFT_TRACER=${pinnedTracer(0)}`], [], ['taskset', '-c', '1', ...target]),
      ],
      ['all-one-cpu', 'taskset -c 1 graft inplace -- connloop', graftWith([], ['taskset', '-c', '1'], target)],
    ];
    const variants: Variant[] = defs.map(([name, command, argv]) => ({
      name,
      command,
      measure: async () => parseConnloop((await lab.native(argv)).stdout),
    }));
    const metrics = [
      { id: 'connects_per_second', unit: 'conn/s' },
      { id: 'connect_latency', unit: 'us' },
    ];
    const show = (v: Record<string, number>): string => `${v.connects_per_second?.toFixed(0)} conn/s, median connect ${v.connect_latency?.toFixed(1)} us`;
    const rows = await interleave({ caseName: 'placement', metrics, variants, repeats, show }, ctx);
    return {
      rows,
      variants: defs.map(([name, command]) => ({ name, command })),
      settings: { count, repeats, mode: 'inplace --mark 0x10', server: `bench/fixtures/acceptd.c on ${DEST4}:${NAME_PORT} (hostB)` },
    };
  },
};
