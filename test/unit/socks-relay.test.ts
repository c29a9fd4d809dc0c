/**
 * Rules through one SOCKS5 proxy that the tracer dials and relays itself:
 * which rules are (src/routing.ts, with the proxy's fields), and the
 * records made of their R records (src/proxy/connection-record.ts), whose
 * words must be exactly those graft's own proxy writes for the same end of
 * the same one-hop chain. Each end is brought about by a fake SOCKS5 proxy
 * on loopback (fake-socks.ts): once through dialThroughChain, once through
 * graft's proxy (the test playing the tracer and the program), and the R
 * record's record is compared with both.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { Routing } from '../../src/routing.js';
import { parseRule } from '../../src/rules/parse.js';
import { parseToxic } from '../../src/chaos/parse.js';
import { parseProxyUrl, maskUrl, type UpstreamProxy } from '../../src/upstream/url.js';
import { dialThroughChain, UPSTREAM_ANSWER_LIMIT_MS } from '../../src/upstream/chain.js';
import { DialFailure } from '../../src/upstream/failure.js';
import type { RelayedMessage, RelayEnd, RuleMessage } from '../../src/tracer/messages.js';
import type { RedirectRecord } from '../../src/tracer/channel.js';
import { tracerRelayed } from '../../src/proxy/connection-record.js';
import { startProxy } from '../../src/proxy/server.js';
import { ConnectionLog, type ConnectionRecord, type ProxiedConnection } from '../../src/records.js';
import { descriptorShortage } from '../../src/summary.js';
import { seededRandom } from '../../src/chaos/random.js';
import { freePort, holdBlackHole, relayedFrom, sampleRelayed, type BlackHole } from './proxy-fixtures.js';
import { closing, fakeSocks5, malformed, noMethod, passwordRefused, replying, resetting, silent, type Answer } from './fake-socks.js';

const routingWith = (chain: readonly string[], extra: { rules?: readonly string[]; toxic?: string; control?: boolean } = {}) =>
  Routing.create({
    rules: (extra.rules ?? []).map((r, i) => parseRule(r, `--rule ${i + 1}`)),
    chains: new Map([['', chain.map((u) => parseProxyUrl(u))]]),
    egress: {},
    mode: 'auto',
    ...(extra.toxic ? { toxics: [parseToxic(extra.toxic, '--toxic 1')] } : {}),
    ...(extra.control ? { control: {} } : {}),
  });

/** The index of the rule that sends connects through the default chain (graft's default rule). */
const proxyRule = (r: Routing): number => r.table.rules.findIndex((_, i) => r.dialFor(i).kind === 'chain');

/** That rule's message to the tracer. */
async function proxyRuleMessage(...args: Parameters<typeof routingWith>): Promise<RuleMessage> {
  const r = await routingWith(...args);
  const i = proxyRule(r);
  assert.ok(i >= 0);
  return r.tracerRules()[i]!;
}

describe('relay rules through one SOCKS5 proxy', () => {
  it('--proxy socks5://127.0.0.1:1080: relayed, with its address', async () => {
    const m = await proxyRuleMessage(['socks5://127.0.0.1:1080']);
    assert.equal(m.tcp, 'redirect');
    assert.equal(m.direct, false);
    assert.equal(m.relay, true);
    assert.equal(m.socksIp, '127.0.0.1');
    assert.equal(m.socksPort, 1080);
    assert.equal(m.socksUser, undefined);
    assert.equal(m.socksPass, undefined);
  });

  it('with a user and password: relayed, with both (percent-decoded)', async () => {
    const m = await proxyRuleMessage(['socks5://al%40ice:p%3Ass%20w@[2001:db8::1]:1081']);
    assert.equal(m.relay, true);
    assert.equal(m.direct, false);
    assert.deepEqual([m.socksIp, m.socksPort, m.socksUser, m.socksPass], ['2001:db8::1', 1081, 'al@ice', 'p:ss w']);
  });

  it('credentials of 255 bytes are; of 256 bytes, or an empty password, or a NUL, are not', async () => {
    const u255 = 'é'.repeat(127) + 'x'; // 255 bytes of UTF-8
    assert.equal((await proxyRuleMessage([`socks5://${encodeURIComponent(u255)}:${'p'.repeat(255)}@127.0.0.1:1080`])).relay, true);
    for (const url of [
      `socks5://${encodeURIComponent(u255 + 'x')}:pw@127.0.0.1:1080`,
      `socks5://user:${'p'.repeat(256)}@127.0.0.1:1080`,
      'socks5://user@127.0.0.1:1080',
      'socks5://us%00er:pw@127.0.0.1:1080',
    ]) {
      const m = await proxyRuleMessage([url]);
      assert.equal(m.relay, false, url);
      assert.equal(m.socksIp, undefined, url);
      assert.equal(m.socksUser, undefined, url);
    }
  });

  for (const [what, chain] of [
    ['a proxy by host name', ['socks5://localhost:1080']],
    ['an HTTP proxy', ['http://127.0.0.1:3128']],
    ['a SOCKS4 proxy', ['socks4://127.0.0.1:1080']],
    ['a SOCKS4a proxy', ['socks4a://127.0.0.1:1080']],
    ['a chain of two SOCKS5 proxies', ['socks5://127.0.0.1:1080', 'socks5://127.0.0.2:1080']],
  ] as const) {
    it(`not through ${what}`, async () => {
      const m = await proxyRuleMessage(chain);
      assert.equal(m.tcp, 'redirect');
      assert.equal(m.direct, false);
      assert.equal(m.relay, false);
      assert.equal(m.socksIp, undefined);
      assert.equal(m.socksPort, undefined);
    });
  }

  it('not with a toxic, or with the control API', async () => {
    for (const extra of [{ toxic: 'latency latency=10ms' }, { toxic: 'latency latency=10ms on 203.0.113.0/24' }, { control: true }]) {
      const m = await proxyRuleMessage(['socks5://127.0.0.1:1080'], extra);
      assert.equal(m.relay, false, JSON.stringify(extra));
      assert.equal(m.socksIp, undefined, JSON.stringify(extra));
    }
  });

  it('a proxy rule of the user is too; the proxy itself is passed', async () => {
    const r = await routingWith(['socks5://192.0.2.10:1080'], { rules: ['198.51.100.0/24 direct', '203.0.113.0/24 proxy'] });
    const rules = r.tracerRules();
    const at = (text: string) => rules[r.table.rules.findIndex((x) => x.text === text)]!;
    assert.deepEqual([at('198.51.100.0/24 direct').relay, at('198.51.100.0/24 direct').socksIp], [true, undefined]);
    assert.deepEqual([at('203.0.113.0/24 proxy').relay, at('203.0.113.0/24 proxy').socksIp], [true, '192.0.2.10']);
    assert.equal(at('192.0.2.10:1080 pass (the upstream proxy itself)').relay, false);
  });
});

