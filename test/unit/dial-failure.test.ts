/**
 * The one table that turns a failed dial into the program's errno
 * (src/upstream/failure.ts): every row, the SOCKS reply parser, the names
 * the log gets, the docs' copy of the table, and the real code paths
 * (httpConnect, the socks package through dialThroughChain) against
 * scripted proxies on loopback.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { once } from 'node:events';
import { DialTimeoutError } from '../../src/egress/direct.js';
import { dialThroughChain } from '../../src/upstream/chain.js';
import {
  DialFailure,
  PASSTHROUGH,
  describeSocksReply,
  ProxyHandshakeError,
  REPLY_ERRNOS,
  hopName,
  rowFor,
  socksReplyReason,
  toDialFailure,
  type FailureRowKey,
  type HandshakeReason,
} from '../../src/upstream/failure.js';
import { httpConnect } from '../../src/upstream/http-connect.js';
import { parseProxyUrl } from '../../src/upstream/url.js';
import { repoRoot } from '../lab/paths.js';

const HOP = { index: 1, display: 'socks5://user:***@proxy.test:1080' };
const handshake = (reason: HandshakeReason): ProxyHandshakeError => new ProxyHandshakeError(`${HOP.display}: what it said`, reason);
const withCode = (code: string): Error => Object.assign(new Error(`connect ${code}`), { code });

/** Every row's cases: an error that must take that row, and the errno it must give. */
const CASES: Record<FailureRowKey, readonly (readonly [unknown, string])[]> = {
  socket: [...[...PASSTHROUGH].map((c) => [withCode(c), c] as const), [new DialTimeoutError(2000), 'ETIMEDOUT']],
  'socket-other': [
    [withCode('EMFILE'), 'ECONNREFUSED'],
    [withCode('EINPROGRESS'), 'ECONNREFUSED'],
    [withCode('ERR_SOCKET_CLOSED'), 'ECONNREFUSED'],
    [new Error('no code'), 'ECONNREFUSED'],
    ['a string', 'ECONNREFUSED'],
    [undefined, 'ECONNREFUSED'],
  ],
  'socks5:0x01': [[handshake({ kind: 'socks5', code: 0x01 }), 'ECONNREFUSED']],
  'socks5:0x02': [[handshake({ kind: 'socks5', code: 0x02 }), 'EACCES']],
  'socks5:0x03': [[handshake({ kind: 'socks5', code: 0x03 }), 'ENETUNREACH']],
  'socks5:0x04': [[handshake({ kind: 'socks5', code: 0x04 }), 'EHOSTUNREACH']],
  'socks5:0x05': [[handshake({ kind: 'socks5', code: 0x05 }), 'ECONNREFUSED']],
  'socks5:0x06': [[handshake({ kind: 'socks5', code: 0x06 }), 'ETIMEDOUT']],
  'socks5:0x07': [[handshake({ kind: 'socks5', code: 0x07 }), 'ECONNREFUSED']],
  'socks5:0x08': [[handshake({ kind: 'socks5', code: 0x08 }), 'ENETUNREACH']],
  'socks5:other': [
    [handshake({ kind: 'socks5', code: 0x09 }), 'ECONNREFUSED'],
    [handshake({ kind: 'socks5', code: 0xff }), 'ECONNREFUSED'],
  ],
  'socks4:0x5b': [[handshake({ kind: 'socks4', code: 0x5b }), 'ECONNREFUSED']],
  'socks4:0x5c': [[handshake({ kind: 'socks4', code: 0x5c }), 'EACCES']],
  'socks4:0x5d': [[handshake({ kind: 'socks4', code: 0x5d }), 'EACCES']],
  'socks4:other': [[handshake({ kind: 'socks4', code: 0x00 }), 'ECONNREFUSED']],
  'http:400': [[handshake({ kind: 'http', status: 400 }), 'ECONNREFUSED']],
  'http:401': [
    [handshake({ kind: 'http', status: 401 }), 'EACCES'],
    [handshake({ kind: 'http', status: 407 }), 'EACCES'],
  ],
  'http:403': [[handshake({ kind: 'http', status: 403 }), 'EACCES']],
  'http:404': [[handshake({ kind: 'http', status: 404 }), 'EHOSTUNREACH']],
  'http:500': [[handshake({ kind: 'http', status: 500 }), 'ECONNREFUSED']],
  'http:502': [[handshake({ kind: 'http', status: 502 }), 'ECONNREFUSED']],
  'http:503': [[handshake({ kind: 'http', status: 503 }), 'ECONNREFUSED']],
  'http:504': [[handshake({ kind: 'http', status: 504 }), 'ETIMEDOUT']],
  'http:other': [
    [handshake({ kind: 'http', status: 100 }), 'ECONNREFUSED'],
    [handshake({ kind: 'http', status: 301 }), 'ECONNREFUSED'],
    [handshake({ kind: 'http', status: 405 }), 'ECONNREFUSED'],
    [handshake({ kind: 'http', status: 429 }), 'ECONNREFUSED'],
    [handshake({ kind: 'http', status: 501 }), 'ECONNREFUSED'],
    [handshake({ kind: 'http', status: 599 }), 'ECONNREFUSED'],
  ],
  auth: [[handshake({ kind: 'auth' }), 'EACCES']],
  malformed: [[handshake({ kind: 'malformed' }), 'ECONNREFUSED']],
  closed: [[handshake({ kind: 'closed' }), 'ECONNREFUSED']],
  timeout: [[handshake({ kind: 'timeout' }), 'ETIMEDOUT']],
  unresolvable: [[handshake({ kind: 'unresolvable' }), 'EHOSTUNREACH']],
  family: [[handshake({ kind: 'family' }), 'ENETUNREACH']],
};

