/**
 * graft's own processes during a benchmark run, as the cases that sample
 * them (concurrency, soak, dns) find and read them: the Node process that
 * `ip netns exec ... bin/graft` became, the graft-tracer below it, their
 * memory and descriptors from /proc, and the memory allowance the soak and
 * dns checks share.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { descendants } from '../test/lab/procs.js';

/** The RSS allowance of a memory check: a later sample <= an earlier one x RSS_GROWTH + RSS_SLACK_MB (soak.ts says why). */
export const RSS_GROWTH = 1.25;
export const RSS_SLACK_MB = 10;

/** The most a later RSS sample may be, given an earlier one (MB). */
export function rssLimitMB(earlierMB: number): number {
  return earlierMB * RSS_GROWTH + RSS_SLACK_MB;
}

export interface GraftPids {
  readonly node: number;
  readonly tracer: number;
  /** the traced program, when its name was given */
  readonly program?: number;
}

/**
 * graft's processes for a graft run spawned as `ip netns exec NS bin/graft
 * ...`: `ip netns exec` and env (bin/graft's #!) exec the next, so the
 * spawned pid ends up being graft's Node process. With `programComm`, the
 * program below it too. Throws when they are not (yet) there.
 */
export function graftPids(spawnedPid: number, programComm?: string): GraftPids {
  const node = spawnedPid;
  if (!/\bnode\b/.test(readFileSync(`/proc/${node}/comm`, 'utf8')) && !readFileSync(`/proc/${node}/cmdline`, 'utf8').includes('node')) {
    throw new Error(`pid ${node} is not graft's Node process`);
  }
  const below = descendants(node);
  const tracer = below.find((p) => p.comm === 'graft-tracer');
  if (!tracer) throw new Error(`no graft-tracer below graft's Node process ${node}`);
  if (programComm === undefined) return { node, tracer: tracer.pid };
  const program = below.find((p) => p.comm === programComm);
  if (!program) throw new Error(`no ${programComm} below graft's Node process ${node}`);
  return { node, tracer: tracer.pid, program: program.pid };
}

/** Reads a child's stdout line by line: waits, with a timeout, for the next line `want` accepts. */
export function lineReader(child: ChildProcess, who: string): (want: (line: string) => boolean, what: string, ms: number) => Promise<string> {
  const queue: string[] = [];
  let waiting: (() => void) | undefined;
  let ended = false;
  const rl = createInterface({ input: child.stdout! });
  rl.on('line', (line) => {
    queue.push(line);
    waiting?.();
  });
  rl.on('close', () => {
    ended = true;
    waiting?.();
  });
  return async (want, what, ms) => {
    const deadline = Date.now() + ms;
    for (;;) {
      while (queue.length) {
        const line = queue.shift()!;
        if (want(line)) return line;
      }
      if (ended) throw new Error(`${who} ended before printing ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} from ${who} within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      waiting = undefined;
    }
  };
}

export function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]);
}

export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}
