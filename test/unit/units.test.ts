/** Durations, sizes, rates and marks as the options and the config file write them. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseMark, parseRate, parseSize } from '../../src/units.js';
import { UsageError } from '../../src/errors.js';

const usage = (re: RegExp) => (err: unknown) => err instanceof UsageError && re.test(err.message);

describe('units', () => {
  it('durations: ms, s, m, h; seconds without a unit; rounded to whole ms', () => {
    const cases: [string, number][] = [
      ['500ms', 500],
      ['5s', 5000],
      ['2m', 120_000],
      ['1h', 3_600_000],
      ['3', 3000],
      ['1.5s', 1500],
      [' 250 ms ', 250],
      ['0.0004s', 0],
      ['0', 0],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text, 'x'), ms, text);
  });

  it('a bad duration names the option and the text', () => {
    for (const text of ['soon', '-5s', '5 sec', '', '1e3s', '5d']) {
      assert.throws(
        () => parseDuration(text, '--connect-timeout'),
        usage(new RegExp(`^--connect-timeout: '${text}' is not a duration \\(e\\.g\\. 500ms, 5s, 2m\\)$`)),
        text,
      );
    }
  });

  it('marks: decimal or 0x hex, 32 bits', () => {
    assert.equal(parseMark('16'), 16);
    assert.equal(parseMark('0x10'), 16);
    assert.equal(parseMark('0XfF'), 255);
    assert.equal(parseMark('0xffffffff'), 0xffffffff);
    for (const bad of ['0x100000000', '4294967296', '-1', '0x', '1.5', 'ten', '']) assert.equal(parseMark(bad), undefined, bad);
  });

  it('sizes: bytes, decimal and binary prefixes, any case', () => {
    const cases: [string, number][] = [
      ['4096', 4096],
      ['64b', 64],
      ['64KB', 64_000],
      ['1k', 1000],
      ['1MiB', 1 << 20],
      ['2gib', 2 * (1 << 30)],
      ['1.5kb', 1500],
    ];
    for (const [text, n] of cases) assert.equal(parseSize(text, 'x'), n, text);
    for (const bad of ['lots', '1TB', '-1', '']) assert.throws(() => parseSize(bad, 'bytes'), usage(/^bytes: '.*' is not a size/), bad);
  });

  it('rates: bytes or bits per second, decimal or binary prefixes', () => {
    const cases: [string, number][] = [
      ['1MB/s', 1e6],
      ['500KiB/s', 500 * 1024],
      ['8Mbit/s', 1e6],
      ['100B/s', 100],
      ['2gb/s', 2e9],
      ['1.5MiB/s', 1.5 * (1 << 20)],
      ['16bit/s', 2],
    ];
    for (const [text, n] of cases) assert.equal(parseRate(text, 'x'), n, text);
    for (const bad of ['fast', '1MB', '1 MB/sec', '1TB/s'])
      assert.throws(() => parseRate(bad, '--bandwidth'), usage(/^--bandwidth: '.*' is not a rate \(e\.g\. 1MB\/s/), bad);
    assert.throws(() => parseRate('0MB/s', '--bandwidth'), usage(/^--bandwidth: '0MB\/s' must be more than 0$/));
  });
});
