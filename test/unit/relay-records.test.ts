/**
 * Connects of relay rules, which the tracer dials and relays itself: which
 * rules are relay rules (src/routing.ts), the table's dial message
 * (src/tracer/table.ts), and the records made of the tracer's R and O
 * records (src/proxy/connection-record.ts), which must read exactly as the
 * proxy's own for the same connection. The live cases hand the same
 * connection to graft's proxy (the test playing the tracer and the
 * program, as test/unit/proxy-exit.test.ts does) and compare.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import pino from 'pino';
import { Routing } from '../../src/routing.js';
import { parseRule } from '../../src/rules/parse.js';
import { parseToxic } from '../../src/chaos/parse.js';
import { parseProxyUrl } from '../../src/upstream/url.js';
import { PASSTHROUGH, REPLY_ERRNOS } from '../../src/upstream/failure.js';
import { UPSTREAM_ANSWER_LIMIT_MS } from '../../src/upstream/chain.js';
import { encodeTable } from '../../src/tracer/table.js';
import { decodeMessage } from '../../src/tracer/codec.js';
import type { OpenedMessage, RelayedMessage, RelayEnd } from '../../src/tracer/messages.js';
import { RecordDecoder, type RedirectRecord, type TracerRecord } from '../../src/tracer/channel.js';
import { tracerOpened, tracerRelayed } from '../../src/proxy/connection-record.js';
import { startProxy } from '../../src/proxy/server.js';
import { ConnectionLog, type ConnectionRecord, type ProxiedConnection, type StreamRecord } from '../../src/records.js';
import { descriptorShortage } from '../../src/summary.js';
import { seededRandom } from '../../src/chaos/random.js';
import { freePort, holdBlackHole, relayedFrom, sampleRelayed, type BlackHole } from './proxy-fixtures.js';

const routingOf = (rules: readonly string[], extra: { proxy?: boolean; toxic?: string; control?: boolean; mode?: 'auto' | 'proxy' | 'inplace' } = {}) =>
  Routing.create({
    rules: rules.map((r, i) => parseRule(r, `--rule ${i + 1}`)),
    chains: new Map(extra.proxy ? [['', [parseProxyUrl('socks5://192.0.2.10:1080')]]] : []),
    egress: {},
    mode: extra.mode ?? 'auto',
    ...(extra.toxic ? { toxics: [parseToxic(extra.toxic, '--toxic 1')] } : {}),
    ...(extra.control ? { control: {} } : {}),
  });

/** Each rule's text and relay flag. */
async function relayFlags(...args: Parameters<typeof routingOf>): Promise<[string, boolean][]> {
  const r = await routingOf(...args);
  return r.tracerRules().map((m, i) => [r.table.rules[i]!.text, m.relay]);
}

describe('relay rules', () => {
  it('plain graft: its default rule is relayed by the tracer', async () => {
    const r = await routingOf([]);
    const rules = r.tracerRules();
    assert.equal(rules.length, 1);
    assert.equal(rules[0]!.tcp, 'redirect');
    assert.equal(rules[0]!.direct, true);
    assert.equal(rules[0]!.relay, true);
  });

  it('a direct rule of the user is; a refuse or pass rule is not', async () => {
    const flags = await relayFlags(['198.51.100.0/24 direct', '203.0.113.0/24 refuse', '192.0.2.0/24 pass']);
    assert.deepEqual(
      flags.map(([, relay]) => relay),
      [true, false, false, true],
    );
  });

  it('no rule is with a toxic, or with the control API', async () => {
    for (const extra of [{ toxic: 'latency latency=10ms' }, { toxic: 'latency latency=10ms on 203.0.113.0/24' }, { control: true }]) {
      const flags = await relayFlags(['198.51.100.0/24 direct'], extra);
      assert.ok(flags.length > 0);
      for (const [text, relay] of flags) assert.equal(relay, false, `${text} with ${JSON.stringify(extra)}`);
    }
  });

  it('a rule through an upstream proxy is only through one SOCKS5 proxy at an address (socks-relay.test.ts); a direct one beside it is', async () => {
    const r = await routingOf(['198.51.100.0/24 direct', '203.0.113.0/24 proxy'], { proxy: true });
    const rules = r.tracerRules();
    const at = (text: string) => rules[r.table.rules.findIndex((x) => x.text === text)]!;
    assert.equal(at('198.51.100.0/24 direct').relay, true);
    assert.equal(at('203.0.113.0/24 proxy').relay, true);
    assert.equal(at('203.0.113.0/24 proxy').socksIp, '192.0.2.10');
    for (const [i, m] of rules.entries()) if (m.relay) assert.equal(r.dialFor(i).kind, m.socksIp !== undefined ? 'chain' : 'direct');
  });

  it('an in-place rule is not', async () => {
    const auto = await routingOf(['198.51.100.0/24 mark 16']);
    assert.equal(auto.tracerRules()[0]!.tcp, 'inplace');
    assert.equal(auto.tracerRules()[0]!.relay, false);
    for (const m of (await routingOf([], { mode: 'inplace' })).tracerRules()) assert.equal(m.relay, false);
  });

  it('with --mode proxy, a direct rule with egress options is relayed (the tracer sets its socket options)', async () => {
    const r = await routingOf(['198.51.100.0/24 mark 16'], { mode: 'proxy' });
    assert.equal(r.tracerRules()[0]!.tcp, 'redirect');
    assert.equal(r.tracerRules()[0]!.relay, true);
  });
});

