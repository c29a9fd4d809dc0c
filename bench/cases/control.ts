/**
 * Runtime control (issue 15): how soon an API call acts on an open
 * connection, and how the API answers while many connections are relayed.
 * The API is driven with toxiproxy-node-client from inside the client
 * namespace (test/fixtures/ctl-driver.ts), against an echod (XOR echo,
 * bench/fixtures/echod.c) on hostB's DEST4:7300, over uplink B (--mark).
 *
 * (a) effect: `graft --control 127.0.0.1:8474 --mark 0x10 -- python3
 *     bench/fixtures/rttloop.py DEST 7300 100` (1-byte round trips back to
 *     back on one connection), a proxy scoped to DEST:7300. Each repeat:
 *     POST a latency toxic of 200 ms at t0; then DELETE it at t1, sent just
 *     as a slow round trip has begun.
 *       add_effect     first round trip sent after t0 that took >= 200 ms:
 *                      its send time - t0 (a round trip in flight at t0
 *                      finishes first; at ~0.1-1 ms each it barely counts)
 *       add_call       the POST's own duration, as the client saw it
 *       remove_effect  the first round trip that ends after t1 without the
 *                      full 200 ms: its end - t1 (what a user sees: how long
 *                      after the DELETE the connection is fast again; if
 *                      data already delayed were not released, this would
 *                      be the rest of that delay)
 *       remove_call    the DELETE's own duration
 *     Median and p99 over the repeats (p99 of 20 is the largest but one).
 * (b) responsiveness: `graft --control ... --mark 0x10 -- python3
 *     bench/fixtures/holdmany.py DEST 7300 1000`: the program holds 0, then
 *     1,000 connections through graft (all relayed, all in the proxy's
 *     scope), each doing a 1-byte round trip about once a second. With
 *     each, 200 API calls in a row, cycling GET /proxies, POST a latency
 *     toxic (10 ms), DELETE it: p50 and p99 of the calls' durations, and
 *     the ratio 1,000 / 0 from the same run.
 * Both under a program run by graft, not `graft serve`.
 */
import { join } from 'node:path';
import { CtlDriver, percentile } from '../../test/lab/control.js';
import { poll } from '../../test/lab/procs.js';
import { repoRoot } from '../../test/lab/paths.js';
import type { BenchCase, BenchContext, Row } from '../case.js';
import { singleRows } from '../case.js';
import type { BenchLab, RunningGraft } from '../lab.js';
import { buildBenchC, DEST4, MARK_B } from '../lab.js';
import { lineReader } from '../procs.js';
import { median } from '../stats.js';

const ECHO_PORT = 7300;
const CONTROL = '127.0.0.1:8474';
const LATENCY = 200;
const HELD = 1000;
const CALLS = 200;
const fixture = (name: string): string => join(repoRoot, 'bench', 'fixtures', name);

let echo: Promise<void> | undefined;
function startEcho(lab: BenchLab): Promise<void> {
  echo ??= (async () => {
    const server = lab.net.lab.adopt(lab.net.hostB.spawn(buildBenchC('echod'), [DEST4, String(ECHO_PORT), '4096']));
    await lineReader(server, 'echod')((l) => l === 'ready', '"ready"', 10_000);
  })();
  return echo;
}

interface Rtt {
  t: number;
  ms: number;
}

async function startUnderGraft(lab: BenchLab, program: string[]): Promise<{ graft: RunningGraft; driver: CtlDriver }> {
  const graft = lab.startGraft(['--control', CONTROL, '--mark', `0x${MARK_B.toString(16)}`], program, 300_000);
  await graft
    .next((l) => l === 'ready', '"ready"', 15_000)
    .catch((err: Error) => {
      throw new Error(`${err.message}: ${graft.stderr()}`);
    });
  await poll(() => lab.net.client.run('ss', '-Hltn', `sport = :${CONTROL.split(':')[1]}`).includes(CONTROL), 10_000, 'the control API to listen');
  const driver = await CtlDriver.start(lab.net.lab, lab.net.client, `http://${CONTROL}`);
  await driver.ok('createProxy', { body: { name: 'echo', listen: '127.0.0.1:0', upstream: `${DEST4}:${ECHO_PORT}` } });
  return { graft, driver };
}

async function stop(graft: RunningGraft, driver: CtlDriver): Promise<void> {
  driver.close();
  graft.child.stdin!.end();
  const timer = setTimeout(() => graft.child.kill('SIGKILL'), 5000);
  await graft.closed;
  clearTimeout(timer);
}

