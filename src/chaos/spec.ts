/**
 * The shape both kinds of fault are written in: `KIND [key=value ...] [on
 * MATCH]`. Splits it and reports mistakes with the fault's text (src/settings
 * adds where it came from).
 */
import { UsageError } from '../errors.js';
import type { Match } from '../rules/model.js';
import { parseRule } from '../rules/parse.js';

export interface FaultWords {
  readonly kind: string | undefined;
  readonly values: ReadonlyMap<string, string>;
  readonly match: Match;
  /** throws a UsageError naming the fault */
  readonly fail: (why: string) => never;
}

export function splitFault(text: string, noun: 'toxic' | 'fault'): FaultWords {
  const fail = (why: string): never => {
    throw new UsageError(`${noun} '${text}': ${why}`);
  };
  const words = text.trim().split(/\s+/).filter(Boolean);
  const onAt = words.indexOf('on');
  const [kind, ...pairs] = onAt < 0 ? words : words.slice(0, onAt);
  const matchText = onAt < 0 ? 'all' : words.slice(onAt + 1).join(' ');
  let match: Match;
  try {
    match = parseRule(`${matchText} pass`, '').match;
  } catch {
    return fail(`'${matchText}' is not a MATCH (all, ADDR/CIDR[:PORT], NAME, *.NAME, port N)`);
  }
  const values = new Map<string, string>();
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) fail(`'${p}' is not key=value`);
    values.set(p.slice(0, eq), p.slice(eq + 1));
  }
  return { kind, values, match, fail };
}