/** The table's messages, decoded. */
const tableMessages = (table: Buffer) =>
  table
    .toString()
    .split('\n')
    .filter((l) => l.length)
    .map((l) => decodeMessage(Buffer.from(l)));

/** The dial message's policy: Node's own, from upstream/failure.ts and upstream/chain.ts. */
const DIAL_POLICY = {
  kind: 'dial',
  passthrough: [...PASSTHROUGH].join(','),
  upstreamTimeoutMs: UPSTREAM_ANSWER_LIMIT_MS,
  socksReplies: 'ECONNREFUSED,EACCES,ENETUNREACH,EHOSTUNREACH,ECONNREFUSED,ETIMEDOUT,ECONNREFUSED,ENETUNREACH,ECONNREFUSED',
  socksAuth: REPLY_ERRNOS.auth.errno,
  socksMalformed: REPLY_ERRNOS.malformed.errno,
  socksClosed: REPLY_ERRNOS.closed.errno,
  socksTimeout: REPLY_ERRNOS.timeout.errno,
};

describe("the table's dial message", () => {
  it('one, with the connect timeout, when a rule is relayed', async () => {
    const rules = (await routingOf([])).tracerRules();
    const dials = tableMessages(encodeTable(rules, [], undefined, 1500)).filter((m) => m.kind === 'dial');
    assert.deepEqual(dials, [{ ...DIAL_POLICY, timeoutMs: 1500 }]);
  });

  it('without a timeout when graft has none', async () => {
    const rules = (await routingOf([])).tracerRules();
    const dials = tableMessages(encodeTable(rules, [])).filter((m) => m.kind === 'dial');
    assert.deepEqual(dials, [DIAL_POLICY]);
  });

  it('none when no rule is relayed', async () => {
    const rules = (await routingOf([], { control: true })).tracerRules();
    assert.deepEqual(
      tableMessages(encodeTable(rules, [], { port4: 5300, port6: 5301 }, 1500)).filter((m) => m.kind === 'dial'),
      [],
    );
  });

  it('after the rules and faults, before the DNS listeners', async () => {
    const rules = (await routingOf([])).tracerRules();
    const kinds = tableMessages(encodeTable(rules, [], { port4: 5300, port6: 5301 }, 100)).map((m) => m.kind);
    assert.deepEqual(kinds, ['rule', 'dial', 'dns']);
  });
});

const R = sampleRelayed;