describe('the errno of a failed dial (REPLY_ERRNOS)', () => {
  for (const [row, cases] of Object.entries(CASES) as [FailureRowKey, (typeof CASES)[FailureRowKey]][]) {
    it(`${row}: ${REPLY_ERRNOS[row].reply}`, () => {
      for (const [err, errno] of cases) {
        const f = toDialFailure(err, HOP);
        assert.equal(f.errno, errno, `${String((err as Error | undefined)?.message ?? err)}`);
        assert.equal(f.row, row);
        if (REPLY_ERRNOS[row].errno !== 'passthrough') assert.equal(f.errno, REPLY_ERRNOS[row].errno);
        // and without a hop (a direct dial) the errno is the same
        assert.equal(toDialFailure(err).errno, errno);
      }
    });
  }

  it('every errno the table gives is one this system knows', async () => {
    const { constants } = await import('node:os');
    for (const row of Object.values(REPLY_ERRNOS)) {
      if (row.errno !== 'passthrough') assert.ok(row.errno in constants.errno, row.errno);
    }
    for (const c of PASSTHROUGH) assert.ok(c in constants.errno, c);
  });

  it('rowFor names the row of each reason', () => {
    assert.equal(rowFor({ kind: 'socks5', code: 4 }), 'socks5:0x04');
    assert.equal(rowFor({ kind: 'socks4', code: 0x5b }), 'socks4:0x5b');
    assert.equal(rowFor({ kind: 'http', status: 407 }), 'http:401');
    assert.equal(rowFor({ kind: 'http', status: 418 }), 'http:other');
    assert.equal(rowFor({ kind: 'timeout' }), 'timeout');
  });
});

