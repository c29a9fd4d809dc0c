/**
 * The tracer's side of graft answering DNS (issue 14), driven directly
 * through startTracer with a table of its own, so it does not depend on
 * graft's DNS server: a real dnsmasq on 127.0.0.1:PORT and [::1]:PORT in
 * the client namespace stands in for it. Rule 0 sends every datagram to
 * port 53 there (udp dns); rule 1 is a by_name rule that refuses TCP; rule
 * 2 passes everything.
 *
 * The namespace's resolv.conf names 203.0.113.9, which the lab routes to a
 * host that drops it: nothing answers there, so every answer under the
 * tracer proves the query was captured, and dnsmasq's log shows it
 * arrived. Each client is compared with the same client run natively
 * against a dnsmasq really listening on 203.0.113.9:53 (and
 * [2001:db8:2::53]:53) with the same answers, on the host the client
 * routes those to, before the tracer runs (then that server and its
 * addresses are gone again).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startTracer, type RunningTracer } from '../src/tracer/supervisor.js';
import { encodeTable } from '../src/tracer/table.js';
import { RecordDecoder, type TracerRecord } from '../src/tracer/channel.js';
import type { RuleMessage } from '../src/tracer/messages.js';
import { A4, B4, BLACKHOLE4, World } from './lab/world.js';
import { repoRoot } from './lab/paths.js';
import { LAB, missing, needs } from './lab/capabilities.js';
import { buildC, buildGo, buildMusl } from './lab/build.js';

/** graft's DNS server, as the tracer's table names it */
const PORT = 5300;
/** the name servers of the client's resolv.conf (the IPv6 one for the probes only) */
const NS4 = BLACKHOLE4;
const NS6 = '2001:db8:2::53';
const NAME = 'corp.example';
const BY_NAME_RULE = 1;

const base = { kind: 'rule', family: 'any', prefix: 0, explicit: false, direct: false, relay: false } as const;
const RULES: readonly RuleMessage[] = [
  { ...base, portLo: 53, portHi: 53, byName: false, tcp: 'pass', udp: 'dns' },
  { ...base, portLo: 0, portHi: 65535, byName: true, tcp: 'refuse', udp: 'pass', error: 'ECONNREFUSED' },
  { ...base, portLo: 0, portHi: 65535, byName: false, tcp: 'pass', udp: 'pass' },
];
const TABLE = encodeTable(RULES, [], { port4: PORT, port6: PORT });

interface Traced {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly records: TracerRecord[];
}

