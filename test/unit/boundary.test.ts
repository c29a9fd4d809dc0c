/**
 * The boundary between tracer and Node, across the real thing: every
 * message kind the spec defines, with generated values, is encoded here,
 * decoded and encoded again by the tracer's own C codec (the boundary-echo
 * tool, built from native/boundary.c), and decoded here again. Lines either
 * side must refuse are refused by both.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { constants } from 'node:os';
import { BoundaryError, decodeMessage, encodeMessage } from '../../src/tracer/codec.js';
import { MESSAGES, type Message } from '../../src/tracer/messages.js';
import type { FieldSpec } from '../../src/tracer/spec.js';
import { buildBoundaryEcho } from '../lab/build.js';
import { seededRandom } from '../../src/chaos/random.js';

/** errno names whose number no other name shares (aliases decode to the canonical name) */
const ERRNO_NAMES = (() => {
  const byNumber = new Map<number, string[]>();
  for (const [name, n] of Object.entries(constants.errno)) byNumber.set(n, [...(byNumber.get(n) ?? []), name]);
  return [...byNumber.values()].filter((names) => names.length === 1).map((names) => names[0]!);
})();

const TEXTS = ['/usr/bin/curl', 'a b', '100%', '-', '--x', 'tab\there', 'new\nline', 'ünïcödé ✓', '\x01\x7f', 'x'.repeat(1023), '日本語'.repeat(100)];
const ADDRS = ['192.0.2.1', '0.0.0.0', '255.255.255.255', '2001:db8::1', '::1', '::', '::ffff:198.51.100.7', 'fe80::1%2', '2001:db8:0:0:1:0:0:1'];

function valueFor(f: FieldSpec, r: () => number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const whole = (lo: number, hi: number): number => pick([lo, hi, 0 >= lo && 0 <= hi ? 0 : lo, lo + Math.floor(r() * (hi - lo + 1))]);
  switch (f.type) {
    case 'int':
      return whole(-(2 ** 31), 2 ** 31 - 1);
    case 'uint':
      return whole(0, 2 ** 32 - 1);
    case 'count':
      return whole(0, Number.MAX_SAFE_INTEGER);
    case 'port':
      return whole(0, 65535);
    case 'double':
      return pick([0, 1, 0.3, 1e-7, r(), r() * 1e6]);
    case 'bool':
      return r() < 0.5;
    case 'addr':
      return pick(ADDRS);
    case 'errno':
      return pick(ERRNO_NAMES);
    case 'text':
      return pick(TEXTS);
    case 'enum':
      return pick(f.words!);
  }
}

function sample(kind: Message['kind'], r: () => number): Message {
  const msg: Record<string, unknown> = { kind };
  for (const f of MESSAGES[kind].fields) if (!f.optional || r() < 0.6) msg[f.name] = valueFor(f, r);
  return msg as unknown as Message;
}

/** Each line through the tracer's codec: what it wrote back, one line each. */
function throughC(lines: readonly string[]): string[] {
  const r = spawnSync(buildBoundaryEcho(), { input: Buffer.from(lines.join(''), 'latin1'), maxBuffer: 1 << 28 });
  assert.equal(r.status, 0, r.stderr.toString());
  const out = r.stdout.toString('latin1').split('\n');
  assert.equal(out.pop(), '');
  return out.map((l) => l + '\n');
}

test('every message kind round-trips TypeScript -> C -> TypeScript with generated values', () => {
  const r = seededRandom(12); // seeded: a failure repeats
  const kinds = Object.keys(MESSAGES) as Message['kind'][];
  const sent: Message[] = [];
  for (const kind of kinds) for (let i = 0; i < 300; i++) sent.push(sample(kind, r));
  const back = throughC(sent.map(encodeMessage));
  assert.equal(back.length, sent.length);
  sent.forEach((msg, i) => {
    const line = back[i]!;
    assert.ok(!line.startsWith('!'), `C refused ${encodeMessage(msg)}: ${line}`);
    assert.deepEqual(decodeMessage(Buffer.from(line, 'latin1')), msg);
  });
  // every kind the spec has was exercised, both directions included
  assert.deepEqual(new Set(sent.map((m) => m.kind)), new Set(kinds));
  assert.deepEqual(new Set(kinds.map((k) => MESSAGES[k].direction)), new Set(['records', 'table', 'control']));
});

test('a line either side must refuse is refused by both', () => {
  const bad = [
    'X 1 2\n',
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 3\n', // too few fields
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 3 exe extra\n', // too many
    'C 1 2 192.0.2.1 65536 127.0.0.1 4000 3 exe\n', // port out of range
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 2147483648 exe\n', // int out of range
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 0x10 exe\n', // not decimal
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 3 -\n', // required text absent
    'C - 2 192.0.2.1 80 127.0.0.1 4000 3 exe\n', // required int absent
    'C 1 2 192.0.2 80 127.0.0.1 4000 3 exe\n', // not an address
    'C 1 2 fe80::1%eth0 80 127.0.0.1 4000 3 exe\n', // scope must be a number
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 3 a%G1\n', // bad escape
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 3 a%2\n', // short escape
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 3 a%00b\n', // NUL
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 3 a-b\n', // '-' must be escaped
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 3  exe\n', // empty field
    'F 1 2 192.0.2.1 80 ENOPE -1 - exe why\n', // unknown errno
    'rule every - 0 0 65535 0 redirect refuse - - - - -\n', // unknown enum word
    'rule any - 0 0 65535 2 0 redirect refuse 0 - - - - -\n', // bool out of range
    'R 1 2 192.0.2.1 80 127.0.0.1 4000 3 9007199254740992 0 5 ok - - 0 exe\n', // a count past 2^53 - 1
    'R 1 2 192.0.2.1 80 127.0.0.1 4000 3 -1 0 5 ok - - 0 exe\n', // a negative count
    'fault any - 0 0 65535 0 - 0 prob 0 nan\n', // not a finite number
    'fault any - 0 0 65535 0 - 0 prob 0 1e999\n',
    'C 1 2 192.0.2.1 80 127.0.0.1 4000 3 ' + 'x'.repeat(1024) + '\n', // text too long
    'D 1 2 ' + 'x'.repeat(4100) + '\n', // line too long
  ];
  const back = throughC(bad);
  bad.forEach((line, i) => {
    assert.ok(back[i]!.startsWith('!'), `C accepted ${JSON.stringify(line)}: ${back[i]}`);
    assert.throws(() => decodeMessage(Buffer.from(line, 'latin1')), BoundaryError, `TypeScript accepted ${JSON.stringify(line)}`);
  });
});

test('the encoder refuses what the decoder could not read back', () => {
  const ok = { kind: 'diagnostic', pid: 1, tid: 1, message: 'm' } as const;
  for (const msg of [
    { ...ok, message: '' },
    { ...ok, message: 'a\0b' },
    { ...ok, message: 'x'.repeat(1024) },
    { ...ok, pid: 1.5 },
    { ...ok, pid: 2 ** 31 },
  ]) {
    assert.throws(() => encodeMessage(msg), BoundaryError, JSON.stringify(msg).slice(0, 80));
  }
});
