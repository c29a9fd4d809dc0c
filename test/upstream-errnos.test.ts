/**
 * What real proxies reply when they cannot reach the destination, and the
 * errno dialThroughChain turns that into (src/upstream/failure.ts). Inside
 * the World lab: the proxies (microsocks, dante, tinyproxy) run in the host
 * namespace, where the destinations fail in each way a native connect can:
 *
 *   198.51.100.7:9       closed port (the host answers with a reset)
 *   198.51.100.7:9999    silent: an nft rule in the host drops the SYNs
 *   203.0.113.9          no route in the host (ENETUNREACH natively)
 *   203.0.113.17         `unreachable` route in the host (EHOSTUNREACH)
 *   203.0.113.33         `prohibit` route in the host (EACCES)
 *
 * dialThroughChain runs in the client namespace (fixtures/chain-dial.ts).
 * Each case first checks what a native connect from the host namespace gets,
 * so the table's "natively" is measured here, not assumed. Only
 * documentation addresses, only inside the lab's namespaces.
 */
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { repoRoot } from './lab/paths.js';
import { ProxyHost, type Credentials } from './lab/proxies.js';
import { A4, World } from './lab/world.js';
import { LAB, needs } from './lab/capabilities.js';

const MS = { addr: '192.0.2.10', port: 1080 };
const MS_AUTH = { addr: '192.0.2.11', port: 1080 };
const DANTE = { addr: '192.0.2.12', port: 1080 };
const TINY = { addr: '192.0.2.13', port: 3128 };
const TINY_AUTH = { addr: '192.0.2.15', port: 3128 };
const HANGUP = { addr: '192.0.2.20', port: 1080 };
const SILENT = { addr: '192.0.2.21', port: 1080 };

const MS_CRED: Credentials = { user: 'msuser', password: 'ms-s3cret' };
const TINY_CRED: Credentials = { user: 'tpuser', password: 'Tiny-s3cret-42' };

const CLOSED = { host: A4, port: 9 };
const SILENT_DST = { host: A4, port: 9999 };
const NO_ROUTE = { host: '203.0.113.9', port: 80 };
const UNREACHABLE = { host: '203.0.113.17', port: 80 };
const PROHIBITED = { host: '203.0.113.33', port: 80 };

const TIMEOUT_MS = 1500;

interface Outcome {
  readonly ok?: boolean;
  readonly dialFailure?: boolean;
  readonly errno?: string;
  readonly hop?: number | null;
  readonly row?: string;
  readonly message?: string;
  readonly ms: number;
}

