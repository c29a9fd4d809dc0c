/**
 * The checks of test/unit/input-fuzz.test.ts: an input must end in success
 * or a usage error said in one non-empty line, quickly; what parses must
 * hold usable values. Failures are assertion errors naming the input.
 */
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { parseCommandLine, type CliOutcome, type RoutingSettings } from '../../src/cli.js';
import { parseConfig } from '../../src/config/file.js';
import { NO_SETTINGS, resolveSettings } from '../../src/settings/resolve.js';
import { UsageError } from '../../src/errors.js';

/** How long one input may take to parse (GRAFT_FUZZ_LIMIT_MS, default 5 s). */
// 5 s: a hang or a blow-up shows far beyond it; a deep YAML input on a loaded 2-core machine took 2.9 s
export const LIMIT_MS = process.env.GRAFT_FUZZ_LIMIT_MS ? Number(process.env.GRAFT_FUZZ_LIMIT_MS) : 5000;
/** Node's timers take at most this many ms. */
const TIMER_MAX = 2_147_483_647;

export const show = (x: unknown): string => {
  const s = JSON.stringify(x) ?? String(x);
  return s.length > 400 ? `${s.slice(0, 400)}... (${s.length} chars)` : s;
};

function assertOneLine(message: string, what: string): void {
  if (message.trim() === '') assert.fail(`${what}: an empty message`);
  if (/[\r\n]/.test(message)) assert.fail(`${what}: a message of more than one line: ${show(message)}`);
}

/** A throw must be a UsageError with a one-line message. */
function assertUsageError(err: unknown, what: string): void {
  if (!(err instanceof UsageError)) {
    const e = err as Error | undefined;
    assert.fail(`${what}: threw ${e?.constructor?.name ?? typeof err}: ${show(e?.message ?? err)} (not a UsageError)`);
  }
  assertOneLine(err.message, `${what}: UsageError`);
}

function assertQuick(t0: number, what: string): void {
  const ms = performance.now() - t0;
  if (ms > LIMIT_MS) assert.fail(`${what}: took ${Math.round(ms)} ms (limit ${LIMIT_MS} ms)`);
}

/**
 * parseCommandLine on argv: the outcome when it succeeds, undefined after a
 * (checked) usage error. lenient: any failure is undefined, and nothing
 * is checked (not even the time).
 */
export function cli(argv: readonly string[], env: NodeJS.ProcessEnv, lenient = false): CliOutcome | undefined {
  const what = `parseCommandLine(${show(argv)})`;
  const out: string[] = [];
  const err: string[] = [];
  const t0 = performance.now();
  let outcome: CliOutcome;
  try {
    outcome = parseCommandLine(argv, { out: (s) => void out.push(s), err: (s) => void err.push(s) }, env);
  } catch (e) {
    if (lenient) return undefined;
    assertQuick(t0, what);
    assertUsageError(e, what);
    return undefined;
  }
  if (lenient) return outcome.kind === 'exit' ? undefined : outcome;
  assertQuick(t0, what);
  const written = err.join('');
  if (outcome.kind === 'exit') {
    if (outcome.status === 0) return undefined; // --help, --version
    assert.equal(outcome.status, 2, `${what}: exit status ${outcome.status}`);
    // commander's usage errors: "graft: ...\n"
    assertOneLine(written.replace(/\n$/, ''), `${what}: written to err`);
    return undefined;
  }
  assert.equal(written, '', `${what}: succeeded but wrote to err`);
  return outcome;
}

/**
 * A config file's text as `graft config check` and `--config` take it (the
 * same path: read, then merged and cross-checked): the settings when it
 * succeeds, undefined after a (checked) usage error (any failure when lenient).
 */
export function config(text: string, lenient = false): RoutingSettings | undefined {
  const what = `parseConfig(${show(text)})`;
  const t0 = performance.now();
  try {
    const settings = resolveSettings(NO_SETTINGS, parseConfig(text, 'fuzz.yaml'));
    if (!lenient) assertQuick(t0, what);
    return settings;
  } catch (e) {
    if (lenient) return undefined;
    assertQuick(t0, what);
    assertUsageError(e, what);
    return undefined;
  }
}