describe('DialFailure and its message', () => {
  it('names the hop with its masked URL, and its place in a longer chain', () => {
    const single = toDialFailure(handshake({ kind: 'socks5', code: 4 }), HOP);
    assert.ok(single instanceof DialFailure && single instanceof Error);
    assert.equal(single.hop, 1);
    assert.equal(single.message, `${HOP.display}: what it said`);
    assert.equal(single.name, 'DialFailure');
    const second = { index: 2, display: 'http://b.test:3128', of: 3 };
    assert.equal(hopName(second), 'http://b.test:3128 (hop 2 of 3)');
    const failed = toDialFailure(new ProxyHandshakeError('http://b.test:3128: CONNECT refused: 502 Bad Gateway', { kind: 'http', status: 502 }), second);
    assert.equal(failed.hop, 2);
    assert.equal(failed.message, 'http://b.test:3128 (hop 2 of 3): CONNECT refused: 502 Bad Gateway');
    assert.ok(failed.cause instanceof ProxyHandshakeError);
  });

  it('says the proxy could not be reached when the connect to hop 1 fails', () => {
    const f = toDialFailure(withCode('EHOSTUNREACH'), HOP);
    assert.equal(f.errno, 'EHOSTUNREACH');
    assert.equal(f.message, `${HOP.display}: cannot connect to the proxy: EHOSTUNREACH`);
  });

  it('leaves a direct dial without a hop', () => {
    const f = toDialFailure(withCode('ENETUNREACH'));
    assert.equal(f.hop, undefined);
    assert.equal(f.message, 'connect: ENETUNREACH');
  });

  it('passes a DialFailure through unchanged', () => {
    const f = new DialFailure('ETIMEDOUT', 2, 'x', 'timeout');
    assert.equal(toDialFailure(f, HOP), f);
  });

  it('names SOCKS replies with their code and RFC name', () => {
    assert.equal(describeSocksReply({ kind: 'socks5', code: 5 }), 'SOCKS5 reply 0x05 (connection refused)');
    assert.equal(describeSocksReply({ kind: 'socks5', code: 0x2a }), 'SOCKS5 reply 0x2A');
    assert.equal(describeSocksReply({ kind: 'socks4', code: 0x5b }), 'SOCKS4 reply 0x5B (request rejected or failed)');
  });

  it('gives the HTTP status as a property of the handshake error', () => {
    assert.equal(new ProxyHandshakeError('x', { kind: 'http', status: 503 }).status, 503);
    assert.equal(new ProxyHandshakeError('x', { kind: 'closed' }).status, undefined);
  });
});

describe('SOCKS replies, read from the bytes the proxy sent', () => {
  const s5 = (...b: number[]) => socksReplyReason('socks5', Buffer.from(b));
  const s4 = (...b: number[]) => socksReplyReason('socks4', Buffer.from(b));
  it('SOCKS5 without authentication', () => {
    assert.deepEqual(s5(5, 0, 5, 4, 0, 1, 0, 0, 0, 0, 0, 0), { kind: 'socks5', code: 4 });
    assert.equal(s5(5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0), undefined);
    assert.equal(s5(5, 0, 5), undefined, 'a reply cut short says nothing');
  });
  it('SOCKS5 with user/password', () => {
    assert.deepEqual(s5(5, 2, 1, 0, 5, 2, 0, 1), { kind: 'socks5', code: 2 });
    assert.deepEqual(s5(5, 2, 1, 1), { kind: 'auth' });
    assert.deepEqual(s5(5, 0xff), { kind: 'auth' });
    assert.equal(s5(5, 2, 1), undefined);
  });
  it('SOCKS5 replies that are not SOCKS5', () => {
    assert.deepEqual(s5(0x48, 0x54, 0x54, 0x50), { kind: 'malformed' });
    assert.deepEqual(s5(5, 0, 4, 0x5b), { kind: 'malformed' });
    assert.deepEqual(s5(5, 0x80), { kind: 'malformed' });
  });
  it('SOCKS4', () => {
    assert.deepEqual(s4(0, 0x5b, 0, 0, 0, 0, 0, 0), { kind: 'socks4', code: 0x5b });
    assert.deepEqual(s4(0, 0x5d), { kind: 'socks4', code: 0x5d });
    assert.equal(s4(0, 0x5a, 0, 0, 0, 0, 0, 0), undefined);
    assert.equal(s4(0), undefined);
    assert.deepEqual(s4(5, 0), { kind: 'malformed' });
  });
});

