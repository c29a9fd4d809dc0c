/** Parsing of human-written quantities; each throws UsageError naming the input. */
import { UsageError } from './errors.js';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "250ms", "5s", "1.5m"; a bare number is seconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new UsageError(`${what}: '${text}' is not a duration (e.g. 500ms, 5s, 2m)`);
  const value = Number(m[1]) * DURATION_UNITS[m[2] ?? 's']!;
  if (!Number.isFinite(value)) throw new UsageError(`${what}: '${text}' is out of range`);
  return Math.round(value);
}
