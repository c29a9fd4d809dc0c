/**
 * The rule language: parsing and its errors, `graft rules explain`, and the
 * two deciders agreeing: the tracer's compiled table (C) and the rule table
 * graft explains with (net.BlockList), over many destinations in one run.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './lab/paths.js';
import { World } from './lab/world.js';
import { parseRule } from '../src/rules/parse.js';
import { Routing } from '../src/routing.js';
import { UsageError } from '../src/errors.js';
import { LAB, needs } from './lab/capabilities.js';

const graft = join(repoRoot, 'bin/graft');
const run = (args: string[], env: NodeJS.ProcessEnv = process.env) => spawnSync(graft, args, { encoding: 'utf8', env });

describe('rule parsing', () => {
  it('accepts the documented forms', () => {
    const texts = [
      'all proxy',
      'all direct',
      '10.0.0.0/8 interface eth1',
      '198.51.100.7:443 refuse ETIMEDOUT',
      '198.51.100.0/24:8000-8999 pass',
      '[2001:db8::/32]:443 proxy corp',
      '2001:db8::1 mark 0x10 interface wg0 source 192.0.2.1',
      'port 22 refuse',
      'port 6000-6063 refuse EHOSTUNREACH',
    ];
    for (const t of texts) assert.equal(parseRule(t, 'test').text, t);
    assert.deepEqual(parseRule('10.0.0.0/8:80-90 refuse', 'x').match, { kind: 'net', family: 4, address: '10.0.0.0', prefix: 8, ports: { lo: 80, hi: 90 } });
    assert.deepEqual(parseRule('port 22 refuse', 'x').action, { kind: 'refuse', errno: 'ECONNREFUSED' });
    assert.deepEqual(parseRule('all mark 16 source 2001:db8::5', 'x').action, { kind: 'route', egress: { mark: 16, source6: '2001:db8::5' } });
  });

  it('names the origin, the rule and the bad word', () => {
    const cases: [string, RegExp][] = [
      ['10.0.0.0/33 direct', /^--rule 3: rule '10\.0\.0\.0\/33 direct': '\/33' is not a prefix length for IPv4 \(0-32\)$/],
      ['10.0.0.300 direct', /is not an IP address, CIDR, 'all' or 'port N'/],
      ['port 0 refuse', /'0' is not a port or port range/],
      ['port 90-80 refuse', /'90-80' is not a port or port range/],
      ['all refuse EWHATEVER', /'EWHATEVER' is not an errno graft can refuse with \(ECONNREFUSED, ETIMEDOUT/],
      ['all teleport', /'teleport' is not an action/],
      ['all', /no action/],
      ['all direct now', /'direct' takes no argument/],
      ['all mark 0x1g', /'0x1g' is not a 32-bit mark/],
      ['all mark 1 mark 2', /'mark' given twice/],
      ['all mark 1 refuse', /'refuse' cannot be combined with mark, interface and source/],
    ];
    for (const [text, want] of cases) {
      assert.throws(() => parseRule(text, '--rule 3'), (err: unknown) => err instanceof UsageError && want.test(err.message), text);
    }
  });

  it('bad rules on the command line exit 2 with the message', () => {
    const r = run(['--rule', '10.0.0.0/8 sideways', '--', 'true']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, "graft: --rule 1: rule '10.0.0.0/8 sideways': 'sideways' is not an action (proxy, direct, pass, refuse, mark, interface or source)\n");
    const p = run(['--rule', 'all proxy corp', '--', 'true']);
    assert.equal(p.status, 2);
    assert.equal(p.stderr, "graft: --rule 1: rule 'all proxy corp': no proxy named 'corp'\n");
    const q = run(['--rule', 'all proxy', '--', 'true']);
    assert.equal(q.status, 2);
    assert.equal(q.stderr, "graft: --rule 1: rule 'all proxy': 'proxy' without a name needs --proxy\n");
  });
});

describe('graft rules explain', () => {
  const base = ['--proxy', 'socks5://alice:s3cret@192.0.2.50:1080', '--rule', '10.0.0.0/8 interface lo', '--rule', 'port 22 refuse ETIMEDOUT', '--rule', '127.0.0.1:8080 proxy'];
  const explain = (dest: string) => run(['rules', 'explain', dest, ...base]);

  it('says which rule matches and what would happen, passwords masked', () => {
    const cases: [string, string][] = [
      ['10.1.2.3:443', "10.1.2.3:443: --rule 1: '10.0.0.0/8 interface lo' (interface lo): in place: the program connects directly, with dev lo\n"],
      ['198.51.100.7:22', "198.51.100.7:22: --rule 2: 'port 22 refuse ETIMEDOUT' (refuse ETIMEDOUT): the connect fails with ETIMEDOUT\n"],
      ['198.51.100.7:443', "198.51.100.7:443: no rule matches; the default (proxy): through graft's proxy, then the upstream proxy chain: socks5://alice:***@192.0.2.50:1080\n"],
      ['127.0.0.1:8080', "127.0.0.1:8080: --rule 3: '127.0.0.1:8080 proxy' (proxy): through graft's proxy, then the upstream proxy chain: socks5://alice:***@192.0.2.50:1080\n"],
      ['127.0.0.1:22', '127.0.0.1:22: loopback, no rule names it: passed untouched (the program connects directly)\n'],
      ['192.0.2.50:1080', "192.0.2.50:1080: proxy: '192.0.2.50:1080 pass (the upstream proxy itself)' (pass): passed untouched (the program connects directly, graft does not see it again)\n"],
      ['[::ffff:10.0.0.1]:80', "[::ffff:10.0.0.1]:80: --rule 1: '10.0.0.0/8 interface lo' (interface lo): in place: the program connects directly, with dev lo\n"],
    ];
    for (const [dest, want] of cases) {
      const r = explain(dest);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, want);
      assert.doesNotMatch(r.stdout + r.stderr, /s3cret/);
    }
  });

  it('names the connect faults and toxics that would apply to the destination', () => {
    const chaos = ['--fault', 'refuse errno=ETIMEDOUT probability=0.3 on 198.51.100.0/24', '--fault', 'delay time=1s on port 80', '--latency', '100ms', '--toxic', 'bandwidth rate=1MB/s on 203.0.113.0/24'];
    const r = run(['rules', 'explain', '198.51.100.7:443', ...chaos]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      "198.51.100.7:443: no rule matches; the default (direct): through graft's proxy, which connects directly\n" +
        "  connect faults, checked first (the first one chosen applies): 'refuse errno=ETIMEDOUT probability=0.3 on 198.51.100.0/24' (--fault 1)\n" +
        "  toxics on its data: 'latency latency=100ms jitter=0ms' (--latency)\n",
    );
    // a refusing rule: connect faults still come first, toxics never act
    const refused = run(['rules', 'explain', '198.51.100.7:80', '--rule', 'port 80 refuse', ...chaos]);
    assert.equal(
      refused.stdout,
      "198.51.100.7:80: --rule 1: 'port 80 refuse' (refuse ECONNREFUSED): the connect fails with ECONNREFUSED\n" +
        "  connect faults, checked first (the first one chosen applies): 'refuse errno=ETIMEDOUT probability=0.3 on 198.51.100.0/24' (--fault 1), 'delay time=1s on port 80' (--fault 2)\n",
    );
  });

  it('rejects what is not a destination', () => {
    const r = run(['rules', 'explain', 'example.org:80']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, "graft: rules explain: 'example.org:80' is not ADDR, ADDR:PORT or [IPv6]:PORT\n");
  });
});

describe('the tracer decides exactly as the rule table', { skip: needs(...LAB) }, () => {
  let world: World;
  before(async () => {
    world = await new World().start();
  });
  after(() => world?.destroy());

  it('for 300 destinations and ports, in one run', async () => {
    const ruleTexts = [
      '198.51.100.0/25:7000 refuse ECONNREFUSED',
      '198.51.100.128/26 refuse ETIMEDOUT',
      'port 7001-7002 refuse ENETUNREACH',
      '203.0.113.0/28 refuse EHOSTUNREACH',
      '[2001:db8:2::/120]:7000 refuse ECONNRESET',
      '2001:db8:2::/48 refuse EACCES',
      '127.0.0.2 refuse EPERM',
      '198.51.100.7 pass',
    ];
    const rules = ruleTexts.map((t, i) => parseRule(t, `--rule ${i + 1}`));
    const routing = await Routing.create({ rules, chains: new Map(), egress: {}, mode: 'auto' });
    // A deterministic spread of destinations, mostly near the rules' edges.
    const dests: [string, number][] = [];
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let i = 0; i < 300; i++) {
      const port = [7000, 7001, 7002, 7003, 80][rnd(5)]!;
      const pick = rnd(5);
      const ip =
        pick === 0 ? `198.51.100.${rnd(256)}` : pick === 1 ? `203.0.113.${rnd(32)}` : pick === 2 ? `2001:db8:2::${rnd(512).toString(16)}` : pick === 3 ? `2001:db8:3::${rnd(16).toString(16)}` : `127.0.0.${1 + rnd(3)}`;
      dests.push([ip, port]);
    }
    // Each connect times out fast: destinations nobody answers are dropped
    // by the lab's host; only graft's decision matters here.
    const probe = [
      'import socket, sys, json',
      `dests = json.loads(sys.argv[1])`,
      'for ip, port in dests:',
      '    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)',
      '    s.setblocking(False)',
      '    err = s.connect_ex((ip, port))',
      '    print(ip, port, err)',
      '    s.close()',
    ].join('\n');
    const r = await world.graft(['python3', '-c', probe, JSON.stringify(dests)], { graftArgs: [...ruleTexts.flatMap((t) => ['--rule', t]), '--connect-timeout', '200ms', '--log-level', 'debug'], timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, dests.length);
    const errnos: Record<string, number> = { ECONNREFUSED: 111, ETIMEDOUT: 110, ENETUNREACH: 101, EHOSTUNREACH: 113, ECONNRESET: 104, EACCES: 13, EPERM: 1 };
    let checked = 0;
    for (const [i, [ip, port]] of dests.entries()) {
      const got = Number(lines[i]!.split(' ')[2]);
      const decision = routing.decide(ip, port);
      const action = decision?.rule.action;
      if (action?.kind === 'refuse') {
        assert.equal(got, errnos[action.errno], `${ip}:${port} should be refused by ${decision!.rule.text}`);
      } else {
        // passed or redirected: a non-blocking connect in progress (or done)
        assert.ok(got === 115 || got === 0 || got === 111, `${ip}:${port} (${decision?.rule.text ?? 'loopback'}) got errno ${got}`);
      }
      checked++;
    }
    assert.equal(checked, 300);
    const refusedByGraft = r.records.filter((x) => x.event === 'refused').length;
    assert.equal(refusedByGraft, dests.filter(([ip, port]) => routing.decide(ip, port)?.rule.action.kind === 'refuse').length);
  });
});
