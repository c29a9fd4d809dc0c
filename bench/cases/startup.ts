/**
 * What graft adds to a program's start and exit: whole processes, timed by
 * the harness from spawn to exit (each through `ip netns exec` into the
 * client namespace, which the baseline pays too), interleaved:
 *   native         true
 *   graft          graft -- true
 *   graft-mark     graft --mark 0x10 -- true   (in place; checks the mark first)
 * and the parts, for where the time goes:
 *   node           node -e 0                   Node's own start and exit
 *   graft-version  graft --version             Node plus loading graft's bundle
 *                                              (dist/bundle/graft.mjs: graft, pino,
 *                                              commander, valibot), no run
 *   tracer         graft-tracer with a one-rule table (pass all) on stdin -- true
 *                  the native tracer alone: fork, seize, filter, exec
 * What remains of `graft -- true` after graft-version is the run itself:
 * the proxy's listeners, spawning the tracer, and closing down.
 * Metric: wall, in ms (median over the runs; added = median - native median).
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { repoRoot } from '../../test/lab/paths.js';
import type { BenchCase, BenchContext, Variant } from '../case.js';
import { interleave } from '../case.js';
import { MARK_B } from '../lab.js';
import { encodeTable } from '../../src/tracer/table.js';

/** A rule table of one rule that passes everything, written by the one encoder of the boundary. */
const PASS_ALL = encodeTable(
  [{ kind: 'rule', family: 'any', prefix: 0, portLo: 0, portHi: 65535, explicit: false, byName: false, tcp: 'pass', udp: 'pass', direct: false, relay: false }],
  [],
)
  .toString()
  .trim();

export const startup: BenchCase = {
  name: 'startup',
  summary: 'start-up and exit of `graft -- true` against `true`, and its parts',
  async run(ctx: BenchContext) {
    const { lab, quick } = ctx;
    const runs = quick ? 5 : 15;
    const mark = `0x${MARK_B.toString(16)}`;
    const graftBin = join(repoRoot, 'bin', 'graft');
    const tracerBin = join(repoRoot, 'build', 'graft-tracer');
    const variant = (name: string, command: string, run: () => Promise<unknown>): Variant => ({
      name,
      command,
      async measure() {
        const t0 = performance.now();
        await run();
        return { wall: performance.now() - t0 };
      },
    });
    const variants = [
      variant('native', 'true', () => lab.native(['true'])),
      variant('graft', 'graft -- true', () => lab.graft([], ['true'])),
      variant('graft-mark', `graft --mark ${mark} -- true`, () => lab.graft(['--mark', mark], ['true'])),
      variant('node', 'node -e 0', () => lab.native(['node', '-e', '0'])),
      variant('graft-version', 'graft --version', () => lab.native([graftBin, '--version'])),
      variant('tracer', `echo '${PASS_ALL}' | graft-tracer --channel-fd 2 --rules-fd 0 -- true`, () =>
        lab.native(['sh', '-c', `echo '${PASS_ALL}' | exec "$0" --channel-fd 2 --rules-fd 0 -- true`, tracerBin]),
      ),
    ];
    const show = (v: Record<string, number>): string => `${v.wall?.toFixed(1)} ms`;
    // one unrecorded run of each first (cold page cache for Node's modules), also with --quick: it is cheap
    const rows = await interleave({ caseName: 'startup', metrics: [{ id: 'wall', unit: 'ms' }], variants, repeats: runs, warmup: variants, show }, ctx);
    return {
      rows,
      variants: variants.map((v) => ({ name: v.name, command: v.command })),
      settings: { runs, timing: 'whole process, spawn to exit, through `ip netns exec` into the client namespace', warmup: 'one run of each variant' },
    };
  },
};
