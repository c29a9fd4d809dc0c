/**
 * A proxied connect behaves as a native one: every test runs the same client
 * natively and under graft in the same lab and compares what the program
 * saw (errno, poll's answer, SO_ERROR, the socket's TCP state, exit status,
 * exception class) and when (within the tolerance each test states).
 *
 * The lab is the standard World (lab/world.ts) plus, on the host:
 *   SILENT4, SILENT6      local addresses whose TCP segments an nft rule drops:
 *                         a host that never answers a SYN
 *   ICMP_HOST4 / _NET4 /  local addresses an nft rule answers with ICMP host
 *   _ADMIN4               unreachable / net unreachable / admin prohibited
 * and, in the client namespace (where graft's own proxy dials too):
 *   LOCAL_UNREACH4/6      an `ip route add unreachable` route
 *   LOCAL_PROHIBIT4       an `ip route add prohibit` route
 * A closed port is A4:7999 (the host has the address, nothing listens: RST).
 * Nothing leaves the machine: every address is a documentation address
 * inside the lab's namespaces.
 *
 * FAITHFUL_SELF_CHECK=1 runs the graft side in graft's in-place mode (the
 * program's own socket goes to the destination: native already), to check
 * the comparisons themselves; the upstream-proxy rows are skipped then.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildC, buildGo } from './lab/build.js';
import { LAB, needs } from './lab/capabilities.js';
import { ProxyHost } from './lab/proxies.js';
import { A4, World, type GraftRun } from './lab/world.js';

const CLOSED = 7999;
const SILENT4 = '198.51.100.9';
const SILENT6 = '2001:db8:2::9';
const ICMP_HOST4 = '198.51.100.10';
const ICMP_NET4 = '198.51.100.11';
const ICMP_ADMIN4 = '198.51.100.12';
const LOCAL_UNREACH4 = '203.0.113.50';
const LOCAL_PROHIBIT4 = '203.0.113.51';
const LOCAL_UNREACH6 = '2001:db8:3::50';
/** a name with a silent IPv6 address (listed first) and a working IPv4 one */
const HE_NAME = 'he.test';

const SELF_CHECK = process.env.FAITHFUL_SELF_CHECK === '1';
const SELF_CHECK_ARGS = SELF_CHECK ? ['--mode', 'inplace', '--mark', '0x10'] : [];

/** how far graft's times may be from native's (ms) */
// Timing is not what these tests measure (bench/ does): the tolerances
// only tell an immediate answer from one that waited for something, and
// the smallest such wait is TCP's first SYN retransmission, 1 s. They
// stay well under it, and well above what a loaded 2-core machine adds.
const TOL = {
  /** an immediate answer (RST, ICMP, a local route): the proxy's dial and the answer's way back */
  fast: 250,
  /** the same through an upstream proxy (its handshake and its own dial added) */
  fastUpstream: 350,
  /** the program's own timeout (SO_SNDTIMEO, poll, Python's): the kernel keeps it either way */
  timeout: 300,
  /** whole client runs (nc loops, happy eyeballs) */
  run: 500,
} as const;

/** what connprobe prints */
interface Probe {
  connect: string;
  connect_ms: number;
  poll: string;
  poll_ms: number;
  so_error: string;
  writable: boolean;
  state: string;
}

const parseProbe = (run: GraftRun, what: string): Probe => {
  try {
    return JSON.parse(run.stdout) as Probe;
  } catch {
    throw new Error(`${what}: connprobe printed ${JSON.stringify(run.stdout)} (exit ${run.code}) stderr ${run.stderr}`);
  }
};

/** what the program sees, without the times */
const seen = (p: Probe): Omit<Probe, 'connect_ms' | 'poll_ms'> => ({
  connect: p.connect,
  poll: p.poll,
  so_error: p.so_error,
  writable: p.writable,
  state: p.state,
});

/** Checks every row, all of them even after one fails (the report shows each), then fails with every failure. */
async function everyRow<T>(rows: readonly T[], check: (row: T) => Promise<void>): Promise<void> {
  const failures: string[] = [];
  for (const row of rows) {
    try {
      await check(row);
    } catch (err) {
      failures.push((err as Error).message);
    }
  }
  if (failures.length > 0) assert.fail(failures.join('\n---\n'));
}