describe("records of the tracer's relayed connections", () => {
  let routing: Routing;
  before(async () => {
    routing = await routingOf(['198.51.100.0/24 direct']);
  });
  const base = (): Omit<ProxiedConnection, 'bytesUp' | 'bytesDown' | 'durationMs'> => ({
    event: 'connection',
    pid: 42,
    tid: 43,
    exe: '/usr/bin/curl',
    dst: '198.51.100.7:443',
    local: '10.0.0.2:40000',
    action: 'proxy',
    ...routing.logContext(0),
  });

  it('the rule that decided is named, as for the proxy', () => {
    assert.equal(tracerRelayed(R('ok'), undefined, routing, undefined).rule, '--rule 1: 198.51.100.0/24 direct');
  });

  const cases: [string, RelayedMessage, () => Partial<ProxiedConnection>][] = [
    ['ok', R('ok', { bytesUp: 2 ** 40, bytesDown: 7 }), () => ({ bytesUp: 2 ** 40, bytesDown: 7 })],
    ['dial refused', R('dial', { error: 'ECONNREFUSED' }), () => ({ error: 'connect: ECONNREFUSED' })],
    ['dial timed out', R('dial', { error: 'ETIMEDOUT' }), () => ({ error: 'connect: ETIMEDOUT' })],
    ['dial: EMFILE', R('dial', { error: 'EMFILE' }), () => ({ error: `${descriptorShortage('EMFILE')}: connect: EMFILE`, lost: 'descriptors' })],
    ['dial: ENFILE', R('dial', { error: 'ENFILE' }), () => ({ error: `${descriptorShortage('ENFILE')}: connect: ENFILE`, lost: 'descriptors' })],
    ['handshake', R('handshake', { error: 'ECONNREFUSED' }), () => ({ error: "the program's connect ended before the destination answered (ECONNREFUSED)" })],
    [
      'handshake: EMFILE',
      R('handshake', { error: 'EMFILE' }),
      () => ({ error: `${descriptorShortage('EMFILE')}: no socket for the handshake with the program`, lost: 'descriptors' }),
    ],
    ['program', R('program', { error: 'ECONNRESET', bytesUp: 5, bytesDown: 3 }), () => ({ bytesUp: 5, bytesDown: 3, error: 'program: ECONNRESET' })],
    ['upstream', R('upstream', { error: 'EPIPE', bytesUp: 5 }), () => ({ bytesUp: 5, error: 'upstream: EPIPE' })],
    ['exit-dialing', R('exit-dialing', { atExit: true }), () => ({ error: 'the program exited while its destination was being dialed', atExit: 'pending' })],
    ['exit-dialing, at_exit 0', R('exit-dialing'), () => ({ error: 'the program exited while its destination was being dialed', atExit: 'pending' })],
    [
      'exit-cut',
      R('exit-cut', { atExit: true, bytesUp: 9 }),
      () => ({ bytesUp: 9, error: 'cut at exit with bytes still queued for the destination', atExit: 'open' }),
    ],
    ['ok at exit', R('ok', { atExit: true, bytesUp: 1, bytesDown: 1 }), () => ({ bytesUp: 1, bytesDown: 1, atExit: 'open' })],
    ['upstream at exit', R('upstream', { atExit: true, error: 'ECONNRESET' }), () => ({ error: 'upstream: ECONNRESET', atExit: 'open' })],
  ];
  for (const [what, msg, want] of cases) {
    it(`end ${what}`, () => {
      const w = want();
      // the proxy's record keeps its fields in one order: compared as JSON, order too
      const expected: ProxiedConnection = {
        ...base(),
        bytesUp: w.bytesUp ?? 0,
        bytesDown: w.bytesDown ?? 0,
        durationMs: 12,
        ...(w.error !== undefined ? { error: w.error } : {}),
        ...(w.atExit !== undefined ? { atExit: w.atExit } : {}),
        ...(w.lost !== undefined ? { lost: w.lost } : {}),
      };
      const got = tracerRelayed(msg, undefined, routing, undefined);
      assert.deepEqual(got, expected);
      assert.equal(JSON.stringify(got), JSON.stringify(expected));
    });
  }

  it('the name graft answered the destination for', () => {
    const got = tracerRelayed(R('ok'), 'api.example', routing, undefined);
    assert.equal(got.name, 'api.example');
    assert.deepEqual(Object.keys(got).slice(0, 7), ['event', 'pid', 'tid', 'exe', 'dst', 'name', 'local']);
  });

  it('an opening as the proxy sends it', () => {
    const o: OpenedMessage = { kind: 'opened', pid: 42, dstIp: '2001:db8::7', dstPort: 443, peerIp: '2001:db8::2', peerPort: 40000, exe: '/x' };
    assert.deepEqual(tracerOpened(o, undefined), {
      event: 'open',
      action: 'proxy',
      pid: 42,
      exe: '/x',
      dst: '[2001:db8::7]:443',
      local: '[2001:db8::2]:40000',
    });
    assert.deepEqual(tracerOpened(o, 'a.example'), {
      event: 'open',
      action: 'proxy',
      pid: 42,
      exe: '/x',
      dst: '[2001:db8::7]:443',
      name: 'a.example',
      local: '[2001:db8::2]:40000',
    });
  });

  it('R and O lines decode into these (byte counts beyond 32 bits)', () => {
    const got: TracerRecord[] = [];
    const d = new RecordDecoder(
      (r) => got.push(r),
      (e) => assert.fail(e),
    );
    d.push(
      Buffer.from(
        'O 42 ::ffff:198.51.100.7 443 10.0.0.2 40000 /usr/bin/curl\nR 42 43 198.51.100.7 443 10.0.0.2 40000 0 5000000000 7 12 ok - - 0 /usr/bin/curl\n',
      ),
    );
    assert.equal(got.length, 2);
    const o = got[0]!;
    const r = got[1]!;
    if (o.kind !== 'opened' || r.kind !== 'relayed') return assert.fail(`${o.kind} ${r.kind}`);
    assert.deepEqual(tracerOpened(o, undefined).dst, '198.51.100.7:443');
    assert.deepEqual(tracerRelayed(r, undefined, routing, undefined), { ...base(), bytesUp: 5_000_000_000, bytesDown: 7, durationMs: 12 });
  });
});

