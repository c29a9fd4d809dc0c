/** The config file: found, validated with file:line messages, applied, overridden by the command line. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './lab/paths.js';
import { A4, B4, World, connections } from './lab/world.js';
import { LAB, needs } from './lab/capabilities.js';

const graft = join(repoRoot, 'bin/graft');
const dir = mkdtempSync(join(tmpdir(), 'graft-config-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(graft, args, { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: dir, ...env } });

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

describe('graft config check', () => {
  it('a valid file: summary, passwords masked, exit 0', () => {
    const r = run(['config', 'check', file('valid.yaml', VALID)]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      [
        `${join(dir, 'valid.yaml')}: ok`,
        '  proxies: corp (socks5://alice:***@192.0.2.60:1080), twohop (http://192.0.2.61:3128 -> socks5://192.0.2.62:1080)',
        '  default: proxy socks5://alice:***@192.0.2.60:1080',
        '  faults: 0 toxic(s), 0 connect fault(s)',
        '  rules: 3',
        '    1. 192.0.2.60:1080 pass (the upstream proxy itself)   [proxy corp]',
        '    2. 192.0.2.61:3128 pass (the upstream proxy itself)   [proxy twohop]',
        '    3. 10.0.0.0/8 direct   [' + join(dir, 'valid.yaml') + ':7: rules[0]]',
        '    4. port 22 refuse ETIMEDOUT   [' + join(dir, 'valid.yaml') + ':8: rules[1]]',
        '    5. 172.16.0.0/12 proxy twohop   [' + join(dir, 'valid.yaml') + ':9: rules[2]]',
        '    6. all proxy   [default]',
        '',
      ].join('\n'),
    );
    assert.doesNotMatch(r.stdout, /s3cret/);
  });

  const invalid: [string, string, RegExp][] = [
    ['bad YAML', 'rules:\n  - all direct\n  bad: [\n', /^graft: .*bad\.yaml:\d+: not valid YAML: /],
    ['an unknown key', 'proxies: {}\nrulez:\n  - all direct\n', /^graft: .*unknown\.yaml:2: rulez: unknown key \(known: proxies, proxy, rules, toxics, faults, mark, interface, source, mode, connect-timeout, log\)\n$/],
    ['an unknown log key', 'log:\n  path: /tmp/x\n', /^graft: .*logkey\.yaml:2: log\.path: unknown key \(known: file, level\)\n$/],
    ['a bad CIDR', 'rules:\n  - all direct\n  - 10.0.0.0/40 refuse\n', /^graft: .*cidr\.yaml:3: rules\[1\]: rule '10\.0\.0\.0\/40 refuse': '\/40' is not a prefix length for IPv4 \(0-32\)\n$/],
    ['a bad proxy URL', 'proxies:\n  corp: socks5://alice:s3cret@192.0.2.60\n', /^graft: .*url\.yaml:2: proxies\.corp: 'socks5:\/\/alice:\*\*\*@192\.0\.2\.60': no port \(e\.g\. socks5:\/\/192\.0\.2\.60:1080\)\n$/],
    ['an unknown scheme', 'proxy: ftp://192.0.2.60:21\n', /^graft: .*scheme\.yaml:1: proxy: 'ftp:\/\/192\.0\.2\.60:21': unsupported scheme 'ftp:' \(socks5, socks4, socks4a or http\)\n$/],
    ['an unknown proxy name', 'proxy: nosuch\n', /^graft: .*name\.yaml:1: proxy: no proxy named 'nosuch' under proxies\n$/],
    ['a rule naming an unknown proxy', 'rules:\n  - all proxy corp\n', /^graft: .*rulename\.yaml:2: rules\[0\]: rule 'all proxy corp': no proxy named 'corp'\n$/],
    ['a bad mode', 'mode: fast\n', /^graft: .*mode\.yaml:1: mode: 'fast' is not auto, proxy or inplace\n$/],
    ['a bad duration', 'connect-timeout: soon\n', /^graft: .*dur\.yaml:1: connect-timeout: 'soon' is not a duration/],
    ['not a mapping', '- all direct\n', /^graft: .*seq\.yaml:1: config: the file must be a mapping/],
  ];
  const names = ['bad', 'unknown', 'logkey', 'cidr', 'url', 'scheme', 'name', 'rulename', 'mode', 'dur', 'seq'];
  invalid.forEach(([what, text, want], i) => {
    it(`rejects ${what}: file, line and field named, exit 2`, () => {
      const r = run(['config', 'check', file(`${names[i]}.yaml`, text)]);
      assert.equal(r.status, 2, r.stdout);
      assert.match(r.stderr, want);
      assert.doesNotMatch(r.stderr, /s3cret/);
    });
  });

  it('a missing file', () => {
    const r = run(['config', 'check', join(dir, 'nope.yaml')]);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `graft: config ${join(dir, 'nope.yaml')}: cannot read it (ENOENT)\n`);
  });
});

describe('config in a run', { skip: needs(...LAB, 'curl') }, () => {
  let world: World;
  before(async () => {
    world = await new World().start();
  });
  after(() => world?.destroy());

  const curlBoth = ['sh', '-c', `curl -sS --max-time 5 http://${A4}:8080/a; curl -sS --max-time 5 http://${B4}:8080/b; true`];

  it('--config applies its rules; command-line rules come first', async () => {
    const cfg = file('run.yaml', `rules:\n  - ${B4} refuse ETIMEDOUT\n`);
    const r = await world.graft(curlBoth, { graftArgs: ['--config', cfg] });
    assert.equal(r.stdout, 'name=A path=/a\n');
    assert.deepEqual(r.records.filter((x) => x.event === 'refused').map((x) => [x.dst, x.errno]), [[`${B4}:8080`, 'ETIMEDOUT']]);
    const over = await world.graft(curlBoth, { graftArgs: ['--config', cfg, '--rule', `${B4} direct`] });
    assert.equal(over.stdout, 'name=A path=/a\nname=B path=/b\n');
  });

  it('GRAFT_CONFIG and the XDG location are read; --config wins', async () => {
    const xdg = join(dir, 'xdg');
    mkdirSync(join(xdg, 'graft'), { recursive: true });
    writeFileSync(join(xdg, 'graft', 'config.yaml'), `rules:\n  - ${A4} refuse\n`);
    const viaXdg = await world.graft(curlBoth, { env: { ...process.env, XDG_CONFIG_HOME: xdg, GRAFT_CONFIG: '' } });
    assert.equal(viaXdg.stdout, 'name=B path=/b\n');
    const envCfg = file('env.yaml', `rules:\n  - ${B4} refuse\n`);
    const viaEnv = await world.graft(curlBoth, { env: { ...process.env, XDG_CONFIG_HOME: xdg, GRAFT_CONFIG: envCfg } });
    assert.equal(viaEnv.stdout, 'name=A path=/a\n');
    const none = file('none.yaml', 'rules: []\n');
    const viaFlag = await world.graft(curlBoth, { graftArgs: ['--config', none], env: { ...process.env, XDG_CONFIG_HOME: xdg, GRAFT_CONFIG: envCfg } });
    assert.equal(viaFlag.stdout, 'name=A path=/a\nname=B path=/b\n');
  });

  it('toxics and connect faults from the file apply', async () => {
    const cfg = file('chaos.yaml', `toxics:\n  - latency latency=150ms on ${A4}\nfaults:\n  - refuse errno=ETIMEDOUT on ${B4}\n`);
    const r = await world.graft(curlBoth, { graftArgs: ['--config', cfg] });
    assert.equal(r.stdout, 'name=A path=/a\n');
    const proxied = connections(r)[0];
    assert.deepEqual(proxied?.faults, [`latency latency=150ms on ${A4}`]);
    assert.ok(Number(proxied?.durationMs) >= 150);
    assert.deepEqual(r.records.filter((x) => x.event === 'refused').map((x) => [x.dst, x.errno]), [[`${B4}:8080`, 'ETIMEDOUT']]);
  });

  it('ALL_PROXY in the environment does not change graft\'s routing', async () => {
    const r = await world.graft(['curl', '-sS', '--noproxy', '*', `http://${A4}:8080/env`], {
      env: { ...process.env, ALL_PROXY: 'socks5://192.0.2.99:1080', all_proxy: 'socks5://192.0.2.99:1080', GRAFT_CONFIG: '' },
    });
    assert.equal(r.stdout, 'name=A path=/env\n', r.stderr);
    assert.equal(connections(r)[0]?.upstream, undefined);
  });
});
