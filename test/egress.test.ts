/**
 * Egress control: --mark, --interface and --source send one program's
 * traffic out another way (uplink B) while the rest of the namespace keeps
 * using the main route (uplink A). See lab/uplinks.ts for the topology.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildGo } from './lab/build.js';
import { repoRoot } from './lab/paths.js';
import { connections, type GraftRun } from './lab/world.js';
import { DEST4, DEST6, SRC_A4, SRC_A4_ALT, SRC_A6_ALT, SRC_B4, SRC_B6, UP_B, Uplinks } from './lab/uplinks.js';
import { LAB, needs } from './lab/capabilities.js';

type Family = 4 | 6;
type Client = 'curl' | 'go' | 'python3';
const MODES = ['inplace', 'proxy'] as const;

const dest = (f: Family): string => (f === 4 ? DEST4 : DEST6);
const urlHost = (f: Family): string => (f === 4 ? DEST4 : `[${DEST6}]`);

describe('egress: mark, interface, source', { skip: needs(...LAB, 'curl', 'go') }, () => {
  let lab: Uplinks;
  let goclient: string;
  before(async () => {
    goclient = buildGo('goclient');
    lab = await new Uplinks().start();
  });
  after(() => lab?.destroy());

  /** A one-request program of each kind; prints the server's body. */
  function program(client: Client, f: Family, path: string): string[] {
    const url = `http://${urlHost(f)}:8080/${path}`;
    switch (client) {
      case 'curl':
        return ['curl', '-sS', '--max-time', '10', url];
      case 'go':
        return [goclient, '-get', '1', '-workers', '1', '-hosts', urlHost(f)];
      case 'python3':
        return ['python3', '-c', `import urllib.request; print(urllib.request.urlopen('${url}', timeout=10).read().decode(), end='')`];
    }
  }

  function body(client: Client, host: 'A' | 'B', path: string): string {
    return client === 'go' ? `name=${host} path=/g0\n` : `name=${host} path=/${path}\n`;
  }

  /** Runs `program` under graft and returns who answered and from which source the host saw it. */
  async function viaGraft(client: Client, f: Family, graftArgs: string[], path: string): Promise<{ run: GraftRun; seen: string[] }> {
    const mark = lab.events.length;
    const run = await lab.graft(program(client, f, path), { graftArgs });
    const seen = lab
      .since(mark)
      .filter((e) => e.service === 'http')
      .map((e) => `${e.name} ${e.remote}`);
    return { run, seen };
  }

  it('without graft the client reaches host A', async () => {
    for (const f of [4, 6] as const) {
      const mark = lab.events.length;
      const run = await lab.native(program('curl', f, 'native'));
      assert.equal(run.stdout, 'name=A path=/native\n', run.stderr);
      assert.equal(lab.since(mark)[0]?.name, 'A');
    }
  });

  const cases: { option: string; args: (f: Family) => string[]; host: 'A' | 'B'; source: (f: Family) => string }[] = [
    { option: '--mark 0x10', args: () => ['--mark', '0x10'], host: 'B', source: (f) => (f === 4 ? SRC_B4 : SRC_B6) },
    { option: `--interface ${UP_B}`, args: () => ['--interface', UP_B], host: 'B', source: (f) => (f === 4 ? SRC_B4 : SRC_B6) },
    { option: '--source (uplink B address)', args: (f) => ['--source', f === 4 ? SRC_B4 : SRC_B6], host: 'B', source: (f) => (f === 4 ? SRC_B4 : SRC_B6) },
    {
      option: '--source (second address on uplink A)',
      args: (f) => ['--source', f === 4 ? SRC_A4_ALT : SRC_A6_ALT],
      host: 'A',
      source: (f) => (f === 4 ? SRC_A4_ALT : SRC_A6_ALT),
    },
  ];

  for (const c of cases) {
    for (const mode of MODES) {
      it(`${c.option}, ${mode} mode: curl, the static Go binary and python3, IPv4 and IPv6`, async () => {
        for (const client of ['curl', 'go', 'python3'] as const) {
          for (const f of [4, 6] as const) {
            const what = `${client} IPv${f}`;
            const path = `${mode}-${client}-${f}`;
            const { run, seen } = await viaGraft(client, f, ['--mode', mode, ...c.args(f)], path);
            assert.equal(run.code, 0, `${what}: ${run.stderr}`);
            assert.equal(run.stdout, body(client, c.host, path), what);
            assert.deepEqual(seen, [`${c.host} ${c.source(f)}`], what);
            const conns = connections(run);
            assert.equal(conns.length, 1, `${what}: ${JSON.stringify(run.records)}`);
            assert.equal(conns[0]!.action, mode, what);
            assert.equal(conns[0]!.dst, f === 4 ? `${DEST4}:8080` : `[${DEST6}]:8080`, what);
            assert.equal(conns[0]!.error, undefined, what);
          }
        }
      });
    }
  }

  it('auto mode is in place when only egress options are given', async () => {
    const { run, seen } = await viaGraft('curl', 4, ['--mark', '0x10'], 'auto');
    assert.equal(run.stdout, 'name=B path=/auto\n');
    assert.deepEqual(seen, [`B ${SRC_B4}`]);
    assert.equal(connections(run)[0]?.action, 'inplace');
    assert.equal(connections(run)[0]?.egress, 'mark 0x10');
  });

  it('the program sees its real peer and its source (marked route, --source), in place and through the proxy', async () => {
    const code = `import socket; s = socket.create_connection(('${DEST4}', 7000)); print(s.recv(16).decode().strip(), s.getpeername()[0], s.getsockname()[0])`;
    const inplace = await lab.graft(['python3', '-c', code], { graftArgs: ['--mark', '0x10', '--mode', 'inplace'] });
    assert.equal(inplace.stdout, `B ${DEST4} ${SRC_B4}\n`, inplace.stderr);
    const proxied = await lab.graft(['python3', '-c', code], { graftArgs: ['--mark', '0x10', '--mode', 'proxy'] });
    assert.equal(proxied.stdout, `B ${DEST4} ${SRC_B4}\n`, proxied.stderr);
    // the rule's source address, through the proxy
    const sourced = await lab.graft(['python3', '-c', code], { graftArgs: ['--source', SRC_A4_ALT, '--mode', 'proxy'] });
    assert.equal(sourced.stdout, `A ${DEST4} ${SRC_A4_ALT}\n`, sourced.stderr);
  });

  it('an ungrafted program running at the same time still goes via A', async () => {
    const slowGets = (tag: string): string => `for i in 1 2 3 4 5 6 7 8; do curl -sS http://${DEST4}:8080/${tag}$i; sleep 0.05; done`;
    const mark = lab.events.length;
    const [grafted, plain] = await Promise.all([
      lab.graft(['sh', '-c', slowGets('g')], { graftArgs: ['--mark', '0x10'] }),
      lab.native(['sh', '-c', slowGets('n')]),
    ]);
    assert.equal(grafted.stdout, [1, 2, 3, 4, 5, 6, 7, 8].map((i) => `name=B path=/g${i}\n`).join(''));
    assert.equal(plain.stdout, [1, 2, 3, 4, 5, 6, 7, 8].map((i) => `name=A path=/n${i}\n`).join(''));
    const events = lab.since(mark).filter((e) => e.service === 'http');
    assert.equal(events.filter((e) => e.name === 'B' && e.remote === SRC_B4).length, 8);
    assert.equal(events.filter((e) => e.name === 'A' && e.remote === SRC_A4).length, 8);
  });

  it('the connection to an upstream proxy carries the egress options', { skip: needs('microsocks') }, async () => {
    // Only host B runs a SOCKS proxy, on the address both hosts own: only a
    // connection that takes uplink B finds it.
    const socks = lab.lab.adopt(lab.hostB.spawn('microsocks', ['-i', DEST4, '-p', '1080']));
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const proxyArgs = ['--mode', 'proxy', '--proxy', `socks5://${DEST4}:1080`, '--connect-timeout', '2s'];
      const viaB = await lab.graft(program('curl', 4, 'upstream-marked'), { graftArgs: [...proxyArgs, '--mark', '0x10'] });
      assert.equal(viaB.stdout, 'name=B path=/upstream-marked\n', viaB.stderr);
      assert.equal(connections(viaB)[0]?.upstream, `socks5://${DEST4}:1080`);
      const viaIface = await lab.graft(program('curl', 4, 'upstream-iface'), { graftArgs: [...proxyArgs, '--interface', UP_B] });
      assert.equal(viaIface.stdout, 'name=B path=/upstream-iface\n', viaIface.stderr);
      const unmarked = await lab.graft(program('curl', 4, 'upstream-plain'), { graftArgs: proxyArgs });
      assert.notEqual(unmarked.code, 0, 'without the mark the proxy (on host B) is not reached');
      assert.match(String(connections(unmarked)[0]?.error), /socks5:\/\/198\.51\.100\.7:1080: cannot connect to the proxy: ECONNREFUSED/);
    } finally {
      socks.kill('SIGKILL');
    }
  });

  describe('UDP follows the same route', () => {
    const udp = (f: Family, how: 'sendto' | 'connect' | 'bind'): string[] => [
      'python3',
      '-c',
      [
        'import socket',
        `fam = socket.AF_INET6 if ${f === 6 ? 'True' : 'False'} else socket.AF_INET`,
        's = socket.socket(fam, socket.SOCK_DGRAM)',
        's.settimeout(5)',
        `how, dst = '${how}', ('${dest(f)}', 7000)`,
        "if how == 'connect': s.connect(dst); s.send(b'hi')",
        "elif how == 'bind': s.bind(('::' if fam == socket.AF_INET6 else '0.0.0.0', 0)); s.sendto(b'hi', dst)",
        "else: s.sendto(b'hi', dst)",
        'print(s.recv(64).decode().strip())',
      ].join('\n'),
    ];

    async function udpRun(f: Family, how: 'sendto' | 'connect' | 'bind', graftArgs: string[] | undefined): Promise<{ out: string; seen: string[] }> {
      const mark = lab.events.length;
      const run = graftArgs ? await lab.graft(udp(f, how), { graftArgs }) : await lab.native(udp(f, how));
      assert.equal(run.code, 0, run.stderr);
      const seen = lab
        .since(mark)
        .filter((e) => e.service === 'udp')
        .map((e) => `${e.name} ${e.remote}`);
      return { out: run.stdout, seen };
    }

    it('ungrafted UDP reaches A; under --mark 0x10 it reaches B (sendto, connected, bound; IPv4 and IPv6)', async () => {
      assert.deepEqual(await udpRun(4, 'sendto', undefined), { out: 'A\n', seen: [`A ${SRC_A4}`] });
      for (const f of [4, 6] as const) {
        for (const how of ['sendto', 'connect', 'bind'] as const) {
          for (const mode of MODES) {
            const r = await udpRun(f, how, ['--mark', '0x10', '--mode', mode]);
            assert.deepEqual(r, { out: 'B\n', seen: [`B ${f === 4 ? SRC_B4 : SRC_B6}`] }, `${how} IPv${f} ${mode}`);
          }
        }
      }
    });

    it('under --interface and --source too', async () => {
      for (const f of [4, 6] as const) {
        const src = f === 4 ? SRC_B4 : SRC_B6;
        for (const how of ['sendto', 'connect', 'bind'] as const) {
          assert.deepEqual(await udpRun(f, how, ['--interface', UP_B]), { out: 'B\n', seen: [`B ${src}`] }, `--interface ${how} IPv${f}`);
          assert.deepEqual(await udpRun(f, how, ['--source', src]), { out: 'B\n', seen: [`B ${src}`] }, `--source ${how} IPv${f}`);
        }
      }
    });
  });

  it('rules route destinations differently in one run, TCP and UDP alike', async () => {
    // The HTTP port of DEST4 by interface, of DEST6 by mark; port 7000 of
    // DEST4 by source, TCP and UDP (all uplink B); UDP to DEST6 refused.
    const rules = [`${DEST4}:8080 interface ${UP_B}`, `[${DEST6}]:8080 mark 0x10`, `[${DEST6}] refuse EACCES`, `${DEST4}:7000 source ${SRC_B4}`];
    const script = [
      'import socket, urllib.request',
      `print(urllib.request.urlopen('http://${DEST4}:8080/r1', timeout=5).read().decode().strip())`,
      `print(urllib.request.urlopen('http://[${DEST6}]:8080/r2', timeout=5).read().decode().strip())`,
      `t = socket.create_connection(('${DEST4}', 7000), timeout=5); print('tcp7000', t.recv(16).decode().strip())`,
      `u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5); u.sendto(b'x', ('${DEST4}', 7000)); print('udp4', u.recv(16).decode().strip())`,
      `v = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)`,
      'try:',
      `    v.sendto(b'x', ('${DEST6}', 7000)); print('udp6 sent')`,
      'except OSError as e:',
      "    print('udp6', e.errno)",
    ].join('\n');
    const mark = lab.events.length;
    const run = await lab.graft(['python3', '-c', script], { graftArgs: rules.flatMap((r) => ['--rule', r]) });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'name=B path=/r1\nname=B path=/r2\ntcp7000 B\nudp4 B\nudp6 13\n');
    const seen = lab.since(mark).map((e) => `${e.service} ${e.name} ${e.remote}`);
    assert.deepEqual(seen.sort(), [`http B ${SRC_B4}`, `http B ${SRC_B6}`, `name B ${SRC_B4}`, `udp B ${SRC_B4}`].sort());
    const conns = connections(run);
    assert.deepEqual(
      conns.map((c) => [c.dst, c.action, c.rule]).sort(),
      [
        [`${DEST4}:7000`, 'inplace', `--rule 4: ${rules[3]}`],
        [`${DEST4}:8080`, 'inplace', `--rule 1: ${rules[0]}`],
        [`[${DEST6}]:8080`, 'inplace', `--rule 2: ${rules[1]}`],
      ].sort(),
    );
    const refused = run.records.filter((r) => r.event === 'refused');
    assert.deepEqual(
      refused.map((r) => [r.dst, r.errno, r.rule]),
      [[`[${DEST6}]:7000`, 'EACCES', `--rule 3: ${rules[2]}`]],
    );
  });

  describe('a destination the options cannot apply to fails, never goes out another way', () => {
    for (const mode of MODES) {
      it(`IPv6 destination with only an IPv4 --source (${mode} mode)`, async () => {
        const mark = lab.events.length;
        const run = await lab.graft(program('curl', 6, 'nosrc'), { graftArgs: ['--source', SRC_B4, '--mode', mode] });
        assert.notEqual(run.code, 0);
        assert.deepEqual(lab.since(mark), [], 'nothing reached either host');
        const why = run.records.find((r) => r.error !== undefined || r.event === 'refused');
        assert.ok(why, JSON.stringify(run.records));
        assert.match(String(why.error ?? why.reason), /no IPv6 --source address for this destination/);
      });
    }

    it('UDP to an IPv6 destination with only an IPv4 --source', async () => {
      const mark = lab.events.length;
      const run = await lab.graft(udp6Send(), { graftArgs: ['--source', SRC_B4] });
      assert.match(run.stdout, /^error 101\n$/, run.stderr); // ENETUNREACH
      assert.deepEqual(lab.since(mark), []);
    });

    function udp6Send(): string[] {
      return [
        'python3',
        '-c',
        `import socket\ns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\ntry:\n  s.sendto(b'x', ('${DEST6}', 7000))\n  print('sent')\nexcept OSError as e:\n  print('error', e.errno)`,
      ];
    }
  });

  describe('start-up checks (exit 2, nothing runs)', () => {
    it('an unknown interface lists the interfaces that exist', async () => {
      const run = await lab.graft(['true'], { graftArgs: ['--interface', 'wg9'] });
      assert.equal(run.code, 2);
      assert.equal(run.stderr, `graft: --interface wg9: no such network interface (interfaces here: lo, ${'upA'}, ${UP_B})\n`);
    });

    it('--mark without CAP_NET_ADMIN names the capability and how to grant it', { skip: needs('setpriv') }, async () => {
      const graft = join(repoRoot, 'bin/graft');
      const run = await lab.native([
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        graft,
        '--mark',
        '0x10',
        '--',
        'curl',
        `http://${DEST4}:8080/`,
      ]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /^graft: --mark needs the CAP_NET_ADMIN capability .*Run graft as root, or grant .*setcap cap_net_admin\+ep.*\n$/);
      assert.equal(run.stdout, '', 'the program did not run');
    });

    it('a --source that is not a local address', async () => {
      const run = await lab.graft(['true'], { graftArgs: ['--source', '198.51.100.99'] });
      assert.equal(run.code, 2);
      assert.equal(run.stderr, 'graft: --source 198.51.100.99: not an address of this machine\n');
    });

    it('bad values', async () => {
      for (const [args, msg] of [
        [['--mark', '0x1g'], /^graft: --mark: '0x1g' is not a 32-bit mark/],
        [['--mark', '4294967296'], /is not a 32-bit mark/],
        [['--source', 'example.org'], /'example\.org' is not an IPv4 or IPv6 address/],
        [['--source', SRC_B4, '--source', SRC_A4], /--source: give at most one IPv4 and one IPv6 address/],
        [['--mode', 'fast'], /^graft: --mode: 'fast' is not one of auto, proxy, inplace\n$/],
        [['--source', '::1%lo'], /^graft: --source 1: '::1%lo': an IPv6 zone \(%IF\) is not accepted/],
        [['--interface', 'a/b'], /^graft: --interface: 'a\/b' is not an interface name/],
      ] as const) {
        const run = await lab.graft(['true'], { graftArgs: [...args] });
        assert.equal(run.code, 2, args.join(' '));
        assert.match(run.stderr, msg);
      }
    });
  });
});
