/**
 * The pure parts of graft's DNS: host name patterns, fake addresses, the
 * wire format of the replies graft writes, DNS faults, and how the rules
 * decide a name. The server itself, with real resolvers, is
 * test/dns-names.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import { canonicalName, nameMatches, parseNamePattern } from '../../src/dns/pattern.js';
import { FakeAddresses } from '../../src/dns/fake.js';
import { buildReply, frame, readQuestion, reverseAddress, truncated, unframe } from '../../src/dns/wire.js';
import { dnsFaultChooser, parseDnsFault } from '../../src/chaos/dns-faults.js';
import { parseRule } from '../../src/rules/parse.js';
import { Routing } from '../../src/routing.js';
import { parseProxyUrl } from '../../src/upstream/url.js';
import { UsageError } from '../../src/errors.js';
import { BoundedMap } from '../../src/dns/bounded.js';
import { runCollect } from '../lab/world.js';
import { join } from 'node:path';
import { repoRoot } from '../lab/paths.js';

/** A decoded reply as these tests read it (dns-packet's types leave out rcode and the answers' fields). */
interface Reply {
  id?: number;
  type?: string;
  rcode?: string;
  flag_rd?: boolean;
  flag_ra?: boolean;
  flag_tc?: boolean;
  questions?: unknown[];
  answers?: { type: string; name: string; ttl?: number; data?: unknown }[];
  additionals?: { type: string }[];
}
const decode = (b: Buffer): Reply => dnsPacket.decode(b) as unknown as Reply;

const query = (name: string, type: dnsPacket.RecordType, edns = false): Buffer =>
  dnsPacket.encode({
    type: 'query',
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    ...(edns
      ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] }
      : {}),
  });

describe('host name patterns', () => {
  it('an exact name matches itself only, in any case, with or without the root dot', () => {
    const p = parseNamePattern('Pub.Example')!;
    assert.ok(nameMatches(p, canonicalName('pub.example.')!));
    assert.ok(nameMatches(p, canonicalName('PUB.EXAMPLE')!));
    assert.ok(!nameMatches(p, 'www.pub.example'));
  });
  it('*.corp.example matches subdomains at any depth, not the apex', () => {
    const p = parseNamePattern('*.corp.example')!;
    assert.ok(nameMatches(p, 'a.corp.example'));
    assert.ok(nameMatches(p, 'a.b.c.corp.example'));
    assert.ok(!nameMatches(p, 'corp.example'));
    assert.ok(!nameMatches(p, 'notcorp.example'));
  });
  it('what is not a host name is refused', () => {
    for (const bad of ['10.0.0.300', '-a.example', 'a..example', '*.', '*', 'a b', 'x'.repeat(64) + '.example', 'ex_ample.'.repeat(40)]) {
      assert.equal(parseNamePattern(bad), undefined, bad);
    }
    assert.deepEqual(parseNamePattern('_sip._tcp.example'), { name: '_sip._tcp.example', wildcard: false });
  });
});

