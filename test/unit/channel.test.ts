/**
 * The tracer's records as the Node side reads them from its channel
 * (src/tracer/channel.ts): whole lines across chunks, addresses keyed as
 * the proxy keys peers, and a bad line reported without losing the rest.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { RecordDecoder, type TracerRecord } from '../../src/tracer/channel.js';

function decodeAll(text: string, chunk = 3): { got: TracerRecord[]; bad: string[] } {
  const got: TracerRecord[] = [];
  const bad: string[] = [];
  const d = new RecordDecoder(
    (r) => got.push(r),
    (e) => bad.push(e.message),
  );
  const bytes = Buffer.from(text);
  for (let i = 0; i < bytes.length; i += chunk) d.push(bytes.subarray(i, i + chunk));
  return { got, bad };
}

describe('tracer records', () => {
  it('decodes each kind of record, v4-mapped addresses as IPv4', () => {
    const { got, bad } = decodeAll(
      [
        'C 10 11 5 198.51.100.7 443 ::ffff:127.0.0.1 40000 39999 2 - 0 /usr/bin/curl',
        'I 10 10 ::FFFF:198.51.100.7 80 0 /bin/my%20app',
        'F 10 12 2001:db8::1 22 ENETUNREACH -1 - /x no%20source%20for%20IPv6',
        'F 10 12 192.0.2.1 22 ETIMEDOUT 0 1 /x connect%20fault',
        'H 10 10 198.51.100.7 80 1 /x',
        'C 10 10 6 198.51.100.7 80 127.0.0.1 40001 39999 3 0 400 /x',
        'D 10 10 something%20to%20say',
        'Q 10 13 ip4 40123 ::ffff:192.0.2.53 53 /usr/bin/getent',
        'Q 10 13 ip6 40124 2001:db8::53 53 /usr/bin/getent',
        '',
      ].join('\n'),
    );
    assert.deepEqual(bad, []);
    assert.deepEqual(got, [
      {
        kind: 'redirect',
        pid: 10,
        tid: 11,
        id: 5,
        dstIp: '198.51.100.7',
        dstPort: 443,
        peerIp: '127.0.0.1',
        peerPort: 40000,
        holePort: 39999,
        rule: 2,
        delayMs: 0,
        exe: '/usr/bin/curl',
      },
      { kind: 'inplace', pid: 10, tid: 10, dstIp: '198.51.100.7', dstPort: 80, rule: 0, exe: '/bin/my app' },
      { kind: 'failed', pid: 10, tid: 12, dstIp: '2001:db8::1', dstPort: 22, error: 'ENETUNREACH', rule: -1, exe: '/x', reason: 'no source for IPv6' },
      { kind: 'failed', pid: 10, tid: 12, dstIp: '192.0.2.1', dstPort: 22, error: 'ETIMEDOUT', rule: 0, fault: 1, exe: '/x', reason: 'connect fault' },
      { kind: 'delayed', pid: 10, tid: 10, dstIp: '198.51.100.7', dstPort: 80, fault: 1, exe: '/x' },
      {
        kind: 'redirect',
        pid: 10,
        tid: 10,
        id: 6,
        dstIp: '198.51.100.7',
        dstPort: 80,
        peerIp: '127.0.0.1',
        peerPort: 40001,
        rule: 3,
        holePort: 39999,
        fault: 0,
        delayMs: 400,
        exe: '/x',
      },
      { kind: 'diagnostic', pid: 10, tid: 10, message: 'something to say' },
      { kind: 'dns-socket', pid: 10, tid: 13, family: 'ip4', localPort: 40123, dstIp: '192.0.2.53', dstPort: 53, exe: '/usr/bin/getent' },
      { kind: 'dns-socket', pid: 10, tid: 13, family: 'ip6', localPort: 40124, dstIp: '2001:db8::53', dstPort: 53, exe: '/usr/bin/getent' },
    ]);
  });

  it('reports a bad line and goes on; a table message is no record', () => {
    const { got, bad } = decodeAll('D 1 1 h%C3%A9llo\nZ 0 0\nrule any - 0 0 65535 0 0 pass pass 0 0 - - - - - - - - -\nI 1 1 10.0.0.1 80 0 /x\nD 2 2 tail');
    assert.deepEqual(
      got.map((r) => r.kind),
      ['diagnostic', 'inplace'],
    );
    assert.equal((got[0] as { message: string }).message, 'héllo');
    assert.equal(bad.length, 2);
    assert.match(bad[0]!, /unknown message 'Z'/);
    assert.match(bad[1]!, /not a record/);
  });

  it('keeps a partial line until its newline arrives', () => {
    const got: TracerRecord[] = [];
    const d = new RecordDecoder(
      (r) => got.push(r),
      () => assert.fail('no bad line'),
    );
    d.push(Buffer.from('D 2 2 ta'));
    assert.equal(got.length, 0);
    d.push(Buffer.from('il\n'));
    assert.deepEqual(got, [{ kind: 'diagnostic', pid: 2, tid: 2, message: 'tail' }]);
  });
});
