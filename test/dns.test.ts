/**
 * With --dns off (graft answers no DNS; test/dns-names.test.ts is the
 * rest), names resolve under an upstream proxy: the system's name servers
 * (the program's resolv.conf) are reached directly on port 53 when the
 * default goes through a proxy, which carries TCP only. The client namespace gets
 * its own resolv.conf the way iproute2 provides one (/etc/netns/NAME/),
 * removed with the lab.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { A4, A6, World, connections } from './lab/world.js';
import { repoRoot } from './lab/paths.js';
import { LAB, needs } from './lab/capabilities.js';

const NS_ADDR = '192.0.2.2';

/** graft answering no DNS, under the default proxy */
const OFF = ['--dns', 'off', '--proxy', `socks5://${NS_ADDR}:1080`];

describe('DNS under an upstream proxy, --dns off', { skip: needs(...LAB, 'curl', 'microsocks') }, () => {
  let world: World;
  let netnsDir: string;
  const queries: string[] = [];
  before(async () => {
    world = await new World().start();
    netnsDir = join('/etc/netns', world.client.name);
    mkdirSync(netnsDir, { recursive: true });
    // one try, one second: a resolver whose queries go nowhere gives up quickly
    writeFileSync(join(netnsDir, 'resolv.conf'), `nameserver ${NS_ADDR}\noptions timeout:1 attempts:1\n`);
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
    const run = await world.graft(['curl', '-sS', '--max-time', '5', 'http://a.test:8080/dns'], { graftArgs: OFF });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'name=A path=/dns\n');
    assert.ok(
      queries.slice(mark).some((q) => q === 'query a.test 1 from 192.0.2.1'),
      queries.join('\n'),
    );
    assert.equal(connections(run)[0]?.upstream, `socks5://${NS_ADDR}:1080`);
    assert.equal(connections(run)[0]?.dst, `${A4}:8080`);
  });

  it("a rule of the user's decides first: proxying the name server makes resolution fail, and no query leaves", async () => {
    const mark = queries.length;
    const run = await world.graft(['curl', '-sS', '--max-time', '5', 'http://a.test:8080/dns'], {
      graftArgs: [...OFF, '--rule', `${NS_ADDR}:53 proxy`],
    });
    assert.equal(run.code, 6, run.stderr); // curl: could not resolve host
    assert.deepEqual(queries.slice(mark), [], 'no query reached the name server');
    // the resolver's connect went through; what it sent stayed on this machine
    const kept = run.records.filter((r) => r.event === 'kept-local');
    assert.ok(kept.length > 0, JSON.stringify(run.records));
    assert.equal(kept[0]!.dst, `${NS_ADDR}:53`);
    assert.match(String(kept[0]!.reason), /datagrams cannot go through a TCP proxy/);
  });

  // getaddrinfo orders addresses (RFC 6724) by connecting a UDP socket to
  // each and reading the source address the kernel picked: that connect
  // must go through, with the same answer as natively, and send nothing.
  it('a UDP connect to a proxied destination learns its source address as natively, and what it sends stays here', async () => {
    const probe = (host: string, family: string): string[] => [
      'python3',
      '-c',
      [
        'import socket, struct',
        `s = socket.socket(socket.${family}, socket.SOCK_DGRAM)`,
        `s.connect(('${host}', 53))`,
        'print(s.getsockname()[0], flush=True)',
        // a real query for a.test: the name server logs any that arrives
        // (kept on this machine, an IPv4 datagram is looped back and dropped; an IPv6 one fails ENETUNREACH)
        'try:',
        "  s.send(struct.pack('!HHHHHH', 7, 0x100, 1, 0, 0, 0) + b'\\x06a-kept\\x04test\\x00' + struct.pack('!HH', 1, 1))",
        'except OSError as e:',
        "  print('send:', e.strerror, file=__import__('sys').stderr)",
      ].join('\n'),
    ];
    const mark = queries.length;
    for (const [host, family] of [
      [NS_ADDR, 'AF_INET'],
      [A4, 'AF_INET'],
      [A6, 'AF_INET6'],
    ] as const) {
      const native = await world.native(probe(host, family));
      assert.equal(native.code, 0, native.stderr);
      const run = await world.graft(probe(host, family), { graftArgs: [...OFF, '--rule', `${NS_ADDR}:53 proxy`] });
      assert.equal(run.code, 0, `${host}: ${run.stderr}`);
      assert.equal(run.stdout, native.stdout, `source address for ${host}`);
    }
    await new Promise((r) => setTimeout(r, 300));
    // the native run's query arrives; graft's never does
    assert.deepEqual(
      queries.slice(mark).filter((q) => q.startsWith('query a-kept.test')),
      ['query a-kept.test 1 from 192.0.2.1'],
    );
  });
});