const near = (got: number, want: number, tol: number, what: string): void => {
  assert.ok(Math.abs(got - want) <= tol, `${what}: ${got} ms under graft, ${want} ms natively (tolerance ${tol} ms)`);
};

/** sh: runs the command, then prints "rc=N ms=N" (its own wall time) on stderr's last line */
const timed = (cmd: string): string[] => ['sh', '-c', `s=$(date +%s%N); ${cmd}; rc=$?; e=$(date +%s%N); echo "rc=$rc ms=$(( (e - s) / 1000000 ))" >&2`];
const parseTimed = (run: GraftRun): { rc: number; ms: number } => {
  const m = /rc=(\d+) ms=(\d+)\s*$/.exec(run.stderr);
  assert.ok(m, `no timing line: exit ${run.code}, stderr ${run.stderr}`);
  return { rc: Number(m[1]), ms: Number(m[2]) };
};

/** python3: socket.create_connection with a timeout; prints {"result": class or "connected", "text", "ms"} */
const pyConnect = (host: string, port: number, timeout: number): string[] => [
  'python3',
  '-c',
  [
    'import json, socket, time',
    't = time.monotonic()',
    'try:',
    `  socket.create_connection(('${host}', ${port}), timeout=${timeout}); r, text = 'connected', ''`,
    'except Exception as e:',
    '  r, text = type(e).__name__, str(e)',
    "print(json.dumps({'result': r, 'text': text, 'ms': round((time.monotonic() - t) * 1000)}))",
  ].join('\n'),
];

/** The upstream paths: graft's --proxy arguments, and the proxy to start in the host namespace. */
const UPSTREAMS = [
  { label: 'SOCKS5 (microsocks)', need: 'microsocks', at: { addr: '198.51.100.50', port: 1080 }, scheme: 'socks5' },
  { label: 'SOCKS4 (dante)', need: 'danted', at: { addr: '198.51.100.51', port: 1080 }, scheme: 'socks4' },
  { label: 'HTTP CONNECT (tinyproxy)', need: 'tinyproxy', at: { addr: '198.51.100.52', port: 8888 }, scheme: 'http' },
] as const;

const NFT_RULES = `
table inet faithful {
  chain input {
    type filter hook input priority filter; policy accept;
    ip daddr ${SILENT4} meta l4proto tcp drop
    ip6 daddr ${SILENT6} meta l4proto tcp drop
    ip daddr ${ICMP_HOST4} meta l4proto tcp reject with icmp type host-unreachable
    ip daddr ${ICMP_NET4} meta l4proto tcp reject with icmp type net-unreachable
    ip daddr ${ICMP_ADMIN4} meta l4proto tcp reject with icmp type admin-prohibited
  }
}
`;