describe('fake addresses', () => {
  it('one slot per name, the same offset in both ranges, the name back from either address', () => {
    const f = new FakeAddresses({ v4: '198.18.0.0/15', v6: 'fd67:7261:6674::/64' });
    const a = f.addressesFor('a.corp.example')!;
    const b = f.addressesFor('b.corp.example')!;
    assert.deepEqual(a, { v4: '198.18.0.1', v6: 'fd67:7261:6674:0:0:0:0:1' });
    assert.deepEqual(b, { v4: '198.18.0.2', v6: 'fd67:7261:6674:0:0:0:0:2' });
    assert.deepEqual(f.addressesFor('a.corp.example'), a, 'asked again: the same');
    assert.equal(f.nameOf('198.18.0.2'), 'b.corp.example');
    assert.equal(f.nameOf('::ffff:198.18.0.1'), 'a.corp.example');
    assert.equal(f.nameOf('fd67:7261:6674::2'), 'b.corp.example');
    assert.equal(f.nameOf('198.18.0.3'), undefined, 'never given out');
    assert.equal(f.nameOf('fd67:7261:6674:0:1::2'), undefined, 'in the /64, but not an address graft writes');
    assert.equal(f.nameOf('192.0.2.1'), undefined);
  });
  it('bounded: the name used least recently gives its slot up once unused two minutes, and its old address no longer names it', () => {
    let now = 0;
    const f = new FakeAddresses({ v4: '198.18.0.0/29', v6: 'fd00::/64' }, () => now);
    assert.equal(f.slots, 6, 'a /29 less its network and broadcast addresses');
    const first = f.addressesFor('n0.example')!;
    for (let i = 1; i < 6; i++) f.addressesFor(`n${i}.example`);
    now = 60_000;
    f.nameOf(first.v4); // a use: n0 keeps its slot
    assert.equal(f.addressesFor('n6.example'), undefined, 'every slot used within two minutes: none is given up');
    now = 125_000;
    const seventh = f.addressesFor('n6.example')!;
    assert.equal(f.size, 6);
    assert.equal(seventh.v4, '198.18.0.2', "n1's slot, the least recently used");
    assert.equal(f.nameOf('198.18.0.2'), 'n6.example');
    assert.equal(f.nameOf(first.v4), 'n0.example');
  });
  it('10,000 names in 4,096 slots: memory stays at the slots', () => {
    let now = 0;
    const f = new FakeAddresses({ v4: '198.18.0.0/15', v6: 'fd00::/64', slots: 4096 }, () => (now += 1000));
    for (let i = 0; i < 10_000; i++) f.addressesFor(`host${i}.example`);
    assert.equal(f.size, 4096);
    assert.equal(f.nameOf(f.addressesFor('host9999.example')!.v4), 'host9999.example');
  });
  it('ranges that cannot hold fakes are refused with one line', () => {
    assert.throws(() => new FakeAddresses({ v4: '198.18.0.0/31', v6: 'fd00::/64' }), UsageError);
    assert.throws(() => new FakeAddresses({ v4: '198.18.0.0/15', v6: 'fd00::/40' }), /prefix from \/64 to \/96/);
    assert.throws(() => new FakeAddresses({ v4: '198.18.0.0/15', v6: 'fd00::1:0/112' }), /prefix from \/64 to \/96/);
    assert.throws(() => new FakeAddresses({ v4: 'fd00::/64', v6: 'fd00::/64' }), /not an IPv4 range/);
  });
});

describe('the DNS wire format', () => {
  it('reads a question and answers it with the id, the question and the records', () => {
    const q = readQuestion(query('A.Corp.Example', 'A'))!;
    assert.equal(q.id, 4242);
    assert.equal(q.name, 'a.corp.example');
    assert.equal(q.type, 'A');
    assert.equal(q.udpSize, 512);
    const reply = decode(buildReply(q, 'NOERROR', [{ type: 'A', address: '198.18.0.1' }], 60));
    assert.equal(reply.id, 4242);
    assert.equal(reply.type, 'response');
    assert.equal(reply.rcode, 'NOERROR');
    assert.ok(reply.flag_rd && reply.flag_ra);
    assert.deepEqual(reply.questions, [{ name: 'A.Corp.Example', type: 'A', class: 'IN' }]);
    assert.deepEqual(
      reply.answers?.map((a) => [a.type, a.name, a.ttl, a.data]),
      [['A', 'A.Corp.Example', 60, '198.18.0.1']],
    );
  });
  it('keeps EDNS when asked with it, and knows its size', () => {
    const q = readQuestion(query('x.example', 'AAAA', true))!;
    assert.equal(q.udpSize, 1232);
    const reply = decode(buildReply(q, 'NXDOMAIN'));
    assert.equal(reply.rcode, 'NXDOMAIN');
    assert.ok(reply.additionals?.some((a) => a.type === 'OPT'));
  });
  it('a truncated reply has TC and no records', () => {
    const q = readQuestion(query('x.example', 'A'))!;
    const full = buildReply(
      q,
      'NOERROR',
      Array.from({ length: 60 }, (_, i) => ({ type: 'A' as const, address: `192.0.2.${i}` })),
    );
    const t = decode(truncated(q, full));
    assert.ok(t.flag_tc);
    assert.equal(t.answers?.length, 0);
    assert.equal(t.id, 4242);
  });
  it('refuses responses and several questions as questions', () => {
    assert.equal(readQuestion(buildReply(readQuestion(query('x.example', 'A'))!, 'NOERROR')), undefined);
    assert.equal(readQuestion(Buffer.from('garbage')), undefined);
  });
  it('reverse names of both families', () => {
    assert.equal(reverseAddress('7.0.18.198.in-addr.arpa'), '198.18.0.7');
    assert.equal(reverseAddress('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.7.6.6.1.6.2.7.7.6.d.f.ip6.arpa'), 'fd67:7261:6674:0000:0000:0000:0000:0001');
    assert.equal(reverseAddress('example.com'), undefined);
  });
  it('TCP framing: whole messages, the rest kept for later', () => {
    const a = frame(Buffer.from('abc'));
    const b = frame(Buffer.from('defg'));
    const joined = Buffer.concat([a, b.subarray(0, 3)]);
    const { messages, rest } = unframe(joined);
    assert.deepEqual(messages.map(String), ['abc']);
    assert.deepEqual(unframe(Buffer.concat([rest, b.subarray(3)])).messages.map(String), ['defg']);
  });
});

