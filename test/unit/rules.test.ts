/**
 * The rule language: parsing and its errors, the rule table's decisions,
 * and `graft rules explain` run as a real subprocess.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../lab/paths.js';
import { parseRule } from '../../src/rules/parse.js';
import { RuleTable, describeAction, destinationMatcher, isLoopback } from '../../src/rules/table.js';
import { UsageError } from '../../src/errors.js';

const graft = join(repoRoot, 'bin/graft');
/** bin/graft with these arguments, as a subprocess that does not block the other tests */
const run = (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(graft, args, { encoding: 'utf8', env }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });

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

  it('names the rule and the bad word', () => {
    const cases: [string, RegExp][] = [
      ['10.0.0.0/33 direct', /^rule '10\.0\.0\.0\/33 direct': '\/33' is not a prefix length for IPv4 \(0-32\)$/],
      ['10.0.0.300 direct', /is not an IP address, CIDR, host name \(example\.com, \*\.example\.com\), 'all' or 'port N'/],
      ['port 0 refuse', /'0' is not a port or port range/],
      ['port 90-80 refuse', /'90-80' is not a port or port range/],
      ['all refuse EWHATEVER', /'EWHATEVER' is not an errno graft can refuse with \(ECONNREFUSED, ETIMEDOUT/],
      ['all teleport', /'teleport' is not an action/],
      ['all', /no action/],
      ['all direct now', /'direct' takes no argument/],
      ['all mark 0x1g', /'0x1g' is not a 32-bit mark/],
      ['all mark 1 mark 2', /'mark' given twice/],
      ['all mark 1 refuse', /'refuse' cannot be combined with mark, interface and source/],
      ['fe80::1%eth0 pass', /'fe80::1%eth0': an IPv6 zone \(%IF\) is not accepted/],
      ['all source ::1%lo', /'::1%lo': an IPv6 zone \(%IF\) is not accepted/],
      ['all interface a/b', /'a\/b' is not an interface name/],
    ];
    for (const [text, want] of cases) {
      assert.throws(
        () => parseRule(text, '--rule 3'),
        (err: unknown) => err instanceof UsageError && want.test(err.message),
        text,
      );
    }
  });

  it('bad rules on the command line exit 2 with the message', async () => {
    const r = await run(['--rule', '10.0.0.0/8 sideways', '--', 'true']);
    assert.equal(r.status, 2);
    assert.equal(
      r.stderr,
      "graft: --rule 1: rule '10.0.0.0/8 sideways': 'sideways' is not an action (proxy, direct, pass, refuse, mark, interface or source)\n",
    );
    const p = await run(['--rule', 'all proxy corp', '--', 'true']);
    assert.equal(p.status, 2);
    assert.equal(p.stderr, "graft: --rule 1: rule 'all proxy corp': no proxy named 'corp'\n");
    const q = await run(['--rule', 'all proxy', '--', 'true']);
    assert.equal(q.status, 2);
    assert.equal(q.stderr, "graft: --rule 1: rule 'all proxy': 'proxy' without a name needs a default proxy (--proxy, or proxy: in the config)\n");
  });
});

describe('graft rules explain', { concurrency: true }, () => {
  const base = [
    '--proxy',
    'socks5://alice:s3cret@192.0.2.50:1080',
    '--rule',
    '10.0.0.0/8 interface lo',
    '--rule',
    'port 22 refuse ETIMEDOUT',
    '--rule',
    '127.0.0.1:8080 proxy',
  ];
  const explain = (dest: string) => run(['rules', 'explain', dest, ...base]);

  it('says which rule matches and what would happen, passwords masked', async () => {
    const cases: [string, string][] = [
      ['10.1.2.3:443', "10.1.2.3:443: --rule 1: '10.0.0.0/8 interface lo' (interface lo): in place: the program connects directly, with dev lo\n"],
      ['198.51.100.7:22', "198.51.100.7:22: --rule 2: 'port 22 refuse ETIMEDOUT' (refuse ETIMEDOUT): the connect fails with ETIMEDOUT\n"],
      [
        '198.51.100.7:443',
        "198.51.100.7:443: no rule matches; the default (proxy): through graft's proxy, then the upstream proxy chain: socks5://alice:***@192.0.2.50:1080\n",
      ],
      [
        '127.0.0.1:8080',
        "127.0.0.1:8080: --rule 3: '127.0.0.1:8080 proxy' (proxy): through graft's proxy, then the upstream proxy chain: socks5://alice:***@192.0.2.50:1080\n",
      ],
      ['127.0.0.1:22', '127.0.0.1:22: loopback, no rule names it: passed untouched (the program connects directly)\n'],
      [
        '192.0.2.50:1080',
        "192.0.2.50:1080: proxy: '192.0.2.50:1080 pass (the upstream proxy itself)' (pass): passed untouched (the program connects directly, graft does not see it again)\n",
      ],
      [
        '[::ffff:10.0.0.1]:80',
        "[::ffff:10.0.0.1]:80: --rule 1: '10.0.0.0/8 interface lo' (interface lo): in place: the program connects directly, with dev lo\n",
      ],
    ];
    const runs = await Promise.all(cases.map(([dest]) => explain(dest)));
    for (const [i, [, want]] of cases.entries()) {
      const r = runs[i]!;
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, want);
      assert.doesNotMatch(r.stdout + r.stderr, /s3cret/);
    }
  });

  it('names the connect faults and toxics that would apply to the destination', async () => {
    const chaos = [
      '--fault',
      'refuse errno=ETIMEDOUT probability=0.3 on 198.51.100.0/24',
      '--fault',
      'delay time=1s on port 80',
      '--latency',
      '100ms',
      '--toxic',
      'bandwidth rate=1MB/s on 203.0.113.0/24',
    ];
    const r = await run(['rules', 'explain', '198.51.100.7:443', ...chaos]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      "198.51.100.7:443: no rule matches; the default (direct): through graft's proxy, which connects directly\n" +
        "  connect faults, checked first (the first one chosen applies): 'refuse errno=ETIMEDOUT probability=0.3 on 198.51.100.0/24' (--fault 1)\n" +
        "  toxics on its data: 'latency latency=100ms jitter=0ms' (--latency)\n",
    );
    // a refusing rule: connect faults still come first, toxics never act
    const refused = await run(['rules', 'explain', '198.51.100.7:80', '--rule', 'port 80 refuse', ...chaos]);
    assert.equal(
      refused.stdout,
      "198.51.100.7:80: --rule 1: 'port 80 refuse' (refuse ECONNREFUSED): the connect fails with ECONNREFUSED\n" +
        "  connect faults, checked first (the first one chosen applies): 'refuse errno=ETIMEDOUT probability=0.3 on 198.51.100.0/24' (--fault 1), 'delay time=1s on port 80' (--fault 2)\n",
    );
  });

  it('rejects what is not a destination', async () => {
    const r = await run(['rules', 'explain', 'example..org:80']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, "graft: rules explain: 'example..org:80' is not ADDR, ADDR:PORT, [IPv6]:PORT, NAME or NAME:PORT\n");
    const port = await run(['rules', 'explain', 'example.org:70000']);
    assert.equal(port.status, 2);
  });
});

