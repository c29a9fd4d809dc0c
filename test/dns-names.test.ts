/**
 * graft answers the program's DNS (--dns remote|local|off), real programs
 * against real servers in namespaces:
 *
 *   client ns: graft and the program; resolv.conf names LOCAL_DNS
 *   host ns:   LOCAL_DNS  dnsmasq, knows pub.example (and nx.example is
 *                         NXDOMAIN); logs every query it gets
 *              FAR_DNS    dnsmasq, knows *.corp.example; the proxies'
 *                         resolver (the host's resolv.conf), never the
 *                         client's: a corp name resolves only past a proxy
 *              microsocks (SOCKS5), OpenSSH's ssh -D (SOCKS4a: sshd
 *              resolves the name), tinyproxy (HTTP)
 *              the test servers A (198.51.100.7, what corp names are) and
 *              B (198.51.100.8, pub.example)
 *
 * Each namespace gets its own resolv.conf (and the client its own hosts
 * file) the way iproute2 provides them, /etc/netns/NAME/, removed with the
 * lab. No query for a corp name may reach LOCAL_DNS: its log proves it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { A4, B4, World, connections, type GraftRun } from './lab/world.js';
import { ProxyHost, type RunningProxy } from './lab/proxies.js';
import { buildGo, buildMusl } from './lab/build.js';
import { LAB, needs } from './lab/capabilities.js';
import { poll } from './lab/procs.js';
import { repoRoot } from './lab/paths.js';

const LOCAL_DNS = '192.0.2.2';
const FAR_DNS = '198.51.100.53';
const MS = { addr: '192.0.2.10', port: 1080 };
const TINY = { addr: '192.0.2.13', port: 3128 };
const SSH4A = { addr: '192.0.2.15', port: 1080 };
/** how many addresses big.pub.example has: more than a 512-byte UDP answer holds */
const BIG = 40;
const HOSTS_ONLY = 'hosts-only.example';

/** No environment proxy or graft config file may steer the clients or graft. */
const ENV: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/_proxy$/i.test(k) && k !== 'GRAFT_CONFIG'));

