/**
 * Toxics as written: `TYPE [key=value ...] [on MATCH]`, e.g.
 *   latency latency=200ms jitter=50ms direction=downstream toxicity=0.5 on 198.51.100.0/24
 *   bandwidth rate=1MB/s
 *   slicer average_size=64 size_variation=32 delay=1ms direction=both
 *   limit_data bytes=4096 | timeout time=2s | reset_peer time=2s | slow_close delay=500ms
 * MATCH is the rules' MATCH (all, ADDR/CIDR[:PORT], port N); default all.
 * The shorthands --latency, --bandwidth and --reset-after build the same.
 */
import type { Match } from '../rules/model.js';
import { splitFault } from './spec.js';
import { MAX_DURATION_MS, MAX_DURATION_TEXT, parseDuration, parseProbability, parseRate, parseSize } from '../units.js';
import type { Direction, Toxic, ToxicSpec } from './toxics.js';

export interface ScopedToxic extends Toxic {
  readonly match: Match;
  readonly origin: string;
}

const KEYS: Record<ToxicSpec['type'], readonly string[]> = {
  latency: ['latency', 'jitter'],
  bandwidth: ['rate'],
  slow_close: ['delay'],
  timeout: ['time'],
  reset_peer: ['time'],
  slicer: ['average_size', 'size_variation', 'delay'],
  limit_data: ['bytes'],
};

export function parseToxic(text: string, origin: string): ScopedToxic {
  const { kind: type, values, match, fail } = splitFault(text, 'toxic');
  if (!type || !Object.hasOwn(KEYS, type)) return fail(`'${type ?? ''}' is not a toxic (${Object.keys(KEYS).join(', ')})`);
  const t = type as ToxicSpec['type'];
  const allowed = [...KEYS[t], 'direction', 'toxicity'];
  for (const k of values.keys()) if (!allowed.includes(k)) fail(`'${k}' is not a setting of ${t} (${allowed.join(', ')})`);
  const need = (k: string): string => values.get(k) ?? fail(`${t} needs ${k}=`);
  const dur = (k: string, dflt?: number): number => {
    const v = values.get(k);
    if (v === undefined) return dflt ?? parseDuration(need(k), `toxic '${text}': ${k}`);
    return parseDuration(v, `toxic '${text}': ${k}`);
  };
  let spec: ToxicSpec;
  switch (t) {
    case 'latency':
      spec = { type: t, latencyMs: dur('latency'), jitterMs: dur('jitter', 0) };
      if (spec.latencyMs + spec.jitterMs > MAX_DURATION_MS) fail(`latency plus jitter must be at most ${MAX_DURATION_TEXT}`);
      break;
    case 'bandwidth':
      spec = { type: t, bytesPerSecond: parseRate(need('rate'), `toxic '${text}': rate`) };
      break;
    case 'slow_close':
      spec = { type: t, delayMs: dur('delay') };
      break;
    case 'timeout':
      spec = { type: t, timeMs: dur('time') };
      break;
    case 'reset_peer':
      spec = { type: t, timeMs: dur('time', 0) };
      break;
    case 'slicer':
      spec = {
        type: t,
        averageSize: parseSize(need('average_size'), `toxic '${text}': average_size`),
        sizeVariation: parseSize(values.get('size_variation') ?? '0', `toxic '${text}': size_variation`),
        delayMs: dur('delay', 0),
      };
      if (spec.averageSize < 1) fail('average_size must be at least 1');
      break;
    case 'limit_data':
      spec = { type: t, bytes: parseSize(need('bytes'), `toxic '${text}': bytes`) };
      break;
  }
  const dirText = values.get('direction') ?? (t === 'reset_peer' || t === 'timeout' ? 'both' : 'downstream');
  const direction = Object.hasOwn(DIRECTIONS, dirText) ? DIRECTIONS[dirText] : undefined;
  if (!direction) fail(`direction '${dirText}' is not upstream, downstream or both`);
  const tox = parseProbability(values.get('toxicity') ?? '1');
  if (tox === undefined) fail(`toxicity '${values.get('toxicity')}' is not a probability (0 to 1)`);
  return { spec, direction: direction!, toxicity: tox!, match, origin, text: text.trim() };
}

const DIRECTIONS: Record<string, Direction> = { up: 'upstream', upstream: 'upstream', down: 'downstream', downstream: 'downstream', both: 'both' };

/** --latency 200ms[±50ms] (also +-50ms) */
export function latencyShorthand(text: string): string {
  const [lat, jit] = text.split(/±|\+-/);
  return `latency latency=${lat} jitter=${jit ?? '0ms'}`;
}