async function effect(lab: BenchLab, repeats: number, ctx: BenchContext): Promise<{ out: Record<string, number[]>; notes: string[] }> {
  const { graft, driver } = await startUnderGraft(lab, ['python3', fixture('rttloop.py'), DEST4, String(ECHO_PORT), String(LATENCY / 2)]);
  const out: Record<string, number[]> = { add_effect: [], add_call: [], remove_effect: [], remove_call: [] };
  const notes: string[] = [];
  const lag = { name: 'lag', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: LATENCY, jitter: 0 } };
  const nextRtt = async (pred: (r: Rtt) => boolean, what: string): Promise<Rtt> => {
    for (;;) {
      const line = await graft.next((l) => l.startsWith('{"t"') || l.startsWith('{"error"'), what, 5000);
      const r = JSON.parse(line) as Rtt & { error?: string };
      if (r.error) throw new Error(`rttloop: ${r.error}`);
      if (pred(r)) return r;
    }
  };
  try {
    // a beat first: round trips are flowing
    await graft.next((l) => l.startsWith('{"beat"'), 'a beat', 5000);
    for (let i = 0; i < repeats; i++) {
      const add = await driver.call('addToxic', { name: 'echo', body: lag });
      if (!add.ok) throw new Error(`adding latency: ${add.error}`);
      const seen: Rtt[] = [];
      const caught: Rtt[] = [];
      const slow = await nextRtt((r) => {
        if (r.t >= add.t0) seen.push(r);
        else if (r.ms >= LATENCY - 2) caught.push(r);
        return r.t >= add.t0 && r.ms >= LATENCY - 2;
      }, 'a slow round trip');
      // a round trip partly delayed (caught as the toxic went in) is printed, not counted: say so
      // the round trip in flight at t0 took the latency: the toxic acted on it, and the next one only starts ~200 ms later
      for (const r of caught)
        notes.push(
          `repeat ${i + 1}: the round trip in flight at t0 (sent ${(add.t0 - r.t).toFixed(1)} ms before) took ${r.ms.toFixed(1)} ms: the toxic caught it`,
        );
      if (seen.length > 1)
        notes.push(
          `repeat ${i + 1}: before the first full one, ${seen
            .slice(0, -1)
            .map((r) => `${(r.t - add.t0).toFixed(1)} ms after t0 one took ${r.ms.toFixed(1)} ms`)
            .join('; ')}`,
        );
      out.add_effect!.push(slow.t - add.t0);
      out.add_call!.push(add.ms);
      // the DELETE goes just as a slow round trip has begun: the previous one's line is its start
      await nextRtt((r) => r.ms >= LATENCY - 2, 'another slow round trip');
      const del = await driver.call('removeToxic', { name: 'echo', toxic: 'lag' });
      if (!del.ok) throw new Error(`removing latency: ${del.error}`);
      const back = await nextRtt((r) => r.t + r.ms > del.t0 && r.ms < LATENCY - 2, 'a fast round trip');
      out.remove_effect!.push(back.t + back.ms - del.t0);
      out.remove_call!.push(del.ms);
      ctx.progress(
        `control effect ${i + 1}/${repeats}: add ${(slow.t - add.t0).toFixed(1)} ms (call ${add.ms.toFixed(1)}), remove ${(back.t + back.ms - del.t0).toFixed(1)} ms (call ${del.ms.toFixed(1)})`,
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await stop(graft, driver);
  }
  return { out, notes };
}

async function callTimes(driver: CtlDriver, n: number): Promise<number[]> {
  const ms: number[] = [];
  const lag = { name: 'lag', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 10, jitter: 0 } };
  for (let i = 0; i < n; i++) {
    const a =
      i % 3 === 0
        ? await driver.call('getAll')
        : i % 3 === 1
          ? await driver.call('addToxic', { name: 'echo', body: lag })
          : await driver.call('removeToxic', { name: 'echo', toxic: 'lag' });
    if (!a.ok) throw new Error(`API call ${i} failed: ${a.error}`);
    ms.push(a.ms);
  }
  // leave no toxic behind when n is not a multiple of 3
  if (n % 3 === 2) await driver.call('removeToxic', { name: 'echo', toxic: 'lag' });
  return ms;
}