describe('DNS faults', () => {
  it('parse, with selectors, and refuse what is not a name', () => {
    const f = parseDnsFault('servfail first=2 on *.corp.example', '--fault 1');
    assert.equal(f.kind, 'servfail');
    assert.deepEqual(f.select, { kind: 'first', n: 2 });
    assert.throws(() => parseDnsFault('nxdomain on 10.0.0.0/8', 'x'), /matches a host name/);
    assert.throws(() => parseDnsFault('dnsdelay on x.example', 'x'), /dnsdelay needs time=/);
    assert.throws(() => parseDnsFault('noanswer delay=1s', 'x'), /'delay' is not a setting of noanswer/);
  });
  it('the first fault whose name matches and whose selector picks the question applies', () => {
    const choose = dnsFaultChooser([parseDnsFault('servfail first=1 on a.example', 'x'), parseDnsFault('nxdomain on *.example', 'y')], () => 0.5);
    assert.equal(choose('a.example')?.kind, 'servfail');
    assert.equal(choose('a.example')?.kind, 'nxdomain', 'first=1 used up: the next fault that matches');
    assert.equal(choose('b.example')?.kind, 'nxdomain');
    assert.equal(choose('example'), undefined, 'the apex is not below itself');
    assert.equal(choose('other.test'), undefined);
  });
});

describe('rules decide names', () => {
  const routing = (rules: string[], proxy = false, search: string[] = []) =>
    Routing.create({
      rules: rules.map((r, i) => parseRule(r, `--rule ${i + 1}`)),
      chains: new Map(proxy ? [['', [parseProxyUrl('socks5://192.0.2.10:1080')]]] : []),
      egress: {},
      mode: 'auto',
      dns: { faults: [] },
      search,
    });
  it("names under resolv.conf's search domains get their real answer unless a name rule names them; refused names get a fake", async () => {
    const r = await routing(['*.corp.example proxy', 'ads.example refuse'], true, ['svc.cluster.local', 'corp.example']);
    assert.equal(r.answerFor('api.github.com.svc.cluster.local').kind, 'real', 'a search expansion: as natively, the server says');
    assert.equal(r.answerFor('api.github.com').kind, 'fake');
    assert.equal(r.answerFor('a.corp.example').kind, 'fake', 'a name rule names it');
    assert.equal(r.answerFor('ads.example').kind, 'fake', 'refused anyway: its question leaves nothing');
  });
  it('remote by default when the default route is a proxy or a rule names a host; off otherwise', async () => {
    assert.equal((await routing([], true)).dns.mode, 'remote');
    assert.equal((await routing(['10.0.0.0/8 direct'], true)).dns.mode, 'local', 'a rule by address decides by real addresses');
    assert.equal((await routing(['10.0.0.0/8 proxy'], true)).dns.mode, 'remote');
    assert.equal((await routing(['*.corp.example interface lo'])).dns.mode, 'remote');
    assert.equal((await routing(['10.0.0.0/8 direct'])).dns.mode, 'off');
  });
  it('a name that may go through a proxy gets a fake; one that goes direct, the real answer and its name rules', async () => {
    const r = await routing(['*.corp.example proxy', 'pub.example direct', 'port 22 proxy', 'all direct'], true);
    assert.equal(r.answerFor('a.corp.example').kind, 'fake');
    assert.equal(r.answerFor('corp.example').kind, 'fake', 'the apex is not under the wildcard, but its port 22 goes through the proxy');
    const noPort = await routing(['*.corp.example proxy', 'pub.example direct', 'all direct'], true);
    assert.deepEqual(noPort.answerFor('corp.example'), { kind: 'real', rules: [], egress: {} });
    const pub = noPort.answerFor('pub.example');
    assert.equal(pub.kind, 'real');
    assert.deepEqual(pub.kind === 'real' && pub.rules.map((i) => noPort.table.rules[i]!.text), ['pub.example direct']);
  });
  it('a fake address goes as the rule for its name and port says', async () => {
    const r = await routing(['*.corp.example:443 proxy', '*.corp.example refuse EACCES', '10.0.0.0/8 pass'], true);
    assert.equal(r.decideByName('a.corp.example', 443)?.rule.text, '*.corp.example:443 proxy');
    assert.equal(r.decideByName('a.corp.example', 80)?.rule.text, '*.corp.example refuse EACCES');
    assert.equal(r.decideByName('other.example', 80)?.rule.origin, 'default', 'rules by address are passed over');
  });
  it('a connect to an address answered for a name matches the name rule in its place', async () => {
    const r = await routing(['10.0.0.0/8 pass', 'pub.example refuse']);
    assert.equal(r.decide('192.0.2.7', 80, 'pub.example')?.rule.text, 'pub.example refuse');
    assert.equal(r.decide('10.1.2.3', 80, 'pub.example')?.rule.text, '10.0.0.0/8 pass', 'an address rule before it wins');
    assert.equal(r.decide('192.0.2.7', 80)?.rule.origin, 'default');
  });
});