describe('the docs have the same table', () => {
  it('docs/design.md lists every row with its errno', () => {
    const docs = readFileSync(join(repoRoot, 'docs/design.md'), 'utf8');
    const start = docs.indexOf('## Upstream replies and the errno the program gets');
    assert.ok(start >= 0, 'the section is in docs/design.md');
    const section = docs.slice(start, docs.indexOf('\n## ', start + 1) >>> 0);
    // the first table of the section: reply | errno | why (cells trimmed: prettier may pad them)
    const table = section.slice(section.indexOf('\n|')).split('\n\n')[0]!;
    const rows = table
      .split('\n')
      .filter((l) => l.startsWith('|'))
      .map((l) => l.split('|').map((c) => c.trim()));
    for (const row of Object.values(REPLY_ERRNOS)) {
      const line = rows.find((cells) => cells[1] === row.reply);
      assert.ok(line, `a table line for: ${row.reply}`);
      const errno = row.errno === 'passthrough' ? 'its own errno' : row.errno;
      assert.equal(line[2], errno, row.reply);
      assert.equal(line[3], row.why, row.reply);
    }
    assert.equal(rows.length - 2, Object.keys(REPLY_ERRNOS).length, 'no row the code lacks');
  });
});

/** A server on loopback that answers each connection with `script` (bytes written after each read). */
async function scripted(script: readonly (Buffer | 'close')[]): Promise<{ port: number; close: () => void }> {
  const server = net.createServer((s) => {
    const steps = [...script];
    s.on('error', () => {});
    s.on('data', () => {
      const step = steps.shift();
      if (step === 'close') s.destroy();
      else if (step) s.write(step);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

const dial = (urls: readonly string[], timeoutMs = 3000) =>
  dialThroughChain({
    chain: urls.map((u) => parseProxyUrl(u)),
    destination: { host: '198.51.100.7', port: 443 },
    socketOptions: [],
    localAddressFor: () => undefined,
    timeoutMs,
  });

async function failureOf(p: Promise<net.Socket>): Promise<DialFailure> {
  try {
    (await p).destroy();
  } catch (err) {
    assert.ok(err instanceof DialFailure, `rejects with a DialFailure, not ${String(err)}`);
    return err;
  }
  assert.fail('the dial succeeded');
}

describe('dialThroughChain against scripted proxies on loopback', () => {
  const reply5 = (rep: number) => Buffer.from([5, rep, 0, 1, 0, 0, 0, 0, 0, 0]);
  for (const [rep, errno] of [
    [1, 'ECONNREFUSED'],
    [2, 'EACCES'],
    [3, 'ENETUNREACH'],
    [4, 'EHOSTUNREACH'],
    [5, 'ECONNREFUSED'],
    [6, 'ETIMEDOUT'],
    [7, 'ECONNREFUSED'],
    [8, 'ENETUNREACH'],
    [0x2a, 'ECONNREFUSED'],
  ] as const) {
    it(`SOCKS5 reply 0x${rep.toString(16).padStart(2, '0')} -> ${errno}`, async () => {
      const proxy = await scripted([Buffer.from([5, 0]), reply5(rep)]);
      try {
        const f = await failureOf(dial([`socks5://127.0.0.1:${proxy.port}`]));
        assert.equal(f.errno, errno, f.message);
        assert.equal(f.hop, 1);
        assert.match(f.message, new RegExp(`^socks5://127\\.0\\.0\\.1:${proxy.port}: SOCKS5 reply 0x${rep.toString(16).padStart(2, '0').toUpperCase()}`));
      } finally {
        proxy.close();
      }
    });
  }

  it('SOCKS5 user/password refused -> EACCES, and the message has no password', async () => {
    const proxy = await scripted([Buffer.from([5, 2]), Buffer.from([1, 1])]);
    try {
      const f = await failureOf(dial([`socks5://u:s3cret@127.0.0.1:${proxy.port}`]));
      assert.equal(f.errno, 'EACCES');
      assert.ok(!f.message.includes('s3cret'), f.message);
      assert.match(f.message, /^socks5:\/\/u:\*\*\*@127\.0\.0\.1:\d+: /);
    } finally {
      proxy.close();
    }
  });

  for (const [code, errno] of [
    [0x5b, 'ECONNREFUSED'],
    [0x5c, 'EACCES'],
    [0x5d, 'EACCES'],
  ] as const) {
    it(`SOCKS4 reply 0x${code.toString(16)} -> ${errno}`, async () => {
      const proxy = await scripted([Buffer.from([0, code, 0, 0, 0, 0, 0, 0])]);
      try {
        const f = await failureOf(dial([`socks4://127.0.0.1:${proxy.port}`]));
        assert.equal(f.errno, errno, f.message);
      } finally {
        proxy.close();
      }
    });
  }

  it('a SOCKS5 proxy that closes mid-handshake -> ECONNREFUSED', async () => {
    const proxy = await scripted([Buffer.from([5, 0]), 'close']);
    try {
      const f = await failureOf(dial([`socks5://127.0.0.1:${proxy.port}`]));
      assert.equal(f.errno, 'ECONNREFUSED', f.message);
      assert.equal(f.row, 'closed');
    } finally {
      proxy.close();
    }
  });

  it('a silent SOCKS5 proxy -> ETIMEDOUT', async () => {
    const proxy = await scripted([]);
    try {
      const f = await failureOf(dial([`socks5://127.0.0.1:${proxy.port}`], 300));
      assert.equal(f.errno, 'ETIMEDOUT', f.message);
      assert.equal(f.row, 'timeout');
    } finally {
      proxy.close();
    }
  });

  it('an HTTP proxy that answers 504 -> ETIMEDOUT, in the second hop of a chain', async () => {
    // hop 1 tunnels to hop 2 (its CONNECT is answered 200), hop 2 answers 504
    const proxy = await scripted([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), Buffer.from('HTTP/1.1 504 Gateway Timeout\r\n\r\n')]);
    try {
      const f = await failureOf(dial([`http://127.0.0.1:${proxy.port}`, 'http://198.51.100.9:3128']));
      assert.equal(f.errno, 'ETIMEDOUT', f.message);
      assert.equal(f.hop, 2);
      assert.equal(f.message, 'http://198.51.100.9:3128 (hop 2 of 2): CONNECT refused: 504 Gateway Timeout');
      assert.equal((f.cause as ProxyHandshakeError).status, 504);
    } finally {
      proxy.close();
    }
  });

  it('an unreachable first hop gives its own errno', async () => {
    const closed = net.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as net.AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const f = await failureOf(dial([`socks5://127.0.0.1:${port}`, 'socks5://198.51.100.9:1080']));
    assert.equal(f.errno, 'ECONNREFUSED');
    assert.equal(f.hop, 1);
    assert.equal(f.message, `socks5://127.0.0.1:${port} (hop 1 of 2): cannot connect to the proxy: ECONNREFUSED`);
  });

  it('an empty chain rejects with a DialFailure too', async () => {
    const f = await failureOf(dial([]));
    assert.equal(f.errno, 'ECONNREFUSED');
    assert.equal(f.hop, undefined);
  });

  it('httpConnect rejects with the status as a property', async () => {
    const proxy = await scripted([Buffer.from('HTTP/1.0 403 Forbidden\r\n\r\n')]);
    const socket = net.connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    try {
      await assert.rejects(httpConnect(socket, '198.51.100.7', 443, undefined, 'http://p:1'), (err: unknown) => {
        assert.ok(err instanceof ProxyHandshakeError);
        assert.equal(err.status, 403);
        assert.deepEqual(err.reason, { kind: 'http', status: 403 });
        return true;
      });
    } finally {
      socket.destroy();
      proxy.close();
    }
  });
});
