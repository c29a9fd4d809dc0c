/**
 * Faults on the program's DNS questions, decided by graft's DNS server:
 *   nxdomain [delay=D] [probability=P | first=N | every=N | after=N] [on NAME]
 *   servfail [same settings] [on NAME]
 *   noanswer [selectors] [on NAME]     (no reply: the program's resolver times out)
 *   dnsdelay time=D [selectors] [on NAME]   (the real answer, that much later)
 * NAME is a host name or `*.` its subdomains (or `all`, the default). The
 * selectors count questions, as the connect faults' count connects.
 */
import type { NamePattern } from '../dns/pattern.js';
import { nameMatches } from '../dns/pattern.js';
import { parseDuration } from '../units.js';
import { parseSelector, type Selector } from './connect-faults.js';
import type { Random } from './random.js';
import { splitFault } from './spec.js';
import { UsageError } from '../errors.js';

export const DNS_FAULT_KINDS = ['nxdomain', 'servfail', 'noanswer', 'dnsdelay'] as const;
export type DnsFaultKind = (typeof DNS_FAULT_KINDS)[number];

export interface DnsFault {
  readonly kind: DnsFaultKind;
  readonly delayMs: number;
  readonly select: Selector;
  /** undefined: every name */
  readonly pattern: NamePattern | undefined;
  readonly origin: string;
  readonly text: string;
}

/** What the DNS server does with one question a fault picked. */
export interface DnsFaultAction {
  readonly kind: 'nxdomain' | 'servfail' | 'noanswer' | 'delay';
  readonly delayMs: number;
  readonly text: string;
}

/** A DNS server's question may wait at most this long (a resolver gives up after its own timeout well before). */
const MAX_DNS_DELAY_MS = 60_000;

export const isDnsFaultText = (text: string): boolean => (DNS_FAULT_KINDS as readonly string[]).includes(text.trim().split(/\s+/)[0] ?? '');

/** A rule whose action is a DNS fault: `NAME nxdomain`, `*.NAME servfail`, `NAME noanswer`, `NAME dnsdelay 2s`. */
export const isDnsFaultRule = (text: string): boolean => (DNS_FAULT_KINDS as readonly string[]).includes(text.trim().split(/\s+/)[1] ?? '');

/**
 * The rule form of a DNS fault, as the fault it means: `NAME ACTION [TIME]`
 * is `ACTION [time=TIME] on NAME`, every question (no selector; `--fault`
 * has them). Rule order is kept: it comes before the --fault ones.
 */
export function parseDnsFaultRule(text: string, origin: string): DnsFault {
  const [match = '', action = '', ...rest] = text.trim().split(/\s+/);
  if (action === 'dnsdelay' && rest.length !== 1) throw new UsageError(`rule '${text.trim()}': 'dnsdelay' takes one duration (e.g. 'dnsdelay 2s')`);
  if (action !== 'dnsdelay' && rest.length) throw new UsageError(`rule '${text.trim()}': '${action}' takes no argument (got '${rest.join(' ')}')`);
  const fault = parseDnsFault(`${action}${rest.length ? ` time=${rest[0]}` : ''} on ${match}`, origin);
  return { ...fault, text: text.trim() };
}

export function parseDnsFault(text: string, origin: string): DnsFault {
  const { kind, values, match, fail } = splitFault(text, 'fault');
  if (!(DNS_FAULT_KINDS as readonly (string | undefined)[]).includes(kind)) fail(`'${kind ?? ''}' is not a DNS fault (${DNS_FAULT_KINDS.join(', ')})`);
  const k = kind as DnsFaultKind;
  const timing = k === 'dnsdelay' ? ['time'] : k === 'noanswer' ? [] : ['delay'];
  const allowed = [...timing, 'probability', 'first', 'every', 'after'];
  for (const key of values.keys()) if (!allowed.includes(key)) fail(`'${key}' is not a setting of ${k} (${allowed.join(', ')})`);
  if (match.kind !== 'all' && (match.kind !== 'name' || match.ports))
    fail('a DNS fault matches a host name (example.com, *.example.com) or all, without a port');
  const select = parseSelector(values, fail);
  const timeText = k === 'dnsdelay' ? (values.get('time') ?? fail('dnsdelay needs time=')) : values.get('delay');
  const delayMs = timeText !== undefined ? parseDuration(timeText, `fault '${text}': ${k === 'dnsdelay' ? 'time' : 'delay'}`) : 0;
  if (delayMs > MAX_DNS_DELAY_MS) fail(`a delay of at most ${MAX_DNS_DELAY_MS / 1000}s`);
  return { kind: k, delayMs, select, pattern: match.kind === 'name' ? match.pattern : undefined, origin, text: text.trim() };
}

/** Picks the fault for each question: the first fault whose name matches and whose selector picks this question. */
export function dnsFaultChooser(faults: readonly DnsFault[], random: Random): (name: string) => DnsFaultAction | undefined {
  const seen = faults.map(() => 0);
  const picks = (f: DnsFault, i: number): boolean => {
    const n = ++seen[i]!;
    const s = f.select;
    switch (s.kind) {
      case 'all':
        return true;
      case 'prob':
        return random() < s.p;
      case 'first':
        return n <= s.n;
      case 'every':
        return n % s.n === 0;
      case 'after':
        return n > s.n;
    }
  };
  return (name) => {
    for (const [i, f] of faults.entries()) {
      if (f.pattern && !nameMatches(f.pattern, name)) continue;
      if (!picks(f, i)) continue;
      return { kind: f.kind === 'dnsdelay' ? 'delay' : f.kind, delayMs: f.delayMs, text: f.text };
    }
    return undefined;
  };
}
