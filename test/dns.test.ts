/**
 * Names resolve under an upstream proxy: the system's name servers (the
 * program's resolv.conf) are reached directly on port 53 when the default
 * goes through a proxy, which carries TCP only. The client namespace gets
 * its own resolv.conf the way iproute2 provides one (/etc/netns/NAME/),
 * removed with the lab.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { A4, World, connections } from './lab/world.js';
import { repoRoot } from './lab/paths.js';
import { LAB, needs } from './lab/capabilities.js';

const NS_ADDR = '192.0.2.2';

describe('DNS under an upstream proxy', { skip: needs(...LAB, 'curl', 'microsocks') }, () => {
  let world: World;
  let netnsDir: string;
  const queries: string[] = [];
  before(async () => {
    world = await new World().start();
    netnsDir = join('/etc/netns', world.client.name);
    mkdirSync(netnsDir, { recursive: true });
    writeFileSync(join(netnsDir, 'resolv.conf'), `nameserver ${NS_ADDR}\n`);
    const dns = world.lab.adopt(world.host.spawn('python3', [join(repoRoot, 'test/fixtures/dnsd.py'), NS_ADDR, A4]));
    const socks = world.lab.adopt(world.host.spawn('microsocks', ['-i', NS_ADDR, '-p', '1080']));
    void socks;
    await new Promise<void>((resolve) => {
      createInterface({ input: dns.stdout! }).on('line', (line) => (line === 'ready' ? resolve() : queries.push(line)));
    });
    await new Promise((r) => setTimeout(r, 200));
  });
  after(() => {
    world?.destroy();
    if (netnsDir) rmSync(netnsDir, { recursive: true, force: true });
  });

  it('curl resolves a name (UDP, directly) and connects through the proxy', async () => {
    const mark = queries.length;
    const run = await world.graft(['curl', '-sS', '--max-time', '5', 'http://a.test:8080/dns'], { graftArgs: ['--proxy', `socks5://${NS_ADDR}:1080`] });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'name=A path=/dns\n');
    assert.ok(
      queries.slice(mark).some((q) => q === 'query a.test 1 from 192.0.2.1'),
      queries.join('\n'),
    );
    assert.equal(connections(run)[0]?.upstream, `socks5://${NS_ADDR}:1080`);
    assert.equal(connections(run)[0]?.dst, `${A4}:8080`);
  });

  it("a rule of the user's decides first: refusing the name server makes resolution fail", async () => {
    const run = await world.graft(['curl', '-sS', '--max-time', '5', 'http://a.test:8080/dns'], {
      graftArgs: ['--proxy', `socks5://${NS_ADDR}:1080`, '--rule', `${NS_ADDR}:53 proxy`],
    });
    assert.equal(run.code, 6, run.stderr); // curl: could not resolve host
    const refused = run.records.filter((r) => r.event === 'refused');
    assert.ok(refused.length > 0);
    assert.match(String(refused[0]!.reason), /datagrams cannot go through a TCP proxy/);
    assert.equal(refused[0]!.errno, 'ENETUNREACH');
  });
});
