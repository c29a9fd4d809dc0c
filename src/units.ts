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

/** SO_MARK values: decimal or 0x hex, 32-bit; undefined when not one. */
export function parseMark(text: string): number | undefined {
  const v = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text.slice(2), 16) : /^\d+$/.test(text) ? Number(text) : NaN;
  return Number.isSafeInteger(v) && v >= 0 && v <= 0xffffffff ? v : undefined;
}
