/** Reads the process table from /proc: who is whose child, and who is stopped or gone. */
import { readdirSync, readFileSync } from 'node:fs';

export interface Proc {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  /** R, S, D, T (stopped), t (tracing stop), Z (zombie), ... */
  readonly state: string;
  readonly comm: string;
}

export function readProc(pid: number): Proc | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const close = stat.lastIndexOf(')');
  const comm = stat.slice(stat.indexOf('(') + 1, close);
  const [state, ppid, pgrp] = stat.slice(close + 2).split(' ');
  return { pid, ppid: Number(ppid), pgrp: Number(pgrp), state: state ?? '?', comm };
}

export function allProcs(): Proc[] {
  const out: Proc[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const p = readProc(Number(d));
    if (p) out.push(p);
  }
  return out;
}

/** Every live descendant of pid (children first). */
export function descendants(pid: number): Proc[] {
  const procs = allProcs();
  const out: Proc[] = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next = procs.filter((p) => frontier.includes(p.ppid));
    out.push(...next);
    frontier = next.map((p) => p.pid);
  }
  return out;
}

/** The process exists and has not exited (a zombie counts as dead). */
export function alive(pid: number): boolean {
  const p = readProc(pid);
  return p !== null && p.state !== 'Z' && p.state !== 'X';
}

export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Polls fn every 20 ms until it returns a value other than undefined/false. */
export async function poll<T>(fn: () => T | undefined | false, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
