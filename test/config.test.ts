/** The config file in a run: found, applied, overridden by the command line. Validation is in test/unit/config.test.ts. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { A4, B4, World, connections } from './lab/world.js';
import { LAB, needs } from './lab/capabilities.js';

const dir = mkdtempSync(join(tmpdir(), 'graft-config-'));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

after(() => rmSync(dir, { recursive: true, force: true }));

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
    assert.deepEqual(
      r.records.filter((x) => x.event === 'refused').map((x) => [x.dst, x.errno]),
      [[`${B4}:8080`, 'ETIMEDOUT']],
    );
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
    assert.deepEqual(
      r.records.filter((x) => x.event === 'refused').map((x) => [x.dst, x.errno]),
      [[`${B4}:8080`, 'ETIMEDOUT']],
    );
  });

  it("ALL_PROXY in the environment does not change graft's routing", async () => {
    const r = await world.graft(['curl', '-sS', '--noproxy', '*', `http://${A4}:8080/env`], {
      env: { ...process.env, ALL_PROXY: 'socks5://192.0.2.99:1080', all_proxy: 'socks5://192.0.2.99:1080', GRAFT_CONFIG: '' },
    });
    assert.equal(r.stdout, 'name=A path=/env\n', r.stderr);
    assert.equal(connections(r)[0]?.upstream, undefined);
  });
});