describe('the errno of a failed dial through real proxies', { skip: needs(...LAB, 'ss', 'unshare', 'microsocks', 'danted', 'tinyproxy', 'nft') }, () => {
  let world: World;

  before(async () => {
    world = await new World().start();
    const proxies = new ProxyHost(world.lab, world.host, (n) => world.path(n));
    await Promise.all([
      proxies.microsocks(MS),
      proxies.microsocks(MS_AUTH, MS_CRED),
      proxies.danted(DANTE),
      proxies.tinyproxy(TINY),
      proxies.tinyproxy(TINY_AUTH, TINY_CRED),
      proxies.fake(HANGUP, 'hangup'),
      proxies.fake(SILENT, 'silent'),
    ]);
    world.lab.route(world.host, 'unreachable', '203.0.113.16/28');
    world.lab.route(world.host, 'prohibit', '203.0.113.32/28');
    world.host.run('nft', 'add table inet graft_errnos');
    world.host.run('nft', 'add chain inet graft_errnos input { type filter hook input priority 0 ; }');
    world.host.run('nft', `add rule inet graft_errnos input ip daddr ${A4} tcp dport ${SILENT_DST.port} drop`);
    // for the unreachable proxies: an `unreachable` route in the client
    world.lab.route(world.client, 'unreachable', '203.0.113.48/28');
  });
  after(() => world?.destroy());

  async function dial(chain: readonly string[], to: { host: string; port: number }): Promise<Outcome> {
    const req = JSON.stringify({ chain, host: to.host, port: to.port, timeoutMs: TIMEOUT_MS });
    const run = await world.native([process.execPath, join(repoRoot, 'dist/test/fixtures/chain-dial.js'), req]);
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout) as Outcome;
  }

  /** What a native connect from the host namespace (where the proxies are) gets. */
  function native(to: { host: string; port: number }): string {
    const code = `import errno, socket\ns = socket.socket()\ns.settimeout(1)\ntry:\n  s.connect(('${to.host}', ${to.port}))\n  print('connected')\nexcept socket.timeout:\n  print('ETIMEDOUT')\nexcept OSError as e:\n  print(errno.errorcode[e.errno])`;
    return world.host.run('python3', '-c', code).trim();
  }

  describe("natively, from the proxies' namespace", () => {
    for (const [what, to, errno] of [
      ['closed port', CLOSED, 'ECONNREFUSED'],
      ['silent host', SILENT_DST, 'ETIMEDOUT'],
      ['no route', NO_ROUTE, 'ENETUNREACH'],
      ['unreachable route', UNREACHABLE, 'EHOSTUNREACH'],
      ['prohibit route', PROHIBITED, 'EACCES'],
    ] as const) {
      it(`${what}: ${errno}`, () => assert.equal(native(to), errno));
    }
  });

  /**
   * Each proxy against each failing destination: the errno the program
   * gets, and the row of the table (which tells what the proxy replied).
   */
  interface Case {
    readonly proxy: string;
    readonly to: { host: string; port: number };
    readonly errno: string;
    readonly row: string;
  }
  const ms = `socks5://${MS.addr}:${MS.port}`;
  const d5 = `socks5://${DANTE.addr}:${DANTE.port}`;
  const d4 = `socks4://${DANTE.addr}:${DANTE.port}`;
  const tiny = `http://${TINY.addr}:${TINY.port}`;
  const cases: Case[] = [
    // microsocks maps its connect's errno to the RFC 1928 code
    { proxy: ms, to: CLOSED, errno: 'ECONNREFUSED', row: 'socks5:0x05' },
    { proxy: ms, to: NO_ROUTE, errno: 'ENETUNREACH', row: 'socks5:0x03' },
    { proxy: ms, to: UNREACHABLE, errno: 'EHOSTUNREACH', row: 'socks5:0x04' },
    { proxy: ms, to: PROHIBITED, errno: 'ECONNREFUSED', row: 'socks5:0x01' },
    { proxy: ms, to: SILENT_DST, errno: 'ETIMEDOUT', row: 'timeout' },
    // dante SOCKS5
    { proxy: d5, to: CLOSED, errno: 'ECONNREFUSED', row: 'socks5:0x05' },
    { proxy: d5, to: NO_ROUTE, errno: 'ENETUNREACH', row: 'socks5:0x03' },
    { proxy: d5, to: UNREACHABLE, errno: 'EHOSTUNREACH', row: 'socks5:0x04' },
    { proxy: d5, to: PROHIBITED, errno: 'ECONNREFUSED', row: 'socks5:0x01' },
    { proxy: d5, to: SILENT_DST, errno: 'ETIMEDOUT', row: 'timeout' },
    // dante SOCKS4: one failure code for everything
    { proxy: d4, to: CLOSED, errno: 'ECONNREFUSED', row: 'socks4:0x5b' },
    { proxy: d4, to: NO_ROUTE, errno: 'ECONNREFUSED', row: 'socks4:0x5b' },
    { proxy: d4, to: UNREACHABLE, errno: 'ECONNREFUSED', row: 'socks4:0x5b' },
    { proxy: d4, to: PROHIBITED, errno: 'ECONNREFUSED', row: 'socks4:0x5b' },
    { proxy: d4, to: SILENT_DST, errno: 'ETIMEDOUT', row: 'timeout' },
    // tinyproxy
    { proxy: tiny, to: CLOSED, errno: 'ECONNREFUSED', row: 'http:500' },
    { proxy: tiny, to: NO_ROUTE, errno: 'ECONNREFUSED', row: 'http:500' },
    { proxy: tiny, to: UNREACHABLE, errno: 'ECONNREFUSED', row: 'http:500' },
    { proxy: tiny, to: PROHIBITED, errno: 'ECONNREFUSED', row: 'http:500' },
    { proxy: tiny, to: SILENT_DST, errno: 'ETIMEDOUT', row: 'timeout' },
  ];
  const named = new Map<object, string>([
    [CLOSED, 'closed port'],
    [SILENT_DST, 'silent host'],
    [NO_ROUTE, 'no route'],
    [UNREACHABLE, 'unreachable route'],
    [PROHIBITED, 'prohibit route'],
  ]);

  describe('a destination the proxy cannot reach', () => {
    for (const c of cases) {
      it(`${c.proxy} to a ${named.get(c.to)}: ${c.errno} (${c.row})`, async () => {
        const r = await dial([c.proxy], c.to);
        assert.equal(r.dialFailure, true, JSON.stringify(r));
        assert.deepEqual({ errno: r.errno, row: r.row, hop: r.hop }, { errno: c.errno, row: c.row, hop: 1 }, r.message);
        assert.ok(r.message?.startsWith(`${c.proxy}: `), r.message);
      });
    }
  });

  describe('a proxy that fails itself', () => {
    const fails: readonly (readonly [string, string, { host: string; port: number }, string, string])[] = [
      ['closed proxy port', 'socks5://192.0.2.2:1999', CLOSED, 'ECONNREFUSED', 'socket'],
      ['proxy behind a black hole', 'socks5://203.0.113.9:1080', CLOSED, 'ETIMEDOUT', 'socket'],
      ['proxy behind an unreachable route', 'http://203.0.113.49:3128', CLOSED, 'EHOSTUNREACH', 'socket'],
      ['proxy with no route (IPv6)', 'socks5://[2001:db8:ff::1]:1080', CLOSED, 'ENETUNREACH', 'socket'],
      ['proxy that hangs up (SOCKS5)', `socks5://${HANGUP.addr}:${HANGUP.port}`, CLOSED, 'ECONNREFUSED', 'closed'],
      ['proxy that hangs up (HTTP)', `http://${HANGUP.addr}:${HANGUP.port}`, CLOSED, 'ECONNREFUSED', 'closed'],
      ['silent proxy', `socks5://${SILENT.addr}:${SILENT.port}`, CLOSED, 'ETIMEDOUT', 'timeout'],
      ['microsocks, wrong password', `socks5://${MS_CRED.user}:wrong@${MS_AUTH.addr}:${MS_AUTH.port}`, CLOSED, 'EACCES', 'auth'],
      ['microsocks, no credentials', `socks5://${MS_AUTH.addr}:${MS_AUTH.port}`, CLOSED, 'EACCES', 'auth'],
      ['tinyproxy, wrong password', `http://${TINY_CRED.user}:wrong@${TINY_AUTH.addr}:${TINY_AUTH.port}`, CLOSED, 'EACCES', 'http:401'],
    ];
    for (const [what, proxy, to, errno, row] of fails) {
      it(`${what}: ${errno} (${row})`, async () => {
        const r = await dial([proxy], to);
        assert.equal(r.dialFailure, true, JSON.stringify(r));
        assert.deepEqual({ errno: r.errno, row: r.row, hop: r.hop }, { errno, row, hop: 1 }, r.message);
        assert.ok(!r.message?.includes('wrong'), `no password in: ${r.message}`);
      });
    }
  });

  describe('a chain', () => {
    it('names the first hop that failed: tinyproxy, then microsocks to a closed port', async () => {
      const r = await dial([tiny, ms], CLOSED);
      assert.deepEqual({ errno: r.errno, row: r.row, hop: r.hop }, { errno: 'ECONNREFUSED', row: 'socks5:0x05', hop: 2 }, r.message);
      assert.equal(r.message, `socks5://${MS.addr}:1080 (hop 2 of 2): SOCKS5 reply 0x05 (connection refused)`);
    });
    it('microsocks, then tinyproxy to an unreachable route: hop 2 (tinyproxy) fails', async () => {
      const r = await dial([ms, tiny], UNREACHABLE);
      // microsocks reaches tinyproxy; tinyproxy answers 500 for the destination
      assert.deepEqual({ errno: r.errno, row: r.row, hop: r.hop }, { errno: 'ECONNREFUSED', row: 'http:500', hop: 2 }, r.message);
    });
    it('a second hop the first cannot reach: hop 1 (dante) fails', async () => {
      const r = await dial([d5, 'http://203.0.113.17:3128'], CLOSED);
      assert.deepEqual({ errno: r.errno, row: r.row, hop: r.hop }, { errno: 'EHOSTUNREACH', row: 'socks5:0x04', hop: 1 }, r.message);
      assert.match(String(r.message), /^socks5:\/\/192\.0\.2\.12:1080 \(hop 1 of 2\): /);
    });
    it('still dials through when nothing fails', async () => {
      const r = await dial([tiny, ms], { host: A4, port: 8080 });
      assert.equal(r.ok, true, JSON.stringify(r));
    });
  });
});