describe('the rule table decides', () => {
  const rules = (...texts: string[]) => texts.map((t, i) => parseRule(t, `--rule ${i + 1}`));
  const table = new RuleTable(
    rules('192.0.2.60:1080 pass'),
    rules('10.0.0.0/8:443 refuse ETIMEDOUT', '10.0.0.0/8 interface eth1', 'port 8000-8999 direct', '[2001:db8::/32]:22 refuse', '127.0.0.1:8080 proxy'),
    { kind: 'proxy' },
  );
  const which = (ip: string, port: number): string | undefined => table.decide(ip, port)?.rule.text;

  it('the first matching rule wins, in order: the passes first, then the user rules, then the default', () => {
    assert.equal(which('10.1.2.3', 443), '10.0.0.0/8:443 refuse ETIMEDOUT');
    assert.equal(which('10.1.2.3', 444), '10.0.0.0/8 interface eth1');
    assert.equal(which('192.0.2.60', 1080), '192.0.2.60:1080 pass');
    assert.equal(which('192.0.2.60', 1081), 'all proxy');
    const last = table.decide('198.51.100.7', 80)!;
    assert.equal(last.index, table.rules.length - 1);
    assert.equal(last.rule.origin, 'default');
  });

  it('port ranges include both ends', () => {
    assert.equal(which('198.51.100.7', 7999), 'all proxy');
    assert.equal(which('198.51.100.7', 8000), 'port 8000-8999 direct');
    assert.equal(which('198.51.100.7', 8999), 'port 8000-8999 direct');
    assert.equal(which('198.51.100.7', 9000), 'all proxy');
  });

  it('IPv4 rules match v4-mapped IPv6 destinations; IPv6 networks match by prefix', () => {
    assert.equal(which('::ffff:10.0.0.1', 80), '10.0.0.0/8 interface eth1');
    assert.equal(which('2001:db8:ffff::1', 22), '[2001:db8::/32]:22 refuse');
    assert.equal(which('2001:db9::1', 22), 'all proxy');
    assert.equal(which('11.0.0.1', 80), 'all proxy');
  });

  it('loopback matches only a rule that names it: never all or port N', () => {
    assert.equal(which('127.0.0.1', 8080), '127.0.0.1:8080 proxy');
    for (const [ip, port] of [
      ['127.0.0.1', 8500],
      ['127.0.0.2', 80],
      ['::1', 8500],
      ['::ffff:127.0.0.1', 8500],
      ['0.0.0.0', 80],
    ] as const) {
      assert.equal(table.decide(ip, port), undefined, `${ip}:${port}`);
    }
    assert.ok(isLoopback('127.1.2.3') && isLoopback('::1') && !isLoopback('10.0.0.1') && !isLoopback('::2'));
  });

  it('a MATCH alone, as faults and toxics use it', () => {
    const m = destinationMatcher(parseRule('198.51.100.0/24:443 pass', 'x').match);
    assert.equal(m('198.51.100.9', 443), true);
    assert.equal(m('::ffff:198.51.100.9', 443), true);
    assert.equal(m('198.51.100.9', 80), false);
    const all = destinationMatcher({ kind: 'all' });
    assert.equal(all('203.0.113.1', 1), true);
    assert.equal(all('127.0.0.1', 1), false);
  });

  it('actions read back as rule text', () => {
    assert.equal(describeAction({ kind: 'proxy', name: 'corp' }), 'proxy corp');
    assert.equal(describeAction({ kind: 'refuse', errno: 'EPERM' }), 'refuse EPERM');
    assert.equal(
      describeAction({ kind: 'route', egress: { mark: 16, interface: 'wg0', source4: '192.0.2.1', source6: '2001:db8::1' } }),
      'mark 0x10 interface wg0 source 192.0.2.1 source 2001:db8::1',
    );
    assert.equal(describeAction({ kind: 'pass' }), 'pass');
  });
});
