/**
 * Helpers for driving graft's control API in a lab: the driver process
 * (fixtures/ctl-driver.ts, toxiproxy-node-client inside the client
 * namespace) and the long-running echo client's lines
 * (fixtures/holdecho.py), shared by test/control.test.ts and
 * bench/cases/control.ts.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Lab, Namespace } from './netns.js';
import { repoRoot } from './paths.js';

export interface Answer {
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: string;
  /** when the call started, ms since the epoch */
  readonly t0: number;
  /** how long the call took, ms */
  readonly ms: number;
}

/** toxiproxy-node-client, run in `ns` against `url` (see fixtures/ctl-driver.ts). */
export class CtlDriver {
  private nextId = 1;
  private readonly waiting = new Map<number, (a: Answer) => void>();
  private stderr = '';

  private constructor(readonly child: ChildProcess) {
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  static async start(lab: Lab, ns: Namespace, url: string): Promise<CtlDriver> {
    const child = lab.adopt(ns.spawn(process.execPath, [join(repoRoot, 'dist/test/fixtures/ctl-driver.js'), url], { stdio: ['pipe', 'pipe', 'pipe'] }));
    const driver = new CtlDriver(child);
    const lines = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`ctl-driver exited with ${code}: ${driver.stderr}`)));
      lines.on('line', (line) => {
        if (line === 'ready') return resolve();
        const a = JSON.parse(line) as Answer;
        driver.settle(a);
      });
    });
    return driver;
  }

  private settle(a: Answer): void {
    this.waiting.get(a.id)?.(a);
    this.waiting.delete(a.id);
  }

  /** One call; resolves with the answer, ok or not. */
  call(op: string, fields: Record<string, unknown> = {}, timeoutMs = 15_000): Promise<Answer> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`ctl-driver: ${op} got no answer within ${timeoutMs} ms ${this.stderr}`));
      }, timeoutMs);
      this.waiting.set(id, (a) => {
        clearTimeout(timer);
        resolve(a);
      });
      this.child.stdin!.write(`${JSON.stringify({ id, op, ...fields })}\n`);
    });
  }

  /** One call that must succeed; its value. */
  async ok<T = unknown>(op: string, fields: Record<string, unknown> = {}): Promise<T> {
    const a = await this.call(op, fields);
    if (!a.ok) throw new Error(`${op} ${JSON.stringify(fields)} failed: ${a.error}`);
    return a.value as T;
  }

  close(): void {
    this.child.stdin!.end();
  }
}

/** One line of fixtures/holdecho.py. */
export interface HoldLine {
  readonly t: number;
  readonly kind: 'hold' | 'rtt' | 'new' | 'stall';
  readonly to: string;
  readonly ok?: boolean;
  readonly ms?: number;
  readonly port?: number;
  readonly error?: string;
  readonly errno?: string;
}

/** Collects a holdecho.py's lines as they come. */
export class HoldLines {
  readonly lines: HoldLine[] = [];
  private readonly waiters: (() => void)[] = [];

  constructor(stdout: NodeJS.ReadableStream) {
    createInterface({ input: stdout }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      this.lines.push(JSON.parse(line) as HoldLine);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  get mark(): number {
    return this.lines.length;
  }

  since(mark: number, pred: (l: HoldLine) => boolean = () => true): HoldLine[] {
    return this.lines.slice(mark).filter(pred);
  }

  /** Waits until `count` lines since `mark` match; returns them (throws with what came after timeoutMs). */
  async waitFor(mark: number, pred: (l: HoldLine) => boolean, count = 1, timeoutMs = 5000, what = 'lines'): Promise<HoldLine[]> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const got = this.since(mark, pred);
      if (got.length >= count) return got;
      const left = end - Date.now();
      if (left <= 0) {
        const tail = this.since(mark)
          .slice(-8)
          .map((l) => JSON.stringify(l));
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${count} ${what}; got ${got.length}; last lines:\n${tail.join('\n')}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}