export type Sane = Partial<Pick<RoutingSettings, 'egress' | 'rules' | 'chains' | 'toxics' | 'connectFaults' | 'seed' | 'connectTimeoutMs'>>;

/** What is wrong with the values a successful parse gave; empty when they are all usable. */
export function insanities(s: Sane): string[] {
  const bad: string[] = [];
  const check = (ok: boolean, what: string, value: unknown): void => void (ok || bad.push(`${what} = ${show(value)}`));
  const int = (v: unknown, lo: number, hi: number): boolean => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
  const address = (a: string | undefined, what: string): void =>
    check(a === undefined || (isIP(a) !== 0 && !a.includes('%')), `${what} (a plain IP address)`, a);
  const ifname = (i: string | undefined, what: string): void => check(i === undefined || /^[^\s/:]{1,15}$/.test(i), `${what} (an interface name)`, i);
  const egress = (e: Sane['egress'] | undefined, what: string): void => {
    if (!e) return;
    check(e.mark === undefined || int(e.mark, 0, 0xffffffff), `${what}.mark`, e.mark);
    ifname(e.interface, `${what}.interface`);
    address(e.source4, `${what}.source4`);
    address(e.source6, `${what}.source6`);
  };
  const portRange = (p: { lo: number; hi: number } | undefined, what: string): void =>
    check(p === undefined || (int(p.lo, 1, 65535) && int(p.hi, 1, 65535) && p.lo <= p.hi), `${what}.ports`, p);
  const match = (m: { kind: string; address?: string; prefix?: number; family?: number; ports?: { lo: number; hi: number } }, what: string): void => {
    if (m.kind === 'net') {
      address(m.address, `${what}.address`);
      check(int(m.prefix, 0, m.family === 4 ? 32 : 128), `${what}.prefix`, m.prefix);
    }
    portRange(m.ports, what);
  };

  check(s.connectTimeoutMs === undefined || int(s.connectTimeoutMs, 1, TIMER_MAX), `connectTimeoutMs (1..${TIMER_MAX} ms)`, s.connectTimeoutMs);
  check(s.seed === undefined || int(s.seed, 0, 0xffffffff), 'seed (0..2^32-1: the PRNG keeps 32 bits)', s.seed);
  egress(s.egress, 'egress');
  for (const [name, chain] of s.chains ?? []) {
    for (const p of chain) {
      check(int(p.port, 1, 65535), `proxy ${name} port`, p.port);
      check(p.host !== '' && !/[\s\r\n]/.test(p.host), `proxy ${name} host`, p.host);
      check(!/[\r\n]/.test(p.display), `proxy ${name} display (one line)`, p.display);
    }
  }
  for (const [i, r] of (s.rules ?? []).entries()) {
    match(r.match, `rules[${i}].match`);
    if (r.action.kind === 'route') egress(r.action.egress, `rules[${i}].action`);
  }
  for (const [i, t] of (s.toxics ?? []).entries()) {
    const what = `toxics[${i}] '${t.text}'`;
    for (const [k, v] of Object.entries(t.spec)) {
      if (k.endsWith('Ms')) check(int(v, 0, TIMER_MAX), `${what}.${k} (0..${TIMER_MAX} ms)`, v);
      else if (k === 'bytesPerSecond') check(typeof v === 'number' && Number.isFinite(v) && v > 0, `${what}.${k} (finite, > 0)`, v);
      else if (k !== 'type') check(int(v, 0, Number.MAX_SAFE_INTEGER), `${what}.${k} (a whole number of bytes)`, v);
    }
    check(t.toxicity >= 0 && t.toxicity <= 1, `${what}.toxicity`, t.toxicity);
    match(t.match, `${what}.match`);
  }
  for (const [i, f] of (s.connectFaults ?? []).entries()) {
    const what = `connectFaults[${i}] '${f.text}'`;
    check(int(f.delayMs, 0, 8000), `${what}.delayMs (0..8000 ms)`, f.delayMs);
    if (f.select.kind === 'prob') check(f.select.p >= 0 && f.select.p <= 1, `${what}.select.p`, f.select.p);
    else if (f.select.kind !== 'all') check(int(f.select.n, 0, Number.MAX_SAFE_INTEGER), `${what}.select.n`, f.select.n);
    match(f.match, `${what}.match`);
  }
  return bad;
}
