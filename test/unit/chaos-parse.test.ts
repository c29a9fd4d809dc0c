/** The text of toxics and connect faults: settings, defaults, scopes, and the errors. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { latencyShorthand, parseToxic } from '../../src/chaos/parse.js';
import { parseConnectFault, refuseShorthand } from '../../src/chaos/connect-faults.js';
import { encodeMessage } from '../../src/tracer/codec.js';
import { faultMessage } from '../../src/tracer/table.js';
import { seededRandom } from '../../src/chaos/random.js';
import { UsageError } from '../../src/errors.js';

const usage = (re: RegExp) => (err: unknown) => err instanceof UsageError && re.test(err.message);

describe('toxics', () => {
  it('each type with its settings, direction and toxicity defaults', () => {
    const cases: [string, unknown, string, number][] = [
      ['latency latency=200ms jitter=50ms', { type: 'latency', latencyMs: 200, jitterMs: 50 }, 'downstream', 1],
      ['latency latency=1s direction=up toxicity=0.5', { type: 'latency', latencyMs: 1000, jitterMs: 0 }, 'upstream', 0.5],
      ['bandwidth rate=8Mbit/s direction=both', { type: 'bandwidth', bytesPerSecond: 1e6 }, 'both', 1],
      ['slicer average_size=64 size_variation=32 delay=1ms', { type: 'slicer', averageSize: 64, sizeVariation: 32, delayMs: 1 }, 'downstream', 1],
      ['slicer average_size=1KiB', { type: 'slicer', averageSize: 1024, sizeVariation: 0, delayMs: 0 }, 'downstream', 1],
      ['limit_data bytes=4096', { type: 'limit_data', bytes: 4096 }, 'downstream', 1],
      ['timeout time=2s', { type: 'timeout', timeMs: 2000 }, 'both', 1],
      ['timeout time=0', { type: 'timeout', timeMs: 0 }, 'both', 1],
      ['reset_peer', { type: 'reset_peer', timeMs: 0 }, 'both', 1],
      ['slow_close delay=500ms toxicity=0', { type: 'slow_close', delayMs: 500 }, 'downstream', 0],
    ];
    for (const [text, spec, direction, toxicity] of cases) {
      const t = parseToxic(text, '--toxic 1');
      assert.deepEqual([t.spec, t.direction, t.toxicity, t.text, t.match], [spec, direction, toxicity, text, { kind: 'all' }], text);
    }
  });

  it('a scope after on, as a rule MATCH', () => {
    assert.deepEqual(parseToxic('latency latency=1s on 198.51.100.0/24:443', 'x').match, {
      kind: 'net',
      family: 4,
      address: '198.51.100.0',
      prefix: 24,
      ports: { lo: 443, hi: 443 },
    });
    assert.deepEqual(parseToxic('latency latency=1s on port 80-81', 'x').match, { kind: 'port', ports: { lo: 80, hi: 81 } });
  });

  it('mistakes name the toxic and the problem', () => {
    const cases: [string, RegExp][] = [
      ['latency', /^toxic 'latency': latency needs latency=$/],
      ['lag latency=1s', /^toxic 'lag latency=1s': 'lag' is not a toxic \(latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data\)$/],
      ['latency latency=1s rate=2', /'rate' is not a setting of latency \(latency, jitter, direction, toxicity\)$/],
      ['latency latency=1s direction=sideways', /direction 'sideways' is not upstream, downstream or both$/],
      ['latency latency=1s toxicity=2', /toxicity '2' is not a probability \(0 to 1\)$/],
      ['latency latency=soon', /'soon' is not a duration/],
      ['latency 1s', /'1s' is not key=value$/],
      ['latency latency=1s on 10.0.0.300', /'10\.0\.0\.300' is not a MATCH \(all, ADDR\/CIDR\[:PORT\], NAME, \*\.NAME, port N\)$/],
      ['slicer average_size=0', /average_size must be at least 1$/],
      ['bandwidth rate=fast', /'fast' is not a rate/],
    ];
    for (const [text, want] of cases) assert.throws(() => parseToxic(text, '--toxic 1'), usage(want), text);
  });

  it('the --latency shorthand', () => {
    assert.equal(latencyShorthand('200ms±50ms'), 'latency latency=200ms jitter=50ms');
    assert.equal(latencyShorthand('200ms+-50ms'), 'latency latency=200ms jitter=50ms');
    assert.equal(latencyShorthand('1s'), 'latency latency=1s jitter=0ms');
  });
});

describe('connect faults', () => {
  it('refuse and delay, with their selectors', () => {
    const f = (text: string) => {
      const c = parseConnectFault(text, '--fault 1');
      return [c.errno, c.delayMs, c.select];
    };
    assert.deepEqual(f('refuse'), ['ECONNREFUSED', 0, { kind: 'all' }]);
    assert.deepEqual(f('refuse errno=etimedout delay=2s probability=0.3'), ['ETIMEDOUT', 2000, { kind: 'prob', p: 0.3 }]);
    assert.deepEqual(f('refuse errno=EPERM first=3'), ['EPERM', 0, { kind: 'first', n: 3 }]);
    assert.deepEqual(f('refuse every=4'), ['ECONNREFUSED', 0, { kind: 'every', n: 4 }]);
    assert.deepEqual(f('refuse after=0'), ['ECONNREFUSED', 0, { kind: 'after', n: 0 }]);
    assert.deepEqual(f('delay time=500ms'), [undefined, 500, { kind: 'all' }]);
    assert.deepEqual(f('delay time=8s every=2'), [undefined, 8000, { kind: 'every', n: 2 }]);
  });

  it('the --refuse shorthand', () => {
    assert.equal(refuseShorthand('ETIMEDOUT@0.3'), 'refuse errno=ETIMEDOUT probability=0.3');
    assert.equal(refuseShorthand('ECONNRESET'), 'refuse errno=ECONNRESET');
  });

  it('mistakes name the fault and the problem', () => {
    const cases: [string, RegExp][] = [
      ['explode', /^fault 'explode': 'explode' is not a connect fault \(refuse, delay\)$/],
      [
        'refuse errno=EWHAT',
        /'EWHAT' is not an errno graft can refuse with \(ECONNREFUSED, ETIMEDOUT, ENETUNREACH, EHOSTUNREACH, ECONNRESET, EACCES, EPERM\)$/,
      ],
      ['refuse probability=2', /probability '2' is not between 0 and 1$/],
      ['refuse first=2 every=3', /give one of probability, first, every, after \(got first, every\)$/],
      ['refuse first=0', /first '0' is not a whole number from 1 to 4294967295$/],
      ['refuse every=4294967296', /every '4294967296' is not a whole number from 1 to 4294967295$/],
      ['refuse after=-1', /after '-1' is not a whole number from 0 to 4294967295$/],
      ['refuse time=1s', /'time' is not a setting of refuse/],
      ['delay', /delay needs time=$/],
      ['delay time=30s', /a delay of at most 8s$/],
      ['refuse errno=ETIMEDOUT delay=9s', /a delay of at most 8s$/],
    ];
    for (const [text, want] of cases) assert.throws(() => parseConnectFault(text, '--fault 1'), usage(want), text);
  });

  it('as a message of the tracer table', () => {
    const line = (text: string): string => encodeMessage(faultMessage(parseConnectFault(text, 'x')));
    assert.equal(
      line('refuse errno=ETIMEDOUT delay=200ms probability=0.5 on 198.51.100.0/24:443'),
      'fault ip4 198.51.100.0 24 443 443 1 ETIMEDOUT 200 prob 0 0.5\n',
    );
    assert.equal(line('delay time=1s every=3 on port 80'), 'fault any - 0 80 80 0 - 1000 every 3 0\n');
    assert.equal(line('refuse'), 'fault any - 0 0 65535 0 ECONNREFUSED 0 all 0 0\n');
  });
});

describe('the seeded PRNG', () => {
  it('repeats for a seed, differs between seeds, stays in [0, 1)', () => {
    const take = (seed: number) => Array.from({ length: 100 }, seededRandom(seed));
    assert.deepEqual(take(42), take(42));
    assert.notDeepEqual(take(42), take(43));
    assert.ok(take(7).every((x) => x >= 0 && x < 1));
  });
});
