/** The config file: parsed and validated with file:line messages, and `graft config check` as a real subprocess. */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../lab/paths.js';
import { findConfig, loadConfig, parseConfig } from '../../src/config/file.js';
import { UsageError } from '../../src/errors.js';
import { NO_SETTINGS, resolveSettings } from '../../src/settings/resolve.js';

/** A config file's text as a run would take it (no command-line settings). */
const read = (text: string, path: string) => resolveSettings(NO_SETTINGS, parseConfig(text, path));

const graft = join(repoRoot, 'bin/graft');
const dir = mkdtempSync(join(tmpdir(), 'graft-config-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
/** bin/graft with these arguments, as a subprocess that does not block the other tests */
const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(graft, args, { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir, ...env } }, (err, stdout, stderr) =>
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });

const VALID = `# graft config
proxies:
  corp: socks5://alice:s3cret@192.0.2.60:1080
  twohop: [http://192.0.2.61:3128, socks5://192.0.2.62:1080]
proxy: corp
rules:
  - 10.0.0.0/8 direct
  - port 22 refuse ETIMEDOUT
  - 172.16.0.0/12 proxy twohop
mark: 0x10
mode: proxy
connect-timeout: 3s
log:
  level: debug
`;

after(() => rmSync(dir, { recursive: true, force: true }));

