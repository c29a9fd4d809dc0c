/** Parsing of human-written quantities; each throws UsageError naming the input. */
import { UsageError } from './errors.js';

/** "what: " before a message, when the caller names what the value is for. */
const prefix = (what: string | undefined): string => (what !== undefined ? `${what}: ` : '');

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The longest duration graft accepts: what one Node timer can hold
 * (2^31-1 ms). Longer timers fire at once (with a warning), so a longer
 * value is refused rather than silently turned into 1 ms.
 */
export const MAX_DURATION_MS = 2_147_483_647;
export const MAX_DURATION_TEXT = '2147483647ms, about 24.8 days';

/** "250ms", "5s", "1.5m", "2h"; a bare number is seconds; 0 up to MAX_DURATION_MS. */
export function parseDuration(text: string, what?: string): number {
  const at = prefix(what);
  // trimmed first: blanks on both sides of an optional unit made the pattern backtrack (quadratic in their length)
  const m = /^(\d+(?:\.\d+)?)[ \t]*(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${at}'${text}' is not a duration (e.g. 500ms, 5s, 2m)`);
  const value = Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']!);
  if (!(value <= MAX_DURATION_MS)) throw new UsageError(`${at}'${text}' is too long (at most ${MAX_DURATION_TEXT})`);
  return value;
}

/** SO_MARK values: decimal or 0x hex, 32-bit; undefined when not one. */
export function parseMark(text: string): number | undefined {
  const v = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text.slice(2), 16) : /^\d+$/.test(text) ? Number(text) : NaN;
  return Number.isSafeInteger(v) && v >= 0 && v <= 0xffffffff ? v : undefined;
}

/** Interface names as the kernel takes them (IFNAMSIZ: 15 bytes, no '/', ':' or space). */
export function isInterfaceName(text: string): boolean {
  return /^[^\s/:]{1,15}$/.test(text) && Buffer.byteLength(text) <= 15 && text !== '.' && text !== '..';
}

export const INTERFACE_HINT = 'not an interface name (1-15 bytes, no /, : or space)';

/** A probability, 0 to 1, written as a plain decimal ("0.3", ".5", "1"); undefined when not one. */
export function parseProbability(text: string): number | undefined {
  return /^(?:\d+(?:\.\d*)?|\.\d+)$/.test(text) && Number(text) <= 1 ? Number(text) : undefined;
}

/** A whole number written in decimal digits, within [min, max]; undefined when not one. */
export function parseCount(text: string, min: number, max: number): number | undefined {
  const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
  return n >= min && n <= max ? n : undefined;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1000, kb: 1000, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, kib: 1024, mib: 1 << 20, gib: 1 << 30 };

/** "4096", "64KB", "1MiB" -> bytes. */
export function parseSize(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)[ \t]*([a-z]*)$/i.exec(text.trim());
  const unitText = (m?.[2] ?? '').toLowerCase();
  const unit = Object.hasOwn(SIZE_UNITS, unitText) ? SIZE_UNITS[unitText] : undefined;
  if (!m || unit === undefined) throw new UsageError(`${what}: '${text}' is not a size (e.g. 4096, 64KB, 1MiB)`);
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`${what}: '${text}' is too large (at most ${Number.MAX_SAFE_INTEGER} bytes)`);
  return bytes;
}

/** "1MB/s", "500KiB/s", "8Mbit/s" -> bytes per second. */
export function parseRate(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)[ \t]*([kmg]?)(bit|i?b)\/s$/i.exec(text.trim());
  if (!m) throw new UsageError(`${what}: '${text}' is not a rate (e.g. 1MB/s, 500KiB/s, 8Mbit/s)`);
  const prefix = (m[2] ?? '').toLowerCase();
  const binary = (m[3] ?? '').toLowerCase() === 'ib';
  const scale = prefix === '' ? 1 : (binary ? 1024 : 1000) ** ({ k: 1, m: 2, g: 3 } as Record<string, number>)[prefix]!;
  const bytes = Number(m[1]) * scale * ((m[3] ?? '').toLowerCase() === 'bit' ? 1 / 8 : 1);
  if (!(bytes > 0)) throw new UsageError(`${what}: '${text}' must be more than 0`);
  // slower than a byte a second, one chunk's wait would outgrow a timer
  if (bytes < 1) throw new UsageError(`${what}: '${text}' is too slow (at least 1B/s, 8bit/s)`);
  if (!Number.isFinite(bytes)) throw new UsageError(`${what}: '${text}' is too large`);
  return bytes;
}
