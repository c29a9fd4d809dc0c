/**
 * The tracer's records as Node decodes them (a light check: the channel's
 * format is due to change with the tracer's split).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecordDecoder, decodeRecord, type TracerRecord } from '../../src/channel.js';

describe('tracer records', () => {
  it('decodes each kind of record', () => {
    assert.deepEqual(decodeRecord('C 10 11 198.51.100.7 443 127.0.0.1 40000 2 /usr/bin/curl'), {
      kind: 'redirect', pid: 10, tid: 11, dstIp: '198.51.100.7', dstPort: 443, peerIp: '127.0.0.1', peerPort: 40000, rule: 2, exe: '/usr/bin/curl',
    });
    assert.deepEqual(decodeRecord('I 10 10 ::FFFF:198.51.100.7 80 0 /bin/my%20app'), { kind: 'inplace', pid: 10, tid: 10, dstIp: '198.51.100.7', dstPort: 80, rule: 0, exe: '/bin/my app' });
    assert.deepEqual(decodeRecord('F 10 12 2001:db8::1 22 ENETUNREACH -1 /x no source for IPv6'), {
      kind: 'failed', pid: 10, tid: 12, dstIp: '2001:db8::1', dstPort: 22, errno: 'ENETUNREACH', rule: -1, exe: '/x', reason: 'no source for IPv6',
    });
    assert.deepEqual(decodeRecord('H 10 10 198.51.100.7 80 1 /x'), { kind: 'delayed', pid: 10, tid: 10, dstIp: '198.51.100.7', dstPort: 80, fault: 1, exe: '/x' });
    assert.deepEqual(decodeRecord('W 10 10 198.51.100.7 80 127.0.0.1 40001 3 39999 0 400 /x'), {
      kind: 'late-handshake', pid: 10, tid: 10, dstIp: '198.51.100.7', dstPort: 80, peerIp: '127.0.0.1', peerPort: 40001, rule: 3, holePort: 39999, fault: 0, delayMs: 400, exe: '/x',
    });
    assert.deepEqual(decodeRecord('D 10 10 something to say'), { kind: 'diagnostic', pid: 10, tid: 10, message: 'something to say' });
  });

  it('rejects unknown and short records', () => {
    assert.throws(() => decodeRecord('Z 1 2'), /^Error: unknown tracer record: Z 1 2$/);
    assert.throws(() => decodeRecord('C 10 11 198.51.100.7'), /^Error: bad tracer record/);
    assert.throws(() => decodeRecord('I x 10 198.51.100.7 80 0 /x'), /^Error: bad tracer record/);
  });

  it('splits a byte stream into records at newlines, across chunks and multi-byte characters', () => {
    const got: TracerRecord[] = [];
    const bad: string[] = [];
    const d = new RecordDecoder((r) => got.push(r), (e) => bad.push(e.message));
    const text = Buffer.from('D 1 1 héllo\n\nZ 0 0\nI 1 1 10.0.0.1 80 0 /x\nD 2 2 tail');
    for (let i = 0; i < text.length; i += 3) d.push(text.subarray(i, i + 3));
    assert.deepEqual(got.map((r) => r.kind), ['diagnostic', 'inplace']);
    assert.equal((got[0] as { message: string }).message, 'héllo');
    assert.deepEqual(bad, ['unknown tracer record: Z 0 0']);
    d.push(Buffer.from('\n'));
    assert.equal(got.length, 3);
  });
});