const ok = (run: GraftRun, what = ''): void =>
  assert.equal(run.code, 0, `${what} exit ${run.code} ${run.signal ?? ''}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);

describe(
  'graft answers DNS (--dns)',
  { skip: needs(...LAB, 'curl', 'python3', 'go', 'dnsmasq', 'musl-gcc', 'microsocks', 'sshd', 'ssh', 'ssh-keygen', 'tinyproxy', 'getent', 'dig') },
  () => {
    let world: World;
    let goclient: string;
    let muslget: string;
    const netnsDirs: string[] = [];
    let localLog: string;
    let farLog: string;
    const running: RunningProxy[] = [];

    /** dnsmasq on `addr` in the host namespace, logging its queries to `log`. */
    const dnsmasq = async (addr: string, log: string, extra: readonly string[]): Promise<void> => {
      world.lab.adopt(
        world.host.spawn('dnsmasq', [
          '-k',
          '--conf-file=/dev/null',
          '--no-resolv',
          '--no-hosts',
          '--bind-interfaces',
          `--listen-address=${addr}`,
          '--port=53',
          '--user=root',
          '--pid-file=',
          '--log-queries',
          `--log-facility=${log}`,
          ...extra,
        ]),
      );
      await poll(() => existsSync(log) && readFileSync(log, 'utf8').includes('started'), 5000, `dnsmasq on ${addr} did not start`);
    };
    const queried = (log: string, name: string): boolean =>
      readFileSync(log, 'utf8')
        .split('\n')
        .some((l) => new RegExp(`query\\[\\w+\\] ${name.replace(/\./g, '\\.')} from`).test(l));

    /** Writes /etc/netns/NAME/FILE for the lab's namespace NAME. */
    const netnsFile = (ns: string, file: string, text: string): void => {
      const dir = join('/etc/netns', ns);
      mkdirSync(dir, { recursive: true });
      if (!netnsDirs.includes(dir)) netnsDirs.push(dir);
      writeFileSync(join(dir, file), text);
    };

    before(async () => {
      goclient = buildGo('goclient');
      muslget = buildMusl('muslget');
      world = await new World().start();
      world.lab.addLocal(world.host, `${FAR_DNS}/32`);
      netnsFile(world.client.name, 'resolv.conf', `nameserver ${LOCAL_DNS}\noptions timeout:2 attempts:2\n`);
      netnsFile(world.client.name, 'hosts', `127.0.0.1 localhost\n::1 localhost\n${B4} ${HOSTS_ONLY}\n`);
      netnsFile(world.host.name, 'resolv.conf', `nameserver ${FAR_DNS}\n`);
      const big = world.path('big.hosts');
      writeFileSync(big, Array.from({ length: BIG }, (_, i) => `198.51.100.${100 + i} big.pub.example\n`).join(''));
      localLog = world.path('local-dns.log');
      farLog = world.path('far-dns.log');
      await dnsmasq(LOCAL_DNS, localLog, [`--address=/pub.example/${B4}`, '--address=/nx.example/', `--addn-hosts=${big}`]);
      await dnsmasq(FAR_DNS, farLog, [`--address=/corp.example/${A4}`]);
      const proxies = new ProxyHost(world.lab, world.host, (n) => world.path(n));
      running.push(...(await Promise.all([proxies.microsocks(MS), proxies.sshSocks(SSH4A), proxies.tinyproxy(TINY)])));
    });
    after(() => {
      world?.destroy();
      for (const dir of netnsDirs) rmSync(dir, { recursive: true, force: true });
    });

    const graft = (program: readonly string[], graftArgs: readonly string[]): Promise<GraftRun> =>
      world.graft(program, { graftArgs: ['-v', ...graftArgs], env: ENV });
    const curl = (url: string): string[] => ['curl', '-sS', '--max-time', '10', url];

    describe('remote: a name only the far side knows, through each kind of proxy', () => {
      const clients: [string, (host: string) => string[]][] = [
        ['curl', (h) => curl(`http://${h}:8080/c`)],
        [
          'python3 urllib',
          (h) => ['python3', '-c', `import urllib.request;print(urllib.request.urlopen('http://${h}:8080/c',timeout=10).read().decode(),end='')`],
        ],
        [
          'node http',
          (h) => [
            process.execPath,
            '-e',
            `require('http').get('http://${h}:8080/c',r=>r.pipe(process.stdout)).on('error',e=>{console.error(e.message);process.exit(1)})`,
          ],
        ],
        ['a static Go binary', (h) => [goclient, '-get', '1', '-hosts', h]],
        ['a static musl binary', (h) => [muslget, h, '8080', '/c']],
      ];
      for (const [label, program] of clients) {
        it(`${label} through SOCKS5 (microsocks): the name goes to the proxy, no query to the local server`, async () => {
          const name = `${label.replace(/[^a-z0-9]/gi, '').toLowerCase()}.corp.example`;
          const run = await graft(program(name), ['--proxy', `socks5://${MS.addr}:${MS.port}`]);
          ok(run, label);
          assert.match(run.stdout, /name=A path=\/(c|g0)\n/);
          assert.ok(!queried(localLog, name), `the local server was asked for ${name}`);
          const conn = connections(run).find((c) => c.name === name);
          assert.ok(conn, JSON.stringify(run.records));
          assert.equal(conn.upstream, `socks5://${MS.addr}:${MS.port}`);
          assert.match(String(conn.dst), /^(198\.18\.|\[fd67:7261:6674:)/, 'the program connected to a fake address');
          assert.ok(run.stderr.includes(`${name} (`), `-v names it:\n${run.stderr}`);
        });
      }
      for (const [label, url, upstream] of [
        ['SOCKS4a (OpenSSH)', `socks4a://${SSH4A.addr}:${SSH4A.port}`, `socks4a://${SSH4A.addr}:${SSH4A.port}`],
        ['HTTP CONNECT (tinyproxy)', `http://${TINY.addr}:${TINY.port}`, `http://${TINY.addr}:${TINY.port}`],
      ] as const) {
        it(`curl through ${label}`, async () => {
          const name = `${label.split(' ')[0]!.toLowerCase()}.corp.example`;
          const run = await graft(curl(`http://${name}:8080/p`), ['--proxy', url]);
          ok(run, label);
          assert.equal(run.stdout, 'name=A path=/p\n');
          assert.ok(!queried(localLog, name));
          assert.equal(connections(run).find((c) => c.name === name)?.upstream, upstream);
        });
      }
      it("sshd's log shows it opened the name the SOCKS4a request carried", () => {
        const log = running.find((p) => p.addr === SSH4A.addr)!.log();
        assert.match(log, /target socks4a\.corp\.example port 8080/);
      });
      it("tinyproxy's log shows the name, not an address", () => {
        const log = running.find((p) => p.addr === TINY.addr)!.log();
        assert.match(log, /CONNECT http\.corp\.example:8080/);
      });
    });

    describe('name rules', () => {
      const split = ['--proxy', `socks5://${MS.addr}:${MS.port}`, '--rule', '*.corp.example proxy', '--rule', 'all direct'];
      it('*.corp.example through the proxy, pub.example direct with its real answer', async () => {
        const corp = await graft(curl('http://w.corp.example:8080/s'), split);
        ok(corp);
        assert.equal(corp.stdout, 'name=A path=/s\n');
        assert.equal(connections(corp).find((c) => c.name === 'w.corp.example')?.upstream, `socks5://${MS.addr}:${MS.port}`);
        const pub = await graft(curl('http://pub.example:8080/s'), split);
        ok(pub);
        assert.equal(pub.stdout, 'name=B path=/s\n');
        assert.ok(queried(localLog, 'pub.example'), 'pub.example was asked of the local server');
        const c = connections(pub).find((r) => r.name === 'pub.example');
        assert.equal(c?.dst, `${B4}:8080`, 'the real address');
        assert.equal(c?.upstream, undefined, JSON.stringify(pub.records));
      });
      it('the apex corp.example is not under the wildcard: it goes direct, and the local server does not know it (curl exit 6, as natively)', async () => {
        const native = await world.native(curl('http://corp.example:8080/'));
        const run = await graft(curl('http://corp.example:8080/'), split);
        assert.equal(native.code, 6, native.stderr);
        assert.equal(run.code, 6, run.stderr);
        assert.ok(queried(localLog, 'corp.example'));
      });
      it('a name rule refuses the addresses answered for its name (local mode)', async () => {
        const run = await graft(curl('http://pub.example:8080/'), ['--dns', 'local', '--rule', 'pub.example refuse']);
        assert.equal(run.code, 7, `curl: could not connect\n${run.stderr}`);
        const refused = run.records.find((r) => r.event === 'refused');
        assert.equal(refused?.name, 'pub.example', JSON.stringify(run.records));
      });
    });

    describe('what graft leaves to the program and the real servers', () => {
      it('/etc/hosts names resolve as natively', async () => {
        const native = await world.native(['getent', 'ahosts', HOSTS_ONLY]);
        const run = await graft(['getent', 'ahosts', HOSTS_ONLY], ['--proxy', `socks5://${MS.addr}:${MS.port}`]);
        ok(run);
        assert.equal(run.stdout, native.stdout);
        const viaHosts = await graft(curl(`http://${HOSTS_ONLY}:8080/h`), ['--proxy', `socks5://${MS.addr}:${MS.port}`]);
        ok(viaHosts);
        assert.equal(viaHosts.stdout, 'name=B path=/h\n');
      });
      it('a truncated answer: the program asks again over TCP, through graft, and gets every address', async () => {
        const program = ['python3', '-c', "import socket;print(sorted({a[4][0] for a in socket.getaddrinfo('big.pub.example',80,socket.AF_INET)}))"];
        const native = await world.native(program);
        ok(native);
        assert.equal((JSON.parse(native.stdout.replace(/'/g, '"')) as string[]).length, BIG);
        const run = await graft(program, ['--dns', 'local']);
        ok(run);
        assert.equal(run.stdout, native.stdout);
        assert.ok(
          connections(run).some((c) => c.dst === `${LOCAL_DNS}:53`),
          `the TCP question went through graft's DNS server:\n${JSON.stringify(run.records)}`,
        );
      });
      it('--dns off: the program asks its server itself, as before graft answered names', async () => {
        const run = await graft(curl('http://w.corp.example:8080/'), ['--dns', 'off', '--proxy', `socks5://${MS.addr}:${MS.port}`]);
        assert.equal(run.code, 6, 'the local server does not know corp names');
        assert.ok(queried(localLog, 'w.corp.example'));
        const pub = await graft(curl('http://pub.example:8080/o'), ['--dns', 'off', '--proxy', `socks5://${MS.addr}:${MS.port}`]);
        ok(pub);
        assert.equal(pub.stdout, 'name=B path=/o\n');
      });
    });

    describe('fake addresses', () => {
      const viaProxy = ['--proxy', `socks5://${MS.addr}:${MS.port}`];
      it('a fake address graft did not give out is refused (ECONNREFUSED), with a log line; never a connect elsewhere', async () => {
        const run = await graft(curl('http://198.18.99.99:8080/'), viaProxy);
        assert.equal(run.code, 7, run.stderr);
        const c = connections(run)[0];
        assert.match(String(c?.error), /fake addresses, but not one it gave out/);
        assert.equal(c?.bytesUp, 0);
      });
      it('other questions about a proxied name get an empty answer, asked of nobody', async () => {
        const run = await graft(['dig', '+short', '+tries=1', 'MX', 'mail.corp.example'], viaProxy);
        ok(run);
        assert.equal(run.stdout, '');
        assert.ok(!queried(localLog, 'mail.corp.example'));
      });
      it('a PTR question for a fake address gets its name', async () => {
        const program = [
          'python3',
          '-c',
          "import socket\na=socket.getaddrinfo('ptr.corp.example',80,socket.AF_INET)[0][4][0]\nprint(socket.gethostbyaddr(a)[0])",
        ];
        const run = await graft(program, viaProxy);
        ok(run);
        assert.equal(run.stdout, 'ptr.corp.example\n');
      });
    });

    describe('DNS faults', () => {
      const gai = (name: string): string[] => [
        'python3',
        '-c',
        `import socket\ntry:\n  socket.getaddrinfo('${name}',80)\n  print('ok')\nexcept socket.gaierror as e:\n  print('gaierror', e.errno)`,
      ];
      it('nxdomain: the errors a name that does not exist gives natively (curl exit 6, gaierror EAI_NONAME)', async () => {
        const native = await world.native(gai('nx.example'));
        const run = await graft(gai('bad.pub.example'), ['--fault', 'nxdomain on bad.pub.example']);
        ok(run);
        assert.equal(run.stdout, native.stdout);
        assert.equal(run.stdout, `gaierror ${-2}\n`);
        const c = await graft(curl('http://bad.pub.example:8080/'), ['--fault', 'nxdomain on *.pub.example']);
        assert.equal(c.code, 6);
        assert.ok(!queried(localLog, 'bad.pub.example'), 'a fault answers without asking');
      });
      it("as a rule: 'NAME nxdomain' (curl exit 6, as natively for a name that does not exist)", async () => {
        const native = await world.native(curl('http://nx.example:8080/'));
        const run = await graft(curl('http://ruled.pub.example:8080/'), ['--rule', 'ruled.pub.example nxdomain']);
        assert.equal(native.code, 6, native.stderr);
        assert.equal(run.code, 6, run.stderr);
        assert.ok(!queried(localLog, 'ruled.pub.example'));
      });
      it('servfail: a temporary failure (gaierror EAI_AGAIN); only the names it matches', async () => {
        const run = await graft(gai('sf.pub.example'), ['--fault', 'servfail on sf.pub.example']);
        ok(run);
        assert.equal(run.stdout, `gaierror ${-3}\n`);
        const other = await graft(gai('fine.pub.example'), ['--fault', 'servfail on sf.pub.example']);
        assert.equal(other.stdout, 'ok\n');
      });
      it('dnsdelay: the real answer, that much later', async () => {
        const run = await graft(gai('slow.pub.example'), ['--fault', 'dnsdelay time=1500ms on slow.pub.example']);
        ok(run);
        assert.equal(run.stdout, 'ok\n');
        assert.ok(run.ms >= 1500, `${run.ms} ms`);
        assert.ok(queried(localLog, 'slow.pub.example'));
      });
      it('noanswer: the resolver times out (as many tries as resolv.conf says)', async () => {
        const run = await graft(gai('quiet.pub.example'), ['--fault', 'noanswer on quiet.pub.example']);
        ok(run);
        assert.equal(run.stdout, `gaierror ${-3}\n`);
        assert.ok(run.ms >= 2000, `the resolver waited its timeout (${run.ms} ms)`);
      });
    });

    it('runGraft: the same, and the records carry the name', async () => {
      const options = {
        program: 'curl',
        args: ['-sS', '--max-time', '10', 'http://api.corp.example:8080/r'],
        proxy: [`socks5://${MS.addr}:${MS.port}`],
        dns: 'remote',
        env: ENV,
      };
      const run = await world.native([
        process.execPath,
        join(repoRoot, 'test/fixtures/api-run.mjs'),
        JSON.stringify(options),
        join(repoRoot, 'dist/src/api.js'),
      ]);
      ok(run);
      const r = JSON.parse(run.stdout) as { status: number; stdout: string; connections: Record<string, unknown>[] };
      assert.equal(r.status, 0, run.stdout);
      assert.equal(r.stdout, 'name=A path=/r\n');
      assert.equal(r.connections.find((c) => c.event === 'connection')?.name, 'api.corp.example');
      assert.ok(!queried(localLog, 'api.corp.example'));
    });

    it('UDP to a fake address is refused, so QUIC-style clients fall back to TCP', async () => {
      const program = [
        'python3',
        '-c',
        [
          'import socket',
          "a=socket.getaddrinfo('q.corp.example',443,socket.AF_INET)[0][4]",
          's=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)',
          'try:',
          "  s.sendto(b'x',a)",
          "  print('sent')",
          'except OSError as e:',
          "  print('refused', e.errno)",
        ].join('\n'),
      ];
      const run = await graft(program, ['--proxy', `socks5://${MS.addr}:${MS.port}`]);
      ok(run);
      assert.equal(run.stdout, 'refused 111\n');
    });
  },
);
