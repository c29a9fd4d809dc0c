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

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1000, kb: 1000, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, kib: 1024, mib: 1 << 20, gib: 1 << 30 };

/** "4096", "64KB", "1MiB" -> bytes. */
export function parseSize(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) throw new UsageError(`${what}: '${text}' is not a size (e.g. 4096, 64KB, 1MiB)`);
  return Math.round(Number(m[1]) * unit);
}

/** "1MB/s", "500KiB/s", "8Mbit/s" -> bytes per second. */
export function parseRate(text: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(bit|i?b)\/s\s*$/i.exec(text);
  if (!m) throw new UsageError(`${what}: '${text}' is not a rate (e.g. 1MB/s, 500KiB/s, 8Mbit/s)`);
  const prefix = (m[2] ?? '').toLowerCase();
  const binary = (m[3] ?? '').toLowerCase() === 'ib';
  const scale = prefix === '' ? 1 : (binary ? 1024 : 1000) ** ({ k: 1, m: 2, g: 3 } as Record<string, number>)[prefix]!;
  const bytes = Number(m[1]) * scale * ((m[3] ?? '').toLowerCase() === 'bit' ? 1 / 8 : 1);
  if (!(bytes > 0)) throw new UsageError(`${what}: '${text}' must be more than 0`);
  return bytes;
}