async function responsiveness(lab: BenchLab, held: number, calls: number, ctx: BenchContext): Promise<{ idle: number[]; busy: number[]; stats: string }> {
  const { graft, driver } = await startUnderGraft(lab, ['python3', fixture('holdmany.py'), DEST4, String(ECHO_PORT), String(held)]);
  try {
    await callTimes(driver, 30); // warm-up, unrecorded
    const idle = await callTimes(driver, calls);
    ctx.progress(`control api, 0 connections: p50 ${percentile(idle, 50).toFixed(2)} ms, p99 ${percentile(idle, 99).toFixed(2)} ms`);
    graft.child.stdin!.write('open\n');
    await graft.next((l) => l.startsWith('held '), `"held ${held}"`, 120_000);
    // a second for every connection to have done a round trip
    await new Promise((r) => setTimeout(r, 1500));
    const busy = await callTimes(driver, calls);
    ctx.progress(`control api, ${held} connections: p50 ${percentile(busy, 50).toFixed(2)} ms, p99 ${percentile(busy, 99).toFixed(2)} ms`);
    graft.child.stdin!.write('stats\n');
    const stats = await graft.next((l) => l.startsWith('round_trips='), 'stats', 10_000);
    return { idle, busy, stats };
  } finally {
    await stop(graft, driver);
  }
}

export const control: BenchCase = {
  name: 'control',
  summary: 'control API: time from a call to its effect on an open connection; API latency with 1,000 relayed connections',
  async run(ctx: BenchContext) {
    const { lab, quick } = ctx;
    await startEcho(lab);
    const repeats = quick ? 3 : 20;
    const held = quick ? 200 : HELD;
    const calls = quick ? 60 : CALLS;
    const { out: a, notes } = await effect(lab, repeats, ctx);
    const b = await responsiveness(lab, held, calls, ctx);
    const rows: Row[] = [];
    for (const [metric, values] of Object.entries(a)) {
      rows.push(
        ...singleRows('control', metric, 'ms', [
          ['p50', median(values)],
          ['p99', percentile(values, 99)],
        ]),
      );
    }
    const p = (xs: number[], q: number): number => percentile(xs, q);
    rows.push(
      ...singleRows('control', 'api_call_p50', 'ms', [
        ['0 conns', p(b.idle, 50)],
        [`${held} conns`, p(b.busy, 50)],
      ]),
      ...singleRows('control', 'api_call_p99', 'ms', [
        ['0 conns', p(b.idle, 99)],
        [`${held} conns`, p(b.busy, 99)],
      ]),
    );
    const fmt = (xs: number[]): string => `median ${median(xs).toFixed(1)} ms, p99 ${percentile(xs, 99).toFixed(1)} ms`;
    const report = [
      `  (a) over ${repeats} repeats, latency ${LATENCY} ms on a relayed connection doing round trips back to back:`,
      `      add:    effect ${fmt(a.add_effect!)}; the POST itself ${fmt(a.add_call!)}`,
      `      remove: effect ${fmt(a.remove_effect!)}; the DELETE itself ${fmt(a.remove_call!)}`,
      `      every add effect (ms, sorted): ${[...a.add_effect!]
        .sort((x, y) => x - y)
        .map((x) => x.toFixed(1))
        .join(' ')}`,
      `      every remove effect (ms, sorted): ${[...a.remove_effect!]
        .sort((x, y) => x - y)
        .map((x) => x.toFixed(1))
        .join(' ')}`,
      ...notes.map((n) => `      ${n}`),
      `  (b) ${calls} API calls (GET /proxies, POST and DELETE a toxic, in turn), program under graft holding ${held} relayed connections vs 0:`,
      `      p50 ${p(b.idle, 50).toFixed(2)} -> ${p(b.busy, 50).toFixed(2)} ms (x${(p(b.busy, 50) / p(b.idle, 50)).toFixed(2)}), p99 ${p(b.idle, 99).toFixed(2)} -> ${p(b.busy, 99).toFixed(2)} ms (x${(p(b.busy, 99) / p(b.idle, 99)).toFixed(2)}); holder: ${b.stats}`,
    ].join('\n');
    return {
      rows,
      variants: [
        { name: 'effect', command: `graft --control ${CONTROL} --mark 0x${MARK_B.toString(16)} -- python3 rttloop.py ${DEST4} ${ECHO_PORT} ${LATENCY / 2}` },
        { name: 'held', command: `graft --control ${CONTROL} --mark 0x${MARK_B.toString(16)} -- python3 holdmany.py ${DEST4} ${ECHO_PORT} ${held}` },
      ],
      settings: {
        repeats,
        latency_ms: LATENCY,
        held,
        calls,
        client: 'toxiproxy-node-client in the client namespace',
        server: `bench/fixtures/echod.c on ${DEST4}:${ECHO_PORT} (hostB)`,
      },
      report,
    };
  },
};