describe('graft config check', { concurrency: true }, () => {
  it('a valid file: summary, passwords masked, exit 0', async () => {
    const r = await run(['config', 'check', file('valid.yaml', VALID)]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        `${join(dir, 'valid.yaml')}: ok`,
        '  proxies: corp (socks5://alice:***@192.0.2.60:1080), twohop (http://192.0.2.61:3128 -> socks5://192.0.2.62:1080)',
        '  default: proxy socks5://alice:***@192.0.2.60:1080',
        '  faults: 0 toxic(s), 0 connect fault(s), 0 DNS fault(s)',
        `  dns: local (the default route is a proxy, but a rule by address decides by real addresses (${join(dir, 'valid.yaml')}:7: rules[0]: '10.0.0.0/8 direct'); --dns remote resolves names at the proxy)`,
        '  rules: 3',
        '    1. 192.0.2.60:1080 pass (the upstream proxy itself)   [proxy corp]',
        '    2. 192.0.2.61:3128 pass (the upstream proxy itself)   [proxy twohop]',
        '    3. 0.0.0.0/0:53 (graft answers DNS)   [dns]',
        '    4. [::/0]:53 (graft answers DNS)   [dns]',
        '    5. 10.0.0.0/8 direct   [' + join(dir, 'valid.yaml') + ':7: rules[0]]',
        '    6. port 22 refuse ETIMEDOUT   [' + join(dir, 'valid.yaml') + ':8: rules[1]]',
        '    7. 172.16.0.0/12 proxy twohop   [' + join(dir, 'valid.yaml') + ':9: rules[2]]',
        '    8. all proxy   [default]',
        '',
      ].join('\n'),
    );
    assert.doesNotMatch(r.stdout, /s3cret/);
  });

  const invalid: [string, string, RegExp][] = [
    ['bad YAML', 'rules:\n  - all direct\n  bad: [\n', /^graft: .*bad\.yaml:\d+: not valid YAML: /],
    [
      'nested deeper than the parser follows',
      `rules: ${'['.repeat(20_000)}\n`,
      /^graft: .*deep\.yaml:1: not valid YAML: nested too deeply for a config file\n$/,
    ],
    [
      'an unknown key',
      'proxies: {}\nrulez:\n  - all direct\n',
      /^graft: .*unknown\.yaml:2: rulez: unknown key \(known: proxies, proxy, rules, toxics, faults, latency, bandwidth, reset-after, refuse, seed, mark, interface, source, mode, dns, fake-range, connect-timeout, control, log\)\n$/,
    ],
    ['an unknown log key', 'log:\n  path: /tmp/x\n', /^graft: .*logkey\.yaml:2: log\.path: unknown key \(known: file, level\)\n$/],
    [
      'a bad CIDR',
      'rules:\n  - all direct\n  - 10.0.0.0/40 refuse\n',
      /^graft: .*cidr\.yaml:3: rules\[1\]: rule '10\.0\.0\.0\/40 refuse': '\/40' is not a prefix length for IPv4 \(0-32\)\n$/,
    ],
    [
      'a bad proxy URL',
      'proxies:\n  corp: socks5://alice:s3cret@192.0.2.60\n',
      /^graft: .*url\.yaml:2: proxies\.corp: 'socks5:\/\/alice:\*\*\*@192\.0\.2\.60': no port \(e\.g\. socks5:\/\/192\.0\.2\.60:1080\)\n$/,
    ],
    [
      'an unknown scheme',
      'proxy: ftp://192.0.2.60:21\n',
      /^graft: .*scheme\.yaml:1: proxy: 'ftp:\/\/192\.0\.2\.60:21': unsupported scheme 'ftp:' \(socks5, socks4, socks4a or http\)\n$/,
    ],
    ['an unknown proxy name', 'proxy: nosuch\n', /^graft: .*name\.yaml:1: proxy: no proxy named 'nosuch' under proxies\n$/],
    [
      'a rule naming an unknown proxy',
      'rules:\n  - all proxy corp\n',
      /^graft: .*rulename\.yaml:2: rules\[0\]: rule 'all proxy corp': no proxy named 'corp'\n$/,
    ],
    ['a bad mode', 'mode: fast\n', /^graft: .*mode\.yaml:1: mode: 'fast' is not one of auto, proxy, inplace\n$/],
    ['a bad duration', 'connect-timeout: soon\n', /^graft: .*dur\.yaml:1: connect-timeout: 'soon' is not a duration/],
    ['not a mapping', '- all direct\n', /^graft: .*seq\.yaml:1: the file must be a mapping/],
  ];
  const names = ['bad', 'deep', 'unknown', 'logkey', 'cidr', 'url', 'scheme', 'name', 'rulename', 'mode', 'dur', 'seq'];
  // some through bin/graft; the rest in this process (the same message, without the 'graft: ' prefix)
  const throughGraft = new Set(['bad', 'deep', 'unknown', 'url', 'rulename']); // rulename: checked when the run's routing is built
  invalid.forEach(([what, text, want], i) => {
    const name = names[i]!;
    if (throughGraft.has(name)) {
      it(`rejects ${what}: file, line and field named, exit 2`, async () => {
        const r = await run(['config', 'check', file(`${name}.yaml`, text)]);
        assert.equal(r.status, 2, r.stdout);
        assert.match(r.stderr, want);
        assert.doesNotMatch(r.stderr, /s3cret/);
      });
    } else {
      it(`rejects ${what}: file, line and field named`, () => {
        const bare = new RegExp(want.source.replace(/^\^graft: /, '^').replace(/\\n\$$/, '$'));
        assert.throws(
          () => resolveSettings(NO_SETTINGS, loadConfig(file(`${name}.yaml`, text))),
          (err: unknown) => err instanceof UsageError && bare.test(err.message) && !err.message.includes('s3cret'),
        );
      });
    }
  });

  it('a missing file', async () => {
    const r = await run(['config', 'check', join(dir, 'nope.yaml')]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `graft: config '${join(dir, 'nope.yaml')}': cannot read it: no such file (ENOENT)\n`);
  });
});

