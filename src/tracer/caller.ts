/**
 * What the caller gave graft that the program must start with too, as
 * bin/graft recorded it before Node changed any of it (Node opens
 * descriptors of its own, raises the soft open-files limit and resets every
 * signal disposition). bin/graft passes it in GRAFT_CALLER, which is taken
 * out of the environment here so the program never sees it.
 */

export const CALLER_VARIABLE = 'GRAFT_CALLER';
/** GRAFT_CALLER_ENV_NAME=+value: the caller's NAME, which bin/graft's shell may have changed ("+" alone: unset). */
const ENV_PREFIX = 'GRAFT_CALLER_ENV_';

export interface CallerState {
  /** every descriptor the caller left open across exec, ascending */
  readonly fds: readonly number[];
  /** SigIgn and SigBlk as /proc/PID/status shows them (hex, bit N-1 for signal N) */
  readonly sigIgnored: string;
  readonly sigBlocked: string;
  /** the soft RLIMIT_NOFILE: a number or 'unlimited' */
  readonly nofile: string;
}

/** Parses GRAFT_CALLER; undefined when it is missing or not bin/graft's. */
export function parseCallerState(text: string | undefined): CallerState | undefined {
  if (text === undefined) return undefined;
  const fields = new Map(text.split(';').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const));
  const fdsText = fields.get('fds');
  const ign = fields.get('ign');
  const blk = fields.get('blk');
  const nofile = fields.get('nofile');
  if (fdsText === undefined || !ign || !blk || !nofile) return undefined;
  if (!/^[0-9a-f]{1,16}$/i.test(ign) || !/^[0-9a-f]{1,16}$/i.test(blk) || !/^(\d+|unlimited)$/.test(nofile)) return undefined;
  const fds = fdsText === '' ? [] : fdsText.split(',').map(Number);
  if (fds.some((n) => !Number.isSafeInteger(n) || n < 0)) return undefined;
  return { fds: [...new Set(fds)].sort((a, b) => a - b), sigIgnored: ign, sigBlocked: blk, nofile };
}

/**
 * Reads GRAFT_CALLER and removes it from `env`; puts back the variables
 * bin/graft's shell may have changed, as the caller had them (an empty
 * value comes back unset: the #! line cannot tell the two apart).
 */
export function takeCallerState(env: NodeJS.ProcessEnv = process.env): CallerState | undefined {
  const text = env[CALLER_VARIABLE];
  delete env[CALLER_VARIABLE];
  for (const key of Object.keys(env)) {
    if (!key.startsWith(ENV_PREFIX)) continue;
    const value = env[key] ?? '';
    delete env[key];
    if (text === undefined || !value.startsWith('+')) continue;
    const name = key.slice(ENV_PREFIX.length);
    if (value === '+') delete env[name];
    else env[name] = value.slice(1);
  }
  return parseCallerState(text);
}

/** Where the tracer's descriptors go: the caller's at their numbers, graft's three pipes (records, rule table, control) at the lowest free ones. */
export interface DescriptorPlan {
  readonly stdio: ('pipe' | 'ignore' | 'inherit' | number)[];
  readonly channelFd: number;
  readonly rulesFd: number;
  readonly controlFd: number;
}

/**
 * The tracer's stdio array and options for the caller's descriptors: each
 * of them at its own number, graft's two pipes (the channel and the rule
 * table) at the lowest numbers from 3 up the caller did not use, and
 * nothing else (a gap is closed).
 */
export function descriptorPlan(callerFds: readonly number[]): DescriptorPlan {
  const used = new Set(callerFds);
  const free: number[] = [];
  for (let n = 3; free.length < 3; n++) if (!used.has(n)) free.push(n);
  const [channelFd, rulesFd, controlFd] = free as [number, number, number];
  const top = Math.max(controlFd, ...callerFds);
  const stdio: ('pipe' | 'ignore' | number)[] = [];
  for (let n = 0; n <= top; n++) stdio.push(free.includes(n) ? 'pipe' : used.has(n) ? n : 'ignore');
  return { stdio, channelFd, rulesFd, controlFd };
}