describe("the tracer's records and graft's proxy's agree on the same connection", () => {
  let destination: net.Server;
  let dstPort: number;
  let hole: BlackHole;
  let holePort: number;
  let routing: Routing;
  before(async () => {
    routing = await routingOf([]);
    destination = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {});
      s.on('data', () => {});
      s.once('end', () => s.end('pong!'));
    });
    destination.listen(0, '127.0.0.1');
    await once(destination, 'listening');
    dstPort = (destination.address() as net.AddressInfo).port;
    hole = holdBlackHole();
    holePort = hole.port;
  });
  after(() => {
    destination.close();
    hole.close();
  });

  /** Hands `rec` to graft's proxy; resolves with its opening (if any) and record. */
  async function viaProxy(rec: RedirectRecord): Promise<{ stream: StreamRecord[]; record: ConnectionRecord }> {
    const log = new ConnectionLog(pino({ level: 'silent' }));
    const stream: StreamRecord[] = [];
    log.follow((r) => stream.push(r));
    const recorded = new Promise<ConnectionRecord>((resolve) => log.onRecord(resolve));
    const proxy = startProxy({
      routing,
      toxics: [],
      random: seededRandom(1),
      connectTimeoutMs: undefined,
      logger: pino({ level: 'silent' }),
      connections: log,
      answer: () => {},
    });
    proxy.expect(rec);
    const record = await recorded;
    await proxy.close();
    return { stream, record };
  }

  const redirect = (peerPort: number, port: number): RedirectRecord => ({
    kind: 'redirect',
    pid: 7,
    tid: 8,
    id: 1,
    dstIp: '127.0.0.1',
    dstPort: port,
    peerIp: '127.0.0.1',
    peerPort,
    holePort,
    rule: 0,
    delayMs: 0,
    exe: '/test',
  });
  const relayedLike = (rec: RedirectRecord, got: ProxiedConnection, end: RelayEnd, error?: string): RelayedMessage =>
    relayedFrom(rec, got, end, error !== undefined ? { error } : {});

  it('a dial the destination refused', async () => {
    const rec = redirect(await freePort(), await freePort());
    const { record } = await viaProxy(rec);
    const node = record as ProxiedConnection;
    assert.equal(node.error, 'connect: ECONNREFUSED');
    assert.deepEqual(tracerRelayed(relayedLike(rec, node, 'dial', 'ECONNREFUSED'), undefined, routing, undefined), node);
  });

  it('a handshake the program no longer waited for', async () => {
    // nobody listens at the program's port: the handshake is refused until graft gives up (seconds)
    const rec = redirect(await freePort(), dstPort);
    const { record, stream } = await viaProxy(rec);
    const node = record as ProxiedConnection;
    assert.equal(stream.filter((r) => r.event === 'open').length, 0);
    assert.deepEqual(tracerRelayed(relayedLike(rec, node, 'handshake', 'ECONNREFUSED'), undefined, routing, undefined), node);
  });

  it('a connection relayed to its end, and its opening', async () => {
    const server = net.createServer({ allowHalfOpen: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const peerPort = (server.address() as net.AddressInfo).port;
    server.once('connection', (s: net.Socket) => {
      s.on('data', () => {});
      s.end('ping');
    });
    const rec = redirect(peerPort, dstPort);
    const { record, stream } = await viaProxy(rec);
    server.close();
    const node = record as ProxiedConnection;
    assert.equal(node.error, undefined);
    assert.deepEqual([node.bytesUp, node.bytesDown], [4, 5]);
    assert.deepEqual(tracerRelayed(relayedLike(rec, node, 'ok'), undefined, routing, undefined), node);
    const opened: OpenedMessage = {
      kind: 'opened',
      pid: rec.pid,
      dstIp: rec.dstIp,
      dstPort: rec.dstPort,
      peerIp: rec.peerIp,
      peerPort: rec.peerPort,
      exe: rec.exe,
    };
    assert.deepEqual(stream[0], tracerOpened(opened, undefined));
  });
});