describe('DNS faults as rules', () => {
  it("'NAME nxdomain' is the fault on that name; a bad one is one line, exit 2", async () => {
    const graft = join(repoRoot, 'bin/graft');
    const env = { ...process.env, GRAFT_CONFIG: '/dev/null' };
    // answered by graft itself: the question never reaches a server
    const gai = ['python3', '-c', "import socket\ntry:\n  socket.getaddrinfo('bad.example',80)\nexcept socket.gaierror as e:\n  print(e.errno)"];
    const r = await runCollect(graft, ['--rule', 'bad.example nxdomain', '--', ...gai], { env }, undefined);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '-2\n');
    const bad = await runCollect(graft, ['--rule', 'bad.example dnsdelay', '--', 'true'], { env }, undefined);
    assert.equal(bad.code, 2);
    assert.equal(bad.stderr, "graft: --rule 1: rule 'bad.example dnsdelay': 'dnsdelay' takes one duration (e.g. 'dnsdelay 2s')\n");
  });
});

describe('bounded memory', () => {
  it('a BoundedMap forgets the entry set least recently', () => {
    const m = new BoundedMap<string, number>(2);
    m.set('a', 1);
    m.set('b', 2);
    m.set('a', 3); // refreshed
    m.set('c', 4);
    assert.equal(m.size, 2);
    assert.equal(m.get('b'), undefined);
    assert.equal(m.get('a'), 3);
  });
});

describe('graft rules explain NAME', () => {
  const explain = (...args: string[]) =>
    runCollect(join(repoRoot, 'bin/graft'), ['rules', 'explain', ...args], { env: { ...process.env, GRAFT_CONFIG: '/dev/null' } }, undefined);
  it('says what graft answers for the name, and which rule decides its connect', async () => {
    const r = await explain('A.Corp.Example:443', '--proxy', 'socks5://192.0.2.10:1080', '--rule', '*.corp.example proxy', '--rule', 'all direct');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      "a.corp.example:443: DNS (remote: a rule names a host (--rule 1: '*.corp.example proxy')): a fake address, and no query leaves this machine; a connect to it goes by the name\n" +
        "  the connect: --rule 1: '*.corp.example proxy' (proxy): through graft's proxy, then the upstream proxy chain: socks5://192.0.2.10:1080\n",
    );
    const off = await explain('pub.example', '--dns', 'off');
    assert.match(off.stdout, /graft does not answer DNS \(chosen with --dns or dns:\)/);
    const bad = await explain('not_a..name');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /is not ADDR, ADDR:PORT, \[IPv6\]:PORT, NAME or NAME:PORT/);
  });
});