describe('parsing a config file', () => {
  it('reads every setting', () => {
    const text = [
      'proxies:',
      '  corp: socks5://alice:s3cret@192.0.2.60:1080',
      '  twohop: [http://192.0.2.61:3128, socks4a://bob@192.0.2.62:1080]',
      'proxy: twohop',
      'rules:',
      '  - 10.0.0.0/8 interface eth1',
      '  - all proxy corp',
      'toxics:',
      '  - latency latency=200ms on 198.51.100.0/24',
      'faults:',
      '  - refuse errno=ETIMEDOUT probability=0.1',
      'mark: 0x10',
      'interface: wg0',
      'source: [192.0.2.10, 2001:db8::10]',
      'mode: proxy',
      'connect-timeout: 1.5s',
      'log: { file: /tmp/graft.ndjson, level: warn }',
      '',
    ].join('\n');
    const c = read(text, 'c.yaml');
    assert.deepEqual([...c.chains.keys()], ['corp', 'twohop', '']);
    assert.deepEqual(
      c.chains.get('corp')?.map((p) => [p.kind, p.host, p.port, p.auth?.user, p.auth?.password]),
      [['socks5', '192.0.2.60', 1080, 'alice', 's3cret']],
    );
    assert.deepEqual(
      c.chains.get('')?.map((p) => p.display),
      ['http://192.0.2.61:3128', 'socks4a://bob@192.0.2.62:1080'],
    );
    assert.deepEqual(
      c.rules.map((r) => [r.text, r.origin]),
      [
        ['10.0.0.0/8 interface eth1', 'c.yaml:6: rules[0]'],
        ['all proxy corp', 'c.yaml:7: rules[1]'],
      ],
    );
    assert.deepEqual(
      c.toxics.map((t) => t.text),
      ['latency latency=200ms on 198.51.100.0/24'],
    );
    assert.equal(c.connectFaults.length, 1);
    assert.deepEqual(c.egress, { mark: 16, interface: 'wg0', source4: '192.0.2.10', source6: '2001:db8::10' });
    assert.equal(c.mode, 'proxy');
    assert.equal(c.connectTimeoutMs, 1500);
    assert.equal(c.logFile, '/tmp/graft.ndjson');
    assert.equal(c.logLevel, 'warn');
  });

  it('an empty file is no settings', () => {
    for (const text of ['', '# only a comment\n']) {
      const c = read(text, 'e.yaml');
      assert.deepEqual([c.rules, c.egress, c.toxics, c.connectFaults, c.chains.size], [[], {}, [], [], 0]);
    }
  });

  it('mistakes name the file, the line and the field', () => {
    const cases: [string, RegExp][] = [
      ['mark: 0x1g\n', /^m\.yaml:1: mark: /],
      ['rules:\n  - all direct\n  - all sideways\n', /^m\.yaml:3: rules\[1\]: rule 'all sideways': 'sideways' is not an action/],
      ['toxics:\n  - lag latency=1s\n', /^m\.yaml:2: .*'lag' is not a toxic/],
      ['faults:\n  - explode\n', /^m\.yaml:2: .*'explode' is not a connect fault/],
      ['log:\n  level: loud\n', /^m\.yaml:2: log\.level: /],
      ['proxies:\n  corp: []\n', /^m\.yaml:2: proxies\.corp: an empty chain/],
      ['mode: auto\nmode: proxy\n', /^m\.yaml:\d+: not valid YAML: /],
    ];
    for (const [text, want] of cases) {
      assert.throws(
        () => read(text, 'm.yaml'),
        (err: unknown) => err instanceof UsageError && want.test(err.message),
        JSON.stringify(text),
      );
    }
  });

  it('is found at --config, else $GRAFT_CONFIG, else the XDG location if it exists', () => {
    const home = join(dir, 'home');
    assert.equal(findConfig('/x.yaml', { GRAFT_CONFIG: '/y.yaml' }), '/x.yaml');
    assert.equal(findConfig(undefined, { GRAFT_CONFIG: '/y.yaml', HOME: home }), '/y.yaml');
    assert.equal(findConfig(undefined, { HOME: home }), undefined);
    mkdirSync(join(home, '.config', 'graft'), { recursive: true });
    writeFileSync(join(home, '.config', 'graft', 'config.yaml'), '');
    assert.equal(findConfig(undefined, { HOME: home }), join(home, '.config', 'graft', 'config.yaml'));
    assert.equal(findConfig(undefined, { HOME: home, XDG_CONFIG_HOME: join(dir, 'nowhere') }), undefined);
  });
});
