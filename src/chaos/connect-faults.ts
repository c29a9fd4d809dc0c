/**
 * Faults on the connect itself, decided in the tracer:
 *   refuse errno=ECONNREFUSED [delay=2s] [probability=0.3 | first=N | every=N | after=N] [on MATCH]
 *   delay time=500ms [same selectors] [on MATCH]      (the connect completes that much later)
 * The shorthand --refuse ERRNO[@PROBABILITY] builds the first form.
 */
import { REFUSE_ERRNOS, type Match, type RefuseErrno } from '../rules/model.js';
import { splitFault } from './spec.js';
import { parseCount, parseDuration, parseProbability } from '../units.js';

export type Selector =
  { readonly kind: 'all' } | { readonly kind: 'prob'; readonly p: number } | { readonly kind: 'first' | 'every' | 'after'; readonly n: number };

export interface ConnectFault {
  /** undefined: a delay only */
  readonly errno?: RefuseErrno;
  readonly delayMs: number;
  readonly select: Selector;
  readonly match: Match;
  readonly origin: string;
  readonly text: string;
}

/** first/every/after counts: the tracer counts connects in 32 bits. */
export const MAX_COUNT = 0xffffffff;

/** The tracer holds a connect at most this long (the proxy's registrations outlive it). */
const MAX_DELAY_MS = 8000;

/** probability=P | first=N | every=N | after=N (at most one; none: every time): which connects (or questions) a fault picks. */
export function parseSelector(values: ReadonlyMap<string, string>, fail: (why: string) => never): Selector {
  const selectors = ['probability', 'first', 'every', 'after'].filter((k) => values.has(k));
  if (selectors.length > 1) fail(`give one of probability, first, every, after (got ${selectors.join(', ')})`);
  const sel = selectors[0];
  if (sel === undefined) return { kind: 'all' };
  if (sel === 'probability') return { kind: 'prob', p: parseProbability(values.get(sel)!) ?? fail(`probability '${values.get(sel)}' is not between 0 and 1`) };
  const min = sel === 'after' ? 0 : 1;
  const n = parseCount(values.get(sel)!, min, MAX_COUNT) ?? fail(`${sel} '${values.get(sel)}' is not a whole number from ${min} to ${MAX_COUNT}`);
  return { kind: sel as 'first' | 'every' | 'after', n };
}

export function parseConnectFault(text: string, origin: string): ConnectFault {
  const { kind, values, match, fail } = splitFault(text, 'fault');
  if (kind !== 'refuse' && kind !== 'delay') return fail(`'${kind ?? ''}' is not a connect fault (refuse, delay)`);
  // the tracer decides connect faults by address, before any name is known to it
  if (match.kind === 'name') fail('a connect fault matches addresses and ports, not names (for a name: a rule, or a DNS fault such as nxdomain)');
  const allowed = kind === 'refuse' ? ['errno', 'delay', 'probability', 'first', 'every', 'after'] : ['time', 'probability', 'first', 'every', 'after'];
  for (const k of values.keys()) if (!allowed.includes(k)) fail(`'${k}' is not a setting of ${kind} (${allowed.join(', ')})`);
  const select = parseSelector(values, fail);
  let errno: RefuseErrno | undefined;
  let delayMs: number;
  if (kind === 'refuse') {
    const e = (values.get('errno') ?? 'ECONNREFUSED').toUpperCase();
    if (!(REFUSE_ERRNOS as readonly string[]).includes(e)) fail(`'${values.get('errno')}' is not an errno graft can refuse with (${REFUSE_ERRNOS.join(', ')})`);
    errno = e as RefuseErrno;
    delayMs = values.has('delay') ? parseDuration(values.get('delay')!, `fault '${text}': delay`) : 0;
  } else {
    delayMs = parseDuration(values.get('time') ?? fail('delay needs time='), `fault '${text}': time`);
  }
  if (delayMs > MAX_DELAY_MS) fail(`a delay of at most ${MAX_DELAY_MS / 1000}s`);
  return { ...(errno ? { errno } : {}), delayMs, select, match, origin, text: text.trim() };
}

/** --refuse ETIMEDOUT@0.3 */
export function refuseShorthand(text: string): string {
  const [errno, p] = text.split('@');
  return `refuse errno=${errno}${p !== undefined ? ` probability=${p}` : ''}`;
}