/** dnsmasq answering NAME with the lab's addresses, logging every query. */
function dnsmasqArgs(listen: string, port: number, log: string): string[] {
  return [
    '--keep-in-foreground',
    '--no-resolv',
    '--no-hosts',
    `--address=/${NAME}/192.0.2.77`,
    `--address=/${NAME}/2001:db8:77::7`,
    '--log-queries',
    `--log-facility=${log}`,
    `--listen-address=${listen}`,
    '--bind-interfaces',
    `--port=${port}`,
    '--pid-file=',
    '--user=root',
  ];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DNS capture in the tracer', { skip: needs(...LAB, 'dnsmasq', 'dig', 'musl-gcc') }, () => {
  let world: World;
  let netnsDir: string;
  let wrapper: string;
  let log: string;
  /** each client's native output, by client */
  const native = new Map<string, string>();

  /** Runs `argv` under the tracer in the client namespace (and its resolv.conf). */
  function traced(argv: readonly string[], drive?: (t: RunningTracer, records: TracerRecord[]) => Promise<void>): Promise<Traced> {
    const saved = process.env.GRAFT_TRACER;
    process.env.GRAFT_TRACER = wrapper;
    let t: RunningTracer;
    try {
      t = startTracer({ program: argv[0]!, args: argv.slice(1), table: TABLE, seed: 1, stdio: 'pipe', relaySignals: false });
    } finally {
      if (saved === undefined) delete process.env.GRAFT_TRACER;
      else process.env.GRAFT_TRACER = saved;
    }
    const records: TracerRecord[] = [];
    const decoder = new RecordDecoder(
      (r) => records.push(r),
      (e) => assert.fail(e),
    );
    t.channel.on('data', (d: Buffer) => decoder.push(d));
    let stdout = '';
    let stderr = '';
    t.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    if (!drive) t.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => t.child.kill('SIGKILL'), 30_000);
    return (async () => {
      if (drive) await drive(t, records);
      else t.child.stdin!.end();
      const code = await t.exited;
      clearTimeout(timer);
      return { code, stdout, stderr, records };
    })();
  }

  /** The queries for NAME dnsmasq logged since `mark` (a length of its log). */
  function queriesSince(mark: number): string[] {
    return readFileSync(log, 'utf8')
      .slice(mark)
      .split('\n')
      .filter((l) => l.includes(`] ${NAME} from`));
  }
  const logMark = (): number => (existsSync(log) ? readFileSync(log, 'utf8').length : 0);

  /** Waits until dnsmasq answers at `server`:`port` in the client namespace. */
  async function answering(server: string, port: number): Promise<void> {
    for (let i = 0; i < 50; i++) {
      try {
        if (world.client.run('dig', '+short', '+time=1', '+tries=1', `@${server}`, '-p', String(port), NAME).includes('192.0.2.77')) return;
      } catch {
        /* not yet */
      }
      await sleep(100);
    }
    throw new Error(`dnsmasq does not answer at ${server} port ${port}`);
  }

  const CLIENTS: Record<string, () => string[]> = {
    'getent ahosts (glibc)': () => ['getent', 'ahosts', NAME],
    'python getaddrinfo (glibc)': () => ['python3', '-c', `import socket\nfor a in socket.getaddrinfo('${NAME}', 80): print(a[0].name, a[1].name, a[4][0])`],
    'dig +short': () => ['dig', '+short', NAME],
    'dig +notcp AAAA': () => ['dig', '+notcp', '+short', NAME, 'AAAA'],
    'node dns.resolve4 (c-ares) and dns.lookup': () => [
      process.execPath,
      '-e',
      `const d = require('dns').promises; (async () => { console.log(await d.resolve4('${NAME}')); console.log(await d.lookup('${NAME}', { all: true })); })().catch((e) => { console.error(e); process.exit(1); })`,
    ],
    'static musl getaddrinfo': () => [buildMusl('muslresolve'), NAME],
    ...(missing('go') ? {} : { 'static Go net.LookupHost': () => [buildGo('goclient'), '-lookup', NAME] }),
  };

  /** dnsprobe: each way of sending and reading a query, for each name server form */
  const PROBES: string[][] = [];
  for (const server of [NS4, NS6, `::ffff:${NS4}`])
    for (const send of ['connect', 'sendto', 'sendmsg', 'sendmmsg'])
      for (const recv of ['recvfrom', 'recvmsg', 'recvmmsg', 'recvfrom-short']) PROBES.push([send, recv, server, '53', NAME]);
  let dnsprobe: string;

  before(async () => {
    world = await new World().start();
    netnsDir = join('/etc/netns', world.client.name);
    mkdirSync(netnsDir, { recursive: true });
    writeFileSync(join(netnsDir, 'resolv.conf'), `nameserver ${NS4}\noptions timeout:1 attempts:1\n`);
    // the tracer runs in the client namespace too (names.c asks its
    // routing), through `ip netns exec`, which also gives it the resolv.conf
    wrapper = world.path('tracer-in-netns');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${world.client.name} ${join(repoRoot, 'build', 'graft-tracer')} "$@"\n`);
    chmodSync(wrapper, 0o755);
    log = world.path('dnsmasq.log');
    world.lab.adopt(world.client.spawn('dnsmasq', dnsmasqArgs('127.0.0.1,::1', PORT, log)));
    await answering('127.0.0.1', PORT);
    await answering('::1', PORT);
    dnsprobe = buildC('dnsprobe');

    // the native runs: a real server at the name servers' addresses, on
    // the host the client routes them to
    world.lab.addLocal(world.host, `${NS4}/32`, `${NS6}/128`);
    const real = world.lab.adopt(world.host.spawn('dnsmasq', dnsmasqArgs(`${NS4},${NS6}`, 53, world.path('native.log'))));
    try {
      await answering(NS4, 53);
      await answering(NS6, 53);
      for (const [name, argv] of Object.entries(CLIENTS)) {
        const run = await world.native(argv());
        assert.equal(run.code, 0, `${name} natively: ${run.stderr}`);
        native.set(name, run.stdout);
      }
      for (const p of PROBES) {
        const run = await world.native([dnsprobe, ...p]);
        assert.equal(run.code, 0, `dnsprobe ${p.join(' ')} natively: ${run.stderr}`);
        native.set(`probe ${p.join(' ')}`, run.stdout);
      }
    } finally {
      real.kill('SIGKILL');
      await once(real, 'exit');
      world.host.ip('addr', 'del', `${NS4}/32`, 'dev', 'lo');
      world.host.ip('-6', 'addr', 'del', `${NS6}/128`, 'dev', 'lo');
    }
  });

  after(() => {
    world?.destroy();
    if (netnsDir) rmSync(netnsDir, { recursive: true, force: true });
  });

  it('nothing answers at the name server without the tracer', async () => {
    const run = await world.native(['dig', '+short', '+time=1', '+tries=1', NAME]);
    assert.notEqual(run.code, 0, run.stdout);
  });

  for (const name of Object.keys(CLIENTS)) {
    it(`${name}: the same answer as natively, from graft's DNS server`, async () => {
      const mark = logMark();
      const run = await traced(CLIENTS[name]!());
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, native.get(name));
      assert.ok(queriesSince(mark).length > 0, 'dnsmasq saw the query');
      const q = run.records.filter((r) => r.kind === 'dns-socket');
      assert.ok(q.length > 0, JSON.stringify(run.records));
      for (const r of q) assert.deepEqual([r.dstIp, r.dstPort, r.family], [NS4, 53, 'ip4']);
    });
  }

  it('dnsprobe: every way of sending and reading shows what it shows natively (the local port aside)', async () => {
    const port = /^(local \S+) \d+/m;
    for (const p of PROBES) {
      const run = await traced([dnsprobe, ...p]);
      const what = `dnsprobe ${p.join(' ')}`;
      assert.equal(run.code, 0, `${what}: ${run.stderr}`);
      assert.equal(run.stdout.replace(port, '$1 N'), native.get(`probe ${p.join(' ')}`)!.replace(port, '$1 N'), what);
      assert.match(run.stdout, /^answer 192\.0\.2\.77$/m, what);
    }
  });

  it('one Q record per socket, with its local port and the server it meant', async () => {
    for (const [server, family, dst] of [
      [NS4, 'ip4', NS4],
      [NS6, 'ip6', NS6],
      [`::ffff:${NS4}`, 'ip4', NS4],
    ] as const) {
      const run = await traced([dnsprobe, 'connect', 'recvfrom', server, '53', NAME]);
      assert.equal(run.code, 0, run.stderr);
      const local = Number(/^local \S+ (\d+)/m.exec(run.stdout)?.[1]);
      const q = run.records.filter((r) => r.kind === 'dns-socket');
      assert.equal(q.length, 1, JSON.stringify(run.records));
      assert.deepEqual(
        { family: q[0]!.family, localPort: q[0]!.localPort, dstIp: q[0]!.dstIp, dstPort: q[0]!.dstPort },
        { family, localPort: local, dstIp: dst, dstPort: 53 },
      );
    }
  });

  it('a 32-bit program: connect and recvfrom, through socketcall and through the direct calls', { skip: needs('i386-exec') }, async () => {
    for (const [variant, flags] of [
      ['i386-socketcall', ['-m32']],
      ['i386-direct', ['-m32', '-DI386_DIRECT']],
    ] as const) {
      const probe = buildC('dnsprobe', flags, variant);
      for (const server of [NS4, `::ffff:${NS4}`]) {
        const argv = [probe, 'connect', 'recvfrom', server, '53', NAME];
        const run = await traced(argv);
        const what = `${variant} ${server}`;
        assert.equal(run.code, 0, `${what}: ${run.stderr}`);
        const want = native.get(`probe connect recvfrom ${server} 53 ${NAME}`)!;
        const port = /^(local \S+) \d+/m;
        assert.equal(run.stdout.replace(port, '$1 N'), want.replace(port, '$1 N'), what);
      }
    }
  });

  it('a by_name rule matches an address once a names message lists it, and no more once it is forgotten', async () => {
    const script = [
      'import errno, socket, sys',
      'def dial(a):',
      '    s = socket.socket()',
      '    s.settimeout(5)',
      '    try:',
      '        s.connect((a, 7000))',
      "        return 'ok'",
      '    except OSError as e:',
      '        return errno.errorcode.get(e.errno, str(e))',
      '    finally:',
      '        s.close()',
      'for line in sys.stdin:',
      "    print(' '.join(a + '=' + dial(a) for a in line.split()), flush=True)",
    ].join('\n');
    const seen: string[] = [];
    const flips: string[] = [];
    const run = await traced(['python3', '-c', script], async (t) => {
      const lines = createInterface({ input: t.child.stdout! })[Symbol.asyncIterator]();
      const ask = async (): Promise<string> => {
        t.child.stdin!.write(`${A4} ${B4}\n`);
        const next = await lines.next();
        return next.done ? 'EOF' : next.value;
      };
      seen.push(await ask());
      // written just before the program connects: in force all the same
      t.control({ kind: 'names', ip: A4, rules: String(BY_NAME_RULE) });
      seen.push(await ask());
      t.control({ kind: 'names', ip: A4 });
      seen.push(await ask());
      // a v4-mapped entry is the IPv4 address's
      t.control({ kind: 'names', ip: `::ffff:${B4}`, rules: String(BY_NAME_RULE) });
      seen.push(await ask());
      t.control({ kind: 'names', ip: B4 });
      // each message is in force at the very next connect, every time
      for (let i = 0; i < 100; i++) {
        t.control({ kind: 'names', ip: A4, rules: String(BY_NAME_RULE) });
        flips.push(await ask());
        t.control({ kind: 'names', ip: A4 });
        flips.push(await ask());
      }
      t.child.stdin!.end();
    });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(seen, [`${A4}=ok ${B4}=ok`, `${A4}=ECONNREFUSED ${B4}=ok`, `${A4}=ok ${B4}=ok`, `${A4}=ok ${B4}=ECONNREFUSED`]);
    const wrong = flips.filter((line, i) => line !== (i % 2 === 0 ? `${A4}=ECONNREFUSED ${B4}=ok` : `${A4}=ok ${B4}=ok`));
    assert.deepEqual(wrong, []);
    assert.equal(flips.length, 200);
    const refused = run.records.filter((r) => r.kind === 'failed');
    assert.deepEqual(
      refused.slice(0, 2).map((r) => [r.dstIp, r.rule, r.error]),
      [
        [A4, BY_NAME_RULE, 'ECONNREFUSED'],
        [B4, BY_NAME_RULE, 'ECONNREFUSED'],
      ],
    );
    assert.equal(refused.length, 102);
  });
});