describe('a proxied connect behaves as a native one', { skip: needs(...LAB, 'nft', 'nc', 'curl', 'go') }, () => {
  let world: World;
  let connprobe: string;
  let goclient: string;
  let netnsDir: string | undefined;
  before(async () => {
    connprobe = buildC('connprobe');
    goclient = buildGo('goclient');
    world = new World();
    try {
      world.lab.addLocal(world.host, `${SILENT4}/32`, `${SILENT6}/128`, `${ICMP_HOST4}/32`, `${ICMP_NET4}/32`, `${ICMP_ADMIN4}/32`);
      const rules = world.path('faithful.nft');
      writeFileSync(rules, NFT_RULES);
      world.host.run('nft', '-f', rules);
      // every rejected SYN gets its ICMP answer (the default limit, one a second per peer, would make the answer come with a retransmission a second later)
      world.host.run('sysctl', '-qw', 'net.ipv4.icmp_ratelimit=0', 'net.ipv4.icmp_msgs_per_sec=100000');
      world.lab.route(world.client, 'unreachable', `${LOCAL_UNREACH4}/32`);
      world.lab.route(world.client, 'prohibit', `${LOCAL_PROHIBIT4}/32`);
      world.client.ip('-6', 'route', 'add', 'unreachable', `${LOCAL_UNREACH6}/128`);
      // the name for happy eyeballs: iproute2 bind-mounts /etc/netns/NAME/hosts over /etc/hosts
      netnsDir = join('/etc/netns', world.client.name);
      mkdirSync(netnsDir, { recursive: true });
      writeFileSync(join(netnsDir, 'hosts'), `127.0.0.1 localhost\n::1 localhost\n${SILENT6} ${HE_NAME}\n${A4} ${HE_NAME}\n`);
      await world.start();
    } catch (err) {
      world.destroy();
      if (netnsDir) rmSync(netnsDir, { recursive: true, force: true });
      throw err;
    }
  });
  after(() => {
    world?.destroy();
    if (netnsDir) rmSync(netnsDir, { recursive: true, force: true });
  });

  /** connprobe natively and under graft; the native side must be what `want` says */
  const probeBoth = async (t: TestContext, args: readonly string[], graftArgs: readonly string[] = []): Promise<{ native: Probe; graft: Probe }> => {
    const what = `connprobe ${args.join(' ')}`;
    const native = parseProbe(await world.native([connprobe, ...args]), `${what} natively`);
    t.diagnostic(`${what} natively: ${JSON.stringify(native)}`);
    const graft = parseProbe(
      await world.graft([connprobe, ...args], { graftArgs: [...SELF_CHECK_ARGS, ...graftArgs] }),
      `${what} under graft ${graftArgs.join(' ')}`,
    );
    t.diagnostic(`${what} under graft ${graftArgs.join(' ')}: ${JSON.stringify(graft)}`);
    return { native, graft };
  };

  describe('a closed port', () => {
    it('blocking: ECONNREFUSED from connect(), as natively, as fast', async (t) => {
      const { native, graft } = await probeBoth(t, [A4, String(CLOSED)]);
      assert.deepEqual(seen(native), { connect: 'ECONNREFUSED', poll: '-', so_error: '0', writable: true, state: 'CLOSE' }, 'native');
      assert.deepEqual(seen(graft), seen(native));
      near(graft.connect_ms, native.connect_ms, TOL.fast, 'connect()');
    });

    it('non-blocking: EINPROGRESS, then poll and SO_ERROR ECONNREFUSED, as natively, as fast', async (t) => {
      const { native, graft } = await probeBoth(t, ['-n', A4, String(CLOSED)]);
      assert.deepEqual(seen(native), { connect: 'EINPROGRESS', poll: 'OUT|ERR|HUP', so_error: 'ECONNREFUSED', writable: true, state: 'CLOSE' }, 'native');
      assert.deepEqual(seen(graft), seen(native));
      assert.ok(graft.connect_ms < TOL.fast, `connect() took ${graft.connect_ms} ms under graft`);
      near(graft.poll_ms, native.poll_ms, TOL.fast, 'poll()');
    });
  });

  describe('a silent host (SYNs dropped)', () => {
    it('blocking with SO_SNDTIMEO 1 s: connect() gives up with EINPROGRESS at 1 s, still SYN_SENT, not writable', async (t) => {
      await everyRow([SILENT4, SILENT6], async (addr) => {
        const { native, graft } = await probeBoth(t, ['-s', '1000', addr, '7000']);
        assert.deepEqual(seen(native), { connect: 'EINPROGRESS', poll: '-', so_error: '0', writable: false, state: 'SYN_SENT' }, `native ${addr}`);
        assert.ok(native.connect_ms >= 990 && native.connect_ms < 1200, `native ${addr}: ${native.connect_ms} ms`);
        assert.deepEqual(seen(graft), seen(native), addr);
        near(graft.connect_ms, native.connect_ms, TOL.timeout, `${addr} connect()`);
      });
    });

    it('non-blocking with poll 1 s: poll times out, the socket is not writable, SO_ERROR 0', async (t) => {
      await everyRow([SILENT4, SILENT6], async (addr) => {
        const { native, graft } = await probeBoth(t, ['-n', '-p', '1000', addr, '7000']);
        assert.deepEqual(seen(native), { connect: 'EINPROGRESS', poll: 'none', so_error: '0', writable: false, state: 'SYN_SENT' }, `native ${addr}`);
        assert.deepEqual(seen(graft), seen(native), addr);
        assert.ok(graft.connect_ms < TOL.fast, `${addr}: connect() took ${graft.connect_ms} ms under graft`);
        near(graft.poll_ms, native.poll_ms, TOL.timeout, `${addr} poll()`);
      });
    });

    it("Python's create_connection(timeout=2) raises its timeout at 2 s, the same exception", async (t) => {
      await everyRow([SILENT4, SILENT6], async (addr) => {
        const native = JSON.parse((await world.native(pyConnect(addr, 7000, 2))).stdout) as { result: string; text: string; ms: number };
        assert.equal(native.result, 'TimeoutError', `native ${addr}: ${native.text}`);
        assert.ok(native.ms >= 1990 && native.ms < 2300, `native ${addr}: ${native.ms} ms`);
        const run = await world.graft(pyConnect(addr, 7000, 2), { graftArgs: SELF_CHECK_ARGS });
        const graft = JSON.parse(run.stdout || '{}') as { result?: string; text?: string; ms: number };
        t.diagnostic(`${addr}: natively ${JSON.stringify(native)}, under graft ${JSON.stringify(graft)}`);
        assert.deepEqual([graft.result, graft.text], [native.result, native.text], `${addr} (stderr ${run.stderr})`);
        near(graft.ms, native.ms, TOL.timeout, addr);
      });
    });
  });

  describe('nc -z', () => {
    it('to an open, a closed port and a silent host (-w 1): the same exit status as natively, as fast', async (t) => {
      const rows = [
        [`${A4} 7000`, 0],
        [`${A4} ${CLOSED}`, 1],
        [`-w 1 ${SILENT4} 7000`, 1],
      ] as const;
      await everyRow(rows, async ([target, want]) => {
        const cmd = `nc -z ${target}`;
        const native = parseTimed(await world.native(timed(cmd)));
        assert.equal(native.rc, want, `native ${cmd}`);
        const graft = parseTimed(await world.graft(timed(cmd), { graftArgs: SELF_CHECK_ARGS }));
        t.diagnostic(`${cmd}: natively ${JSON.stringify(native)}, under graft ${JSON.stringify(graft)}`);
        assert.equal(graft.rc, native.rc, cmd);
        near(graft.ms, native.ms, target.startsWith('-w') ? TOL.timeout : TOL.fast + 50, cmd);
      });
    });

    it('a readiness loop `until nc -z`: ends once the server listens (started 1 s late), not before, within 0.5 s', async (t) => {
      const PORT = 7100;
      const server = [
        'import socket, time',
        'time.sleep(1.0)',
        's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
        `s.bind(('${A4}', ${PORT})); s.listen(16)`,
        "print('%.3f' % time.time(), flush=True)",
        'while True:',
        '  c, _ = s.accept(); c.close()',
      ].join('\n');
      const loop = ['sh', '-c', `until nc -z ${A4} ${PORT}; do sleep 0.1; done; date +%s.%N`];
      const measure = async (run: () => Promise<GraftRun>): Promise<{ lag: number; out: GraftRun }> => {
        const child = world.lab.adopt(world.host.spawn('python3', ['-u', '-c', server]));
        const listening = new Promise<number>((resolve) => createInterface({ input: child.stdout! }).once('line', (l) => resolve(Number(l))));
        try {
          const out = await run();
          const ended = Number(out.stdout.trim());
          return { lag: Math.round((ended - (await listening)) * 1000), out };
        } finally {
          child.kill('SIGKILL');
        }
      };
      const native = await measure(() => world.native(loop, { timeoutMs: 20_000 }));
      assert.ok(native.lag >= 0 && native.lag <= TOL.run, `natively the loop ended ${native.lag} ms after the server listened`);
      const graft = await measure(() => world.graft(loop, { graftArgs: SELF_CHECK_ARGS, timeoutMs: 20_000 }));
      t.diagnostic(`the loop ended after the server listened by: natively ${native.lag} ms, under graft ${graft.lag} ms`);
      assert.equal(graft.out.code, 0, graft.out.stderr);
      assert.ok(graft.lag >= 0, `under graft the loop ended ${-graft.lag} ms BEFORE the server listened (natively ${native.lag} ms after)`);
      assert.ok(graft.lag <= TOL.run, `under graft the loop ended ${graft.lag} ms after the server listened (natively ${native.lag} ms)`);
    });
  });

  describe('happy eyeballs: a silent IPv6 address and a working IPv4 one', () => {
    it('curl falls back to IPv4 as natively, as fast, the same exit status', async (t) => {
      const cmd = `curl -sS --max-time 15 -w ' %{time_total}' http://${HE_NAME}:8080/he`;
      const native = await world.native(timed(cmd));
      assert.equal(parseTimed(native).rc, 0, native.stderr);
      assert.match(native.stdout, /^name=A path=\/he\n /);
      const graft = await world.graft(timed(cmd), { graftArgs: SELF_CHECK_ARGS });
      t.diagnostic(
        `curl natively ${JSON.stringify(parseTimed(native))} ${JSON.stringify(native.stdout)}, under graft ${JSON.stringify(parseTimed(graft))} ${JSON.stringify(graft.stdout)} ${JSON.stringify(graft.stderr)}`,
      );
      assert.equal(parseTimed(graft).rc, parseTimed(native).rc, graft.stderr);
      assert.equal(graft.stdout.split('\n')[0], native.stdout.split('\n')[0]);
      near(parseTimed(graft).ms, parseTimed(native).ms, TOL.run, 'curl');
    });

    it('the static Go client falls back to IPv4 as natively, as fast, the same exit status', async (t) => {
      const cmd = `${goclient} -tcp ${HE_NAME}:7000`;
      const native = await world.native(timed(cmd), { timeoutMs: 30_000 });
      assert.equal(parseTimed(native).rc, 0, native.stderr);
      assert.equal(native.stdout, 'A\n');
      const graft = await world.graft(timed(cmd), { graftArgs: SELF_CHECK_ARGS, timeoutMs: 30_000 });
      t.diagnostic(`goclient natively ${JSON.stringify(parseTimed(native))}, under graft ${JSON.stringify(parseTimed(graft))} ${JSON.stringify(graft.stderr)}`);
      assert.equal(parseTimed(graft).rc, parseTimed(native).rc, graft.stderr);
      assert.equal(graft.stdout, native.stdout);
      near(parseTimed(graft).ms, parseTimed(native).ms, TOL.run, 'goclient');
    });
  });

  describe('unreachable destinations', () => {
    // A route in the client namespace answers connect() at once, and the
    // whole answer (poll's flags, the socket's state) is compared. An ICMP
    // error from the host comes back while connect() still holds the socket
    // (in the lab the veth delivers it within the sending call): natively a
    // non-blocking connect then polls ERR at once with the socket still
    // SYN_SENT, and a blocking one learns the error only from the
    // retransmitted SYN's ICMP, a second later. For those rows what is
    // compared is the errno the program learns (connect()'s, else
    // SO_ERROR's), and graft may not be slower than native (it may be
    // faster: its own dial sees the first ICMP).
    const targets = [
      ['ip route unreachable', LOCAL_UNREACH4, 'local'],
      ['ip route prohibit', LOCAL_PROHIBIT4, 'local'],
      ['ip -6 route unreachable', LOCAL_UNREACH6, 'local'],
      ['ICMP host unreachable', ICMP_HOST4, 'icmp'],
      ['ICMP net unreachable', ICMP_NET4, 'icmp'],
      ['ICMP admin prohibited', ICMP_ADMIN4, 'icmp'],
    ] as const;
    /** the errno the program learns: connect()'s own, else SO_ERROR's */
    const learned = (p: Probe): string => (p.connect !== '0' && p.connect !== 'EINPROGRESS' ? p.connect : p.so_error);
    const compare = (native: Probe, graft: Probe, how: 'local' | 'icmp', label: string): void => {
      if (how === 'local') assert.deepEqual(seen(graft), seen(native), label);
      else assert.deepEqual([graft.connect === 'EINPROGRESS', learned(graft)], [native.connect === 'EINPROGRESS', learned(native)], label);
    };

    it('blocking: the same errno from connect() as natively, as fast', async (t) => {
      await everyRow(targets, async ([label, addr, how]) => {
        const { native, graft } = await probeBoth(t, [addr, '7000']);
        assert.notEqual(native.connect, '0', `native ${label}`);
        assert.ok(native.connect_ms < (how === 'local' ? 500 : 1500), `native ${label}: ${native.connect_ms} ms`);
        compare(native, graft, how, label);
        if (how === 'local') near(graft.connect_ms, native.connect_ms, TOL.fast, label);
        else assert.ok(graft.connect_ms <= native.connect_ms + TOL.fast, `${label}: ${graft.connect_ms} ms under graft, ${native.connect_ms} ms natively`);
      });
    });

    it('non-blocking: the same answer (connect, then poll and SO_ERROR) as natively, as fast', async (t) => {
      await everyRow(targets, async ([label, addr, how]) => {
        const { native, graft } = await probeBoth(t, ['-n', '-p', '3000', addr, '7000']);
        assert.notEqual(learned(native), '0', `native ${label}: ${JSON.stringify(native)}`);
        assert.ok(native.poll_ms < 500, `native ${label}: ${native.poll_ms} ms`);
        compare(native, graft, how, label);
        near(graft.poll_ms, native.poll_ms, TOL.fast, label);
      });
    });
  });

  for (const up of UPSTREAMS) {
    describe(`through an upstream proxy: ${up.label}`, { skip: SELF_CHECK ? 'FAITHFUL_SELF_CHECK: in-place mode has no upstream' : needs(up.need) }, () => {
      let graftArgs: string[];
      before(async () => {
        const proxies = new ProxyHost(world.lab, world.host, (n) => world.path(n));
        if (up.need === 'microsocks') await proxies.microsocks(up.at);
        else if (up.need === 'danted') await proxies.danted(up.at);
        else await proxies.tinyproxy(up.at);
        graftArgs = ['--proxy', `${up.scheme}://${up.at.addr}:${up.at.port}`];
      });

      it('a closed port, blocking and non-blocking: ECONNREFUSED as natively, as fast', async (t) => {
        const blocking = await probeBoth(t, [A4, String(CLOSED)], graftArgs);
        assert.equal(blocking.native.connect, 'ECONNREFUSED', 'native');
        assert.deepEqual(seen(blocking.graft), seen(blocking.native), 'blocking');
        near(blocking.graft.connect_ms, blocking.native.connect_ms, TOL.fastUpstream, 'blocking connect()');
        const nb = await probeBoth(t, ['-n', A4, String(CLOSED)], graftArgs);
        assert.equal(nb.native.so_error, 'ECONNREFUSED', 'native');
        assert.deepEqual(seen(nb.graft), seen(nb.native), 'non-blocking');
        near(nb.graft.poll_ms, nb.native.poll_ms, TOL.fastUpstream, 'poll()');
      });

      it('a silent host: pending until the program gives up (SO_SNDTIMEO 1 s, poll 1 s), as natively', async (t) => {
        const blocking = await probeBoth(t, ['-s', '1000', SILENT4, '7000'], graftArgs);
        assert.equal(blocking.native.connect, 'EINPROGRESS', 'native');
        assert.deepEqual(seen(blocking.graft), seen(blocking.native), 'blocking');
        near(blocking.graft.connect_ms, blocking.native.connect_ms, TOL.timeout, 'blocking connect()');
        const nb = await probeBoth(t, ['-n', '-p', '1000', SILENT4, '7000'], graftArgs);
        assert.equal(nb.native.poll, 'none', 'native');
        assert.deepEqual(seen(nb.graft), seen(nb.native), 'non-blocking');
        near(nb.graft.poll_ms, nb.native.poll_ms, TOL.timeout, 'poll()');
      });
    });
  }
});
