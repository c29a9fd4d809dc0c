/**
 * Runs the native tracer, which runs the program. Relays the signals graft
 * gets to the tracer (it decides which traced processes get them, see native/signals.h) and
 * reports how the tracer ended.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { descriptorPlan, type CallerState, type DescriptorPlan } from './caller.js';
import { encodeMessage } from './codec.js';
import { packageRoot } from '../package-root.js';
import type { ControlMessage } from './messages.js';

/** In the tracer's order (native/signals.c, `forwarded`). */
const RELAYED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];

/**
 * Each relayed signal goes to the tracer as the real-time signal
 * RELAY_BASE + its index (SIGRTMIN is 34 under glibc; 35.. leaves it be),
 * so the tracer can tell a relay from the terminal's own signal; see
 * on_signal in native/signals.c for why that matters.
 */
const RELAY_BASE = 35;

export function tracerPath(): string {
  const fromEnv = process.env.GRAFT_TRACER;
  if (fromEnv) return fromEnv;
  return fileURLToPath(new URL('build/graft-tracer', packageRoot));
}

export interface TracerLaunch {
  readonly program: string;
  readonly args: readonly string[];
  /** the rule table the tracer decides by, encoded (tracer/table.ts) */
  readonly table: Buffer;
  /** seeds the tracer's choice of connect faults */
  readonly seed: number;
  /** 'inherit' for the CLI; 'pipe' lets the programmatic API capture output. */
  readonly stdio: 'inherit' | 'pipe';
  /** the program's environment and working directory (default: graft's) */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** relay signals graft gets to the program (the CLI does; an API caller's own signals are its own) */
  readonly relaySignals?: boolean;
  /**
   * What graft's caller gave it (bin/graft records it): the program gets
   * those descriptors, ignored signals, signal mask and open-files limit.
   * Without it (the API), the program gets stdio 0-2 only, no ignored or
   * blocked signals and the tracer's limits, as a child of this process.
   */
  readonly caller?: CallerState;
}

export interface RunningTracer {
  readonly child: ChildProcess;
  /** The channel the tracer writes its records to. */
  readonly channel: Readable;
  /** Answers a redirected connect (by the id of its record): connected, or failed with an errno. */
  readonly control: (msg: ControlMessage) => void;
  /** The program's exit status as a shell reports it (128+N for signal N). */
  readonly exited: Promise<number>;
}

export class TracerMissingError extends Error {}

export function startTracer(launch: TracerLaunch): RunningTracer {
  const path = tracerPath();
  if (!existsSync(path)) {
    throw new TracerMissingError(`the tracer binary is missing (${path}); run \`npm install\` in graft's directory to build it`);
  }
  const caller = launch.stdio === 'inherit' ? launch.caller : undefined;
  const fds: DescriptorPlan = caller
    ? descriptorPlan(caller.fds)
    : { stdio: [launch.stdio, launch.stdio, launch.stdio, 'pipe', 'pipe', 'pipe'], channelFd: 3, rulesFd: 4, controlFd: 5 };
  const argv = [
    '--channel-fd',
    String(fds.channelFd),
    '--rules-fd',
    String(fds.rulesFd),
    '--control-fd',
    String(fds.controlFd),
    '--keep-fds',
    caller ? caller.fds.join(',') : '0,1,2',
    ...(caller ? ['--sig-ignored', caller.sigIgnored, '--sig-blocked', caller.sigBlocked, '--nofile', caller.nofile] : []),
    '--relay-base',
    String(RELAY_BASE),
    '--seed',
    String(launch.seed),
    '--',
    launch.program,
    ...launch.args,
  ];
  const child = spawn(path, argv, {
    stdio: [...fds.stdio],
    ...(launch.env ? { env: launch.env } : {}),
    ...(launch.cwd ? { cwd: launch.cwd } : {}),
  });
  const channel = child.stdio[fds.channelFd] as Readable;
  const rules = child.stdio[fds.rulesFd] as Writable;
  rules.on('error', () => {}); // the tracer died first: its exit says why
  rules.end(launch.table);
  const controlPipe = child.stdio[fds.controlFd] as Writable;
  controlPipe.on('error', () => {}); // the tracer is gone: nobody waits for answers
  const control = (msg: ControlMessage): void => {
    if (!controlPipe.destroyed) controlPipe.write(encodeMessage(msg));
  };

  const relayers = (launch.relaySignals === false ? [] : RELAYED_SIGNALS).map((sig, i) => {
    const fn = (): void => {
      try {
        if (child.pid !== undefined) process.kill(child.pid, RELAY_BASE + i);
      } catch {
        /* the tracer is gone already: its exit ends graft */
      }
    };
    process.on(sig, fn);
    return [sig, fn] as const;
  });

  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      for (const [sig, fn] of relayers) process.off(sig, fn);
      if (code !== null) resolve(code);
      else reject(new Error(`the tracer was killed by ${signal ?? 'a signal'}`));
    });
  });
  return { child, channel, control, exited };
}