/** How dialThroughChain fails through the one-hop chain `hop` (it must). */
async function chainFailure(hop: UpstreamProxy, timeoutMs: number): Promise<DialFailure> {
  try {
    const s = await dialThroughChain({
      chain: [hop],
      destination: { host: '198.51.100.7', port: 443 },
      socketOptions: [],
      localAddressFor: () => undefined,
      timeoutMs,
    });
    s.destroy();
  } catch (err) {
    assert.ok(err instanceof DialFailure);
    return err;
  }
  assert.fail('the dial through the fake proxy succeeded');
}

describe("records of SOCKS5 connections the tracer relays read as those of graft's proxy", () => {
  let hole: BlackHole;
  before(() => {
    hole = holdBlackHole();
  });
  after(() => hole.close());

  /** Hands a connect under `rule` to graft's proxy; resolves with its record. */
  async function viaProxy(routing: Routing, rule: number, connectTimeoutMs: number | undefined): Promise<{ rec: RedirectRecord; record: ProxiedConnection }> {
    const log = new ConnectionLog(pino({ level: 'silent' }));
    const recorded = new Promise<ConnectionRecord>((resolve) => log.onRecord(resolve));
    const proxy = startProxy({
      routing,
      toxics: [],
      random: seededRandom(1),
      connectTimeoutMs,
      logger: pino({ level: 'silent' }),
      connections: log,
      answer: () => {},
    });
    const rec: RedirectRecord = {
      kind: 'redirect',
      pid: 7,
      tid: 8,
      id: 1,
      dstIp: '198.51.100.7',
      dstPort: 443,
      peerIp: '127.0.0.1',
      peerPort: await freePort(),
      holePort: hole.port,
      rule,
      delayMs: 0,
      exe: '/test',
    };
    proxy.expect(rec);
    const record = await recorded;
    await proxy.close();
    return { rec, record: record as ProxiedConnection };
  }

  interface Case {
    readonly what: string;
    /** the fake's answers; absent: nothing listens at the proxy's port */
    readonly answer?: Answer;
    readonly auth?: boolean;
    readonly end: RelayEnd;
    readonly more?: Partial<RelayedMessage>;
    /** graft's --connect-timeout (the chain's deadline) */
    readonly timeoutMs?: number;
    /** the text, as the docs and the integration tests expect it (after the proxy's URL) */
    readonly text: RegExp;
  }
  const cases: Case[] = [
    { what: 'a refused connect to the proxy', end: 'dial', more: { error: 'ECONNREFUSED' }, text: /^: cannot connect to the proxy: ECONNREFUSED$/ },
    { what: 'reply 0x05', answer: replying(0x05), end: 'socks-reply', more: { socksCode: 0x05 }, text: /^: SOCKS5 reply 0x05 \(connection refused\)$/ },
    {
      what: 'reply 0x02',
      answer: replying(0x02),
      end: 'socks-reply',
      more: { socksCode: 0x02 },
      text: /^: SOCKS5 reply 0x02 \(connection not allowed by ruleset\)$/,
    },
    { what: 'reply 0x2A (no such code)', answer: replying(0x2a), end: 'socks-reply', more: { socksCode: 0x2a }, text: /^: SOCKS5 reply 0x2A$/ },
    { what: 'no acceptable method (0xFF)', answer: noMethod, end: 'socks-auth', text: /^: SOCKS5 authentication failed$/ },
    { what: 'no acceptable method, with credentials', answer: noMethod, auth: true, end: 'socks-auth', text: /^: SOCKS5 authentication failed$/ },
    { what: 'the user/password refused', answer: passwordRefused, auth: true, end: 'socks-auth', text: /^: SOCKS5 authentication failed$/ },
    { what: 'malformed bytes', answer: malformed, end: 'socks-malformed', text: /^: not a SOCKS5 reply$/ },
    { what: 'a close during the handshake', answer: closing, end: 'socks-closed', text: /^: closed the connection during the SOCKS handshake$/ },
    { what: 'a reset during the handshake', answer: resetting, end: 'socks-closed', text: /^: closed the connection during the SOCKS handshake$/ },
    {
      what: 'a silent proxy, --connect-timeout 300ms',
      answer: silent,
      end: 'socks-timeout',
      timeoutMs: 300,
      text: /^: no answer to the handshake within the connect timeout \(300 ms\)$/,
    },
  ];

  for (const c of cases) {
    it(c.what, async () => {
      const fake = c.answer ? await fakeSocks5(c.answer) : undefined;
      try {
        const port = fake?.port ?? (await freePort());
        const url = `socks5://${c.auth ? 'someone:Secret-1@' : ''}127.0.0.1:${port}`;
        const hop = parseProxyUrl(url);
        const routing = await routingWith([url]);
        const rule = proxyRule(routing);
        assert.equal(routing.tracerRules()[rule]!.relay, true);

        // graft's proxy's words for it, from dialThroughChain
        const failure = await chainFailure(hop, c.timeoutMs ?? 5000);
        const text = maskUrl(failure.message);
        assert.ok(text.startsWith(`${hop.display}: `), text);
        assert.match(text.slice(hop.display.length), c.text);
        assert.ok(!text.includes('Secret-1'));

        // the tracer's R record for the same end
        const { rec, record } = await viaProxy(routing, rule, c.timeoutMs);
        assert.equal(record.error, text);
        const got = tracerRelayed(relayedFrom(rec, record, c.end, c.more ?? {}), undefined, routing, c.timeoutMs);
        assert.equal(got.error, text);
        assert.equal(got.upstream, hop.display);
        // the whole record, field order included
        assert.deepEqual(got, record);
        assert.equal(JSON.stringify(got), JSON.stringify(record));
      } finally {
        await fake?.close();
      }
    });
  }

  it('without --connect-timeout, the timeout names the upstream deadline', async () => {
    const routing = await routingWith(['socks5://127.0.0.1:1080']);
    const rule = proxyRule(routing);
    const rec = sampleRelayed('ok', { rule });
    assert.equal(
      tracerRelayed({ ...rec, end: 'socks-timeout' }, undefined, routing, undefined).error,
      `socks5://127.0.0.1:1080: no answer to the handshake within the connect timeout (${UPSTREAM_ANSWER_LIMIT_MS} ms)`,
    );
    assert.equal(
      tracerRelayed({ ...rec, end: 'socks-timeout' }, undefined, routing, 2500).error,
      'socks5://127.0.0.1:1080: no answer to the handshake within the connect timeout (2500 ms)',
    );
  });

  it('a connect to the proxy that failed for EMFILE or ENFILE: graft lost it', async () => {
    const routing = await routingWith(['socks5://u:pw@127.0.0.1:1080']);
    const rule = proxyRule(routing);
    for (const code of ['EMFILE', 'ENFILE']) {
      const got = tracerRelayed(sampleRelayed('dial', { rule, error: code }), undefined, routing, undefined);
      assert.equal(got.error, `${descriptorShortage(code)}: socks5://u:***@127.0.0.1:1080: cannot connect to the proxy: ${code}`);
      assert.equal(got.lost, 'descriptors');
      assert.equal(got.upstream, 'socks5://u:***@127.0.0.1:1080');
    }
  });

  it("other ends read as a direct rule's", async () => {
    const routing = await routingWith(['socks5://127.0.0.1:1080']);
    const rule = proxyRule(routing);
    const error = (end: RelayEnd, e?: string) => tracerRelayed(sampleRelayed(end, { rule, ...(e ? { error: e } : {}) }), undefined, routing, undefined).error;
    assert.equal(error('ok'), undefined);
    assert.equal(error('handshake', 'ECONNREFUSED'), "the program's connect ended before the destination answered (ECONNREFUSED)");
    assert.equal(error('upstream', 'ECONNRESET'), 'upstream: ECONNRESET');
    assert.equal(error('exit-dialing'), 'the program exited while its destination was being dialed');
  });
});
