/**
 * `graft ctl` and ControlClient against the real control server (no root):
 * bin/graft ctl run as a child process over TCP and a unix socket, human
 * and --json output, exit statuses (1 for a refusal or nothing answering,
 * 2 for bad usage); toxiproxy-node-client seeing the same state; the
 * client over HTTP and in process giving the same results; the record
 * stream's lines however its chunks are cut.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Toxiproxy } from 'toxiproxy-node-client';
import { repoRoot } from '../lab/paths.js';
import { createApiHandler, type ApiHandler, type ApiResponse } from '../../src/control/api.js';
import { ControlModel, type ProxyView as ModelProxyView } from '../../src/control/model.js';
import { parseControlAddress, startControlServer, type ControlServer } from '../../src/control/server.js';
import {
  ControlClient,
  ControlError,
  ControlUnreachable,
  handlerTransport,
  httpTransport,
  lines,
  type ProxyView,
  type Toxic,
  type Transport,
} from '../../src/control/client.js';
import { parseAttributes, recordLine } from '../../src/control/ctl.js';
import { UsageError } from '../../src/errors.js';
import { runCollect } from '../lab/world.js';

const tmp = mkdtempSync(join(tmpdir(), 'graft-ctl-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `bin/graft ctl ARGS...` with `input` on stdin; GRAFT_CONTROL unset unless given. */
function ctl(args: readonly string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (!opts.env?.GRAFT_CONTROL) delete env.GRAFT_CONTROL;
  return runCollect(
    join(repoRoot, 'bin/graft'),
    ['ctl', ...args],
    { env, timeoutMs: 30_000, ...(opts.input !== undefined ? { input: opts.input } : {}) },
    undefined,
  );
}

function ok(run: Run): string {
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  assert.equal(run.stderr, '');
  return run.stdout;
}

function fails(run: Run, code: number, stderr: RegExp | string): void {
  assert.equal(run.code, code, `exit ${run.code}; stdout ${run.stdout}; stderr ${run.stderr}`);
  if (typeof stderr === 'string') assert.equal(run.stderr, stderr);
  else assert.match(run.stderr, stderr);
}

/** A TCP port nobody listens on (bound, then let go). */
async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, 'close');
  return port;
}

describe('graft ctl over TCP', () => {
  const model = new ControlModel();
  let server: ControlServer;
  let at: string[];

  before(async () => {
    server = await startControlServer(parseControlAddress('127.0.0.1:0'), createApiHandler(model));
    at = ['--control', server.address];
  });
  after(() => server.close());

  it('reports the version, and its help lists every command with an example', async () => {
    assert.equal(ok(await ctl([...at, 'version'])), '2.12.0\n');
    assert.deepEqual(JSON.parse(ok(await ctl([...at, '--json', 'version']))), { version: '2.12.0' });
    const help = ok(await ctl(['--help']));
    for (const command of [
      'version',
      'list',
      'show',
      'create',
      'update',
      'enable',
      'disable',
      'toggle',
      'delete',
      'populate',
      'toxic add',
      'toxic update',
      'toxic remove',
      'reset',
      'rules',
      'records',
    ]) {
      assert.match(help, new RegExp(`^  graft ctl (?:--\\S+ (?:\\S+ )?)*${command}( |$)`, 'm'), `an example of ${command}`);
    }
  });

  it('creates, lists, shows, updates, toggles and deletes proxies', async () => {
    assert.equal(ok(await ctl([...at, 'list'])), 'no proxies\n');
    assert.equal(
      ok(await ctl([...at, 'create', 'redis', '--upstream', '10.0.0.5:6379', '--listen', '127.0.0.1:26379'])),
      'created redis: 127.0.0.1:26379 -> 10.0.0.5:6379, enabled\n',
    );
    assert.equal(
      ok(await ctl([...at, 'create', 'web', '--upstream', '198.51.100.7:80', '--disabled'])),
      'created web: 127.0.0.1:0 -> 198.51.100.7:80, disabled\n',
    );
    assert.equal(
      ok(await ctl([...at, 'list'])),
      [
        'NAME   LISTEN           UPSTREAM         ENABLED',
        'redis  127.0.0.1:26379  10.0.0.5:6379    yes',
        'web    127.0.0.1:0      198.51.100.7:80  no',
        '',
      ].join('\n'),
    );
    assert.equal(
      ok(await ctl([...at, 'show', 'web'])),
      ['NAME  LISTEN       UPSTREAM         ENABLED', 'web   127.0.0.1:0  198.51.100.7:80  no', ''].join('\n'),
    );

    assert.equal(ok(await ctl([...at, 'update', 'web', '--upstream', '198.51.100.8:8080'])), 'updated web: 127.0.0.1:0 -> 198.51.100.8:8080, disabled\n');
    assert.equal(ok(await ctl([...at, 'toggle', 'web'])), 'web enabled\n');
    assert.equal(ok(await ctl([...at, 'toggle', 'web'])), 'web disabled\n');
    assert.equal(ok(await ctl([...at, 'enable', 'web'])), 'web enabled\n');
    assert.equal(ok(await ctl([...at, 'disable', 'web'])), 'web disabled\n');
    assert.equal(model.proxy('web')?.enabled, false);
    assert.equal(ok(await ctl([...at, 'delete', 'web'])), 'deleted web\n');
    assert.equal(model.proxy('web'), undefined);
  });

  it('prints the API JSON with --json, the same wherever the flag goes', async () => {
    const listed = JSON.parse(ok(await ctl([...at, '--json', 'list']))) as Record<string, unknown>;
    assert.deepEqual(listed, JSON.parse(JSON.stringify(Object.fromEntries(model.proxies().map((p) => [p.name, p])))));
    const shown = JSON.parse(ok(await ctl([...at, 'show', 'redis', '--json']))) as unknown;
    assert.deepEqual(shown, JSON.parse(JSON.stringify(model.proxy('redis'))));
    const created = JSON.parse(ok(await ctl(['--json', ...at, 'create', 'tmp', '--upstream', '192.0.2.1:1']))) as unknown;
    assert.deepEqual(created, { name: 'tmp', listen: '127.0.0.1:0', upstream: '192.0.2.1:1', enabled: true, toxics: [] });
    assert.equal(ok(await ctl([...at, '--json', 'delete', 'tmp'])), '');
  });

  it('adds, updates and removes toxics; KEY=VALUE numbers and strings reach the API as such', async () => {
    assert.equal(
      ok(await ctl([...at, 'toxic', 'add', 'redis', 'latency', 'latency=200', 'jitter=50'])),
      'added to redis: latency_downstream: latency downstream, toxicity 1, latency=200 jitter=50\n',
    );
    const added = JSON.parse(
      ok(await ctl([...at, '--json', 'toxic', 'add', 'redis', 'bandwidth', '--name', 'slow', '--stream', 'upstream', '--toxicity', '0.5', 'rate=100'])),
    ) as unknown;
    assert.deepEqual(added, { attributes: { rate: 100 }, name: 'slow', type: 'bandwidth', stream: 'upstream', toxicity: 0.5 });
    assert.equal(
      ok(await ctl([...at, 'show', 'redis'])),
      [
        'NAME   LISTEN           UPSTREAM       ENABLED',
        'redis  127.0.0.1:26379  10.0.0.5:6379  yes',
        '  toxic slow: bandwidth upstream, toxicity 0.5, rate=100',
        '  toxic latency_downstream: latency downstream, toxicity 1, latency=200 jitter=50',
        '',
      ].join('\n'),
    );
    assert.equal(
      ok(await ctl([...at, 'toxic', 'update', 'redis', 'latency_downstream', 'latency=300', '--toxicity', '0.25'])),
      'updated on redis: latency_downstream: latency downstream, toxicity 0.25, latency=300 jitter=50\n',
    );
    // a string value is sent as a string: latency wants a number, so the API says so
    fails(await ctl([...at, 'toxic', 'update', 'redis', 'slow', 'rate=fast']), 1, /^graft ctl: 400 bad request body: .*rate/);
    assert.equal(ok(await ctl([...at, 'toxic', 'remove', 'redis', 'slow'])), 'removed slow from redis\n');
    // graft's connect toxic: an errno name is a string attribute
    const refuse = JSON.parse(ok(await ctl([...at, '--json', 'toxic', 'add', 'redis', 'refuse', '--name', 'no', 'errno=ETIMEDOUT', 'delay=100']))) as Toxic;
    assert.deepEqual(refuse.attributes, { errno: 'ETIMEDOUT', delay: 100 });
    fails(await ctl([...at, 'toxic', 'update', 'redis', 'no', 'errno=EWHATEVER']), 1, /^graft ctl: 400 .*'EWHATEVER' is not an errno/);
    ok(await ctl([...at, 'toxic', 'remove', 'redis', 'no']));
    assert.deepEqual(
      model.proxy('redis')?.toxics.map((t) => t.name),
      ['latency_downstream'],
    );
  });

  it('sees the same state as toxiproxy-node-client', async () => {
    const toxiproxy = new Toxiproxy(`http://${server.address}`);
    const proxy = await toxiproxy.createProxy({ name: 'pg', listen: '127.0.0.1:25432', upstream: '10.0.0.9:5432' });
    await proxy.addToxic({ name: 'cut', type: 'limit_data', stream: 'downstream', toxicity: 1, attributes: { bytes: 1000 } });
    const seen = JSON.parse(ok(await ctl([...at, '--json', 'show', 'pg']))) as ProxyView;
    assert.deepEqual(seen.toxics, [{ attributes: { bytes: 1000 }, name: 'cut', type: 'limit_data', stream: 'downstream', toxicity: 1 }]);

    ok(await ctl([...at, 'disable', 'pg']));
    ok(await ctl([...at, 'toxic', 'add', 'pg', 'timeout', '--stream', 'upstream', 'timeout=5000']));
    const got = await toxiproxy.get('pg');
    assert.equal(got.enabled, false);
    assert.deepEqual((await got.getToxic('timeout_upstream')).toJson(), {
      name: 'timeout_upstream',
      type: 'timeout',
      stream: 'upstream',
      toxicity: 1,
      attributes: { timeout: 5000 },
    });
    ok(await ctl([...at, 'delete', 'pg']));
    assert.deepEqual(Object.keys(await toxiproxy.getAll()), ['redis']);
  });

  it('populates from a file and from standard input', async () => {
    const file = join(tmp, 'proxies.json');
    writeFileSync(
      file,
      JSON.stringify([
        { name: 'a', upstream: '192.0.2.1:80', listen: '127.0.0.1:0' },
        { name: 'b', upstream: '192.0.2.2:80', enabled: false },
      ]),
    );
    assert.equal(ok(await ctl([...at, 'populate', file])), 'populated 2 proxies: a, b\n');
    const fromStdin = JSON.parse(ok(await ctl([...at, '--json', 'populate', '-'], { input: '[{"name":"c","upstream":"192.0.2.3:80"}]' }))) as {
      proxies: ProxyView[];
    };
    assert.deepEqual(
      fromStdin.proxies.map((p) => p.name),
      ['c'],
    );
    assert.deepEqual(
      model.proxies().map((p) => [p.name, p.enabled]),
      [
        ['a', true],
        ['b', false],
        ['c', true],
        ['redis', true],
      ],
    );
    fails(await ctl([...at, 'populate', '-'], { input: '[{"name":"d"}]' }), 1, /^graft ctl: 400 missing required field: upstream/);
    fails(await ctl([...at, 'populate', join(tmp, 'missing.json')]), 2, `graft ctl: populate: cannot read ${join(tmp, 'missing.json')}: ENOENT\n`);
    fails(await ctl([...at, 'populate', '-'], { input: '{"name":' }), 2, /^graft ctl: populate: standard input is not JSON: /);
    fails(await ctl([...at, 'populate', '-'], { input: '{"name":"x"}' }), 2, 'graft ctl: populate: standard input is not a JSON array of proxies\n');
    for (const name of ['a', 'b', 'c']) ok(await ctl([...at, 'delete', name]));
  });

  it('resets: every toxic removed, every proxy enabled', async () => {
    ok(await ctl([...at, 'disable', 'redis']));
    assert.equal(ok(await ctl([...at, 'reset'])), 'reset: every toxic removed, every proxy enabled\n');
    assert.deepEqual(JSON.parse(JSON.stringify(model.proxy('redis'))), {
      name: 'redis',
      listen: '127.0.0.1:26379',
      upstream: '10.0.0.5:6379',
      enabled: true,
      toxics: [],
    });
  });

  it('exits 1 with the status and the error text when the API refuses', async () => {
    fails(await ctl([...at, 'show', 'nope']), 1, 'graft ctl: 404 proxy not found\n');
    fails(await ctl([...at, 'toggle', 'nope']), 1, 'graft ctl: 404 proxy not found\n');
    fails(await ctl([...at, 'toxic', 'remove', 'redis', 'nope']), 1, 'graft ctl: 404 toxic not found\n');
    fails(await ctl([...at, 'create', 'redis', '--upstream', '10.0.0.5:6379']), 1, 'graft ctl: 409 proxy already exists\n');
    ok(await ctl([...at, 'toxic', 'add', 'redis', 'latency']));
    fails(await ctl([...at, 'toxic', 'add', 'redis', 'latency']), 1, 'graft ctl: 409 toxic already exists\n');
    fails(await ctl([...at, 'toxic', 'add', 'redis', 'nonsense']), 1, 'graft ctl: 400 invalid toxic type\n');
    fails(await ctl([...at, 'toxic', 'add', 'redis', 'slicer', 'average_size=0']), 1, /^graft ctl: 400 bad request body: attributes\.average_size/);
    fails(await ctl([...at, 'create', 'x', '--upstream', 'no port']), 1, /^graft ctl: 400 /);
    ok(await ctl([...at, 'reset']));
  });

  it('exits 2 naming what was wrong for bad usage', async () => {
    fails(await ctl([...at, 'toxic', 'add', 'redis', 'latency', 'latency']), 2, "graft ctl: 'latency' is not KEY=VALUE (an attribute, such as latency=200)\n");
    fails(await ctl([...at, 'toxic', 'add', 'redis', 'latency', '=5']), 2, /'=5' is not KEY=VALUE/);
    fails(await ctl([...at, 'toxic', 'add', 'redis', 'latency', '--toxicity', 'half']), 2, /--toxicity: 'half' is not a number/);
    fails(
      await ctl([...at, 'toxic', 'add', 'redis', 'latency', '--stream', 'sideways']),
      2,
      /^graft ctl: option '--stream <stream>' argument 'sideways' is invalid/,
    );
    fails(await ctl([...at, 'toxic', 'update', 'redis', 'latency_downstream']), 2, 'graft ctl: toxic update: give --toxicity or KEY=VALUE attributes\n');
    fails(await ctl([...at, 'create', 'x']), 2, /^graft ctl: required option '--upstream <host:port>' not specified/);
    fails(await ctl([...at, 'update', 'redis']), 2, 'graft ctl: update: give --upstream, --listen or both\n');
    fails(await ctl([...at, 'show']), 2, /^graft ctl: missing required argument 'name'/);
    fails(await ctl([...at, 'lst']), 2, /^graft ctl: unknown command 'lst' \(Did you mean list\?\)/);
    fails(await ctl([...at, '--frobnicate', 'list']), 2, /^graft ctl: unknown option '--frobnicate'/);
    fails(await ctl(['--control', 'nowhere', 'list']), 2, "graft ctl: --control: 'nowhere' is not PORT, HOST:PORT or unix:PATH\n");
    fails(await ctl(['list'], { env: { GRAFT_CONTROL: 'nowhere' } }), 2, "graft ctl: $GRAFT_CONTROL: 'nowhere' is not PORT, HOST:PORT or unix:PATH\n");
    const none = await ctl([...at]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage: graft ctl/);
  });

  it('takes the address from $GRAFT_CONTROL; --control wins over it', async () => {
    assert.equal(ok(await ctl(['version'], { env: { GRAFT_CONTROL: server.address } })), '2.12.0\n');
    assert.equal(ok(await ctl([...at, 'version'], { env: { GRAFT_CONTROL: 'unix:/nonexistent/graft.sock' } })), '2.12.0\n');
  });
});

describe('graft ctl over a unix socket', () => {
  let server: ControlServer;
  const path = join(tmp, 'control.sock');
  before(async () => {
    server = await startControlServer(parseControlAddress(`unix:${path}`), createApiHandler(new ControlModel()));
  });
  after(() => server.close());

  it('creates and lists', async () => {
    const at = ['--control', `unix:${path}`];
    ok(await ctl([...at, 'create', 'redis', '--upstream', '10.0.0.5:6379', '--listen', '127.0.0.1:26379']));
    ok(await ctl([...at, 'toxic', 'add', 'redis', 'latency', 'latency=10']));
    assert.equal(
      ok(await ctl([...at, 'list'])),
      [
        'NAME   LISTEN           UPSTREAM       ENABLED',
        'redis  127.0.0.1:26379  10.0.0.5:6379  yes',
        '  toxic latency_downstream: latency downstream, toxicity 1, latency=10 jitter=0',
        '',
      ].join('\n'),
    );
    fails(await ctl([...at, 'show', 'other']), 1, 'graft ctl: 404 proxy not found\n');
  });
});

describe('graft ctl with nothing at the address', () => {
  it('exits 1 and says how to start graft', async () => {
    const port = await freePort();
    fails(
      await ctl(['--control', `127.0.0.1:${port}`, 'list']),
      1,
      `graft ctl: nothing answers at 127.0.0.1:${port} (start graft with --control 127.0.0.1:${port})\n`,
    );
    fails(await ctl(['--control', `[::1]:${port}`, 'list']), 1, /^graft ctl: nothing answers at \[::1\]:\d+ \(start graft with --control \[::1\]:\d+\)\n$/);
    const sock = join(tmp, 'nobody.sock');
    fails(await ctl(['--control', `unix:${sock}`, 'version']), 1, `graft ctl: nothing answers at unix:${sock} (start graft with --control unix:${sock})\n`);
  });
});

// ---- records and rules (graft's additions), with hand-written handlers -----

const RECORDS = [
  { event: 'open', pid: 1234, exe: 'curl', dst: '198.51.100.7:80', proxy: 'web' },
  { event: 'connection', pid: 1234, exe: 'curl', dst: '198.51.100.7:80', action: 'proxy', bytesUp: 83, bytesDown: 18, durationMs: 3 },
  { event: 'refused', pid: 99, exe: 'wget', name: 'a.example', dst: '192.0.2.1:443', error: 'ECONNREFUSED' },
];
const NDJSON = RECORDS.map((r) => `${JSON.stringify(r)}\n`).join('');
const RULES = { dns: 'local', rules: [{ index: 1, text: '10.0.0.0/8 direct', origin: '--rule', action: 'direct' }] };

/** Answers /records with `first` at once, then each of `chunks` on a timer, then ends; /rules with RULES. */
function streamingHandler(first: string, chunks: readonly string[], stopped?: () => void): ApiHandler {
  return (_method, path): Promise<ApiResponse> => {
    if (path === '/rules') return Promise.resolve({ status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(RULES) });
    if (path !== '/records') return Promise.resolve({ status: 404, headers: {}, body: '{"error":"no such path","status":404}\n' });
    return Promise.resolve({
      status: 200,
      headers: { 'content-type': 'application/x-ndjson' },
      body: first,
      follow: (write, end) => {
        let i = 0;
        const timer = setInterval(() => {
          if (i < chunks.length) write(chunks[i++]!);
          else {
            clearInterval(timer);
            end();
          }
        }, 5);
        return () => {
          clearInterval(timer);
          stopped?.();
        };
      },
    });
  };
}

/** NDJSON cut at every `step` characters. */
const cut = (text: string, step: number): string[] => Array.from({ length: Math.ceil(text.length / step) }, (_, i) => text.slice(i * step, (i + 1) * step));

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** The chunks one event-loop turn apart, as a socket delivers them. */
async function* arriving(chunks: readonly string[]): AsyncIterable<string> {
  for (const chunk of chunks) {
    await new Promise((resolve) => setImmediate(resolve));
    yield chunk;
  }
}

describe('records and rules', () => {
  it('splits lines correctly however the chunks cut them', async () => {
    for (const step of [1, 2, 7, 30, NDJSON.length]) {
      const stub: Transport = {
        request: () => Promise.reject(new Error('not used')),
        follow: () => arriving(cut(NDJSON, step)),
      };
      assert.deepEqual(await collect(new ControlClient(stub).records()), RECORDS, `chunks of ${step}`);
    }
    assert.deepEqual(await collect(lines(arriving(['a\r\nb', '', '\n\nc']))), ['a', 'b', '', 'c']);
  });

  it('follows the stream in process and over HTTP, and stops following when the client leaves', async () => {
    const chunks = cut(NDJSON.slice(20), 11);
    const viaHandler = await collect(new ControlClient(handlerTransport(streamingHandler(NDJSON.slice(0, 20), chunks))).records());
    assert.deepEqual(viaHandler, RECORDS);

    let stops = 0;
    const server = await startControlServer(
      parseControlAddress('127.0.0.1:0'),
      streamingHandler(NDJSON.slice(0, 20), chunks, () => stops++),
    );
    try {
      const client = new ControlClient(httpTransport(parseControlAddress(server.address)));
      assert.deepEqual(await collect(client.records()), RECORDS);
      assert.deepEqual(await client.rules(), RULES);
      for await (const record of client.records()) {
        assert.equal(record.event, 'open');
        break;
      }
      for (let i = 0; i < 100 && stops < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(stops, 2, 'the server stopped following both streams');
    } finally {
      await server.close();
    }
  });

  it('graft ctl records prints a line per record, or the ndjson with --json; graft ctl rules', async () => {
    const server = await startControlServer(parseControlAddress('127.0.0.1:0'), streamingHandler('', cut(NDJSON, 13)));
    try {
      const at = ['--control', server.address];
      assert.equal(ok(await ctl([...at, '--json', 'records'])), NDJSON);
      assert.equal(
        ok(await ctl([...at, 'records'])),
        [
          'open       1234 curl -> 198.51.100.7:80 (proxy web)',
          'connection 1234 curl -> 198.51.100.7:80 (proxy) 83 B up, 18 B down, 3 ms',
          'refused    99 wget -> a.example (192.0.2.1:443) error=ECONNREFUSED',
          '',
        ].join('\n'),
      );
      assert.equal(ok(await ctl([...at, 'rules'])), 'dns: local\n  1.  10.0.0.0/8 direct  [--rule]  direct\n');
      assert.deepEqual(JSON.parse(ok(await ctl([...at, '--json', 'rules']))), RULES);
    } finally {
      await server.close();
    }
  });

  it("reads the API's own /records and /rules routes", async () => {
    let writer: ((record: object) => void) | undefined;
    const model = new ControlModel();
    const handler = createApiHandler(model, {
      records: (write) => {
        writer = write;
        write(RECORDS[0]!);
        return () => (writer = undefined);
      },
      rules: () => RULES,
    });
    const client = new ControlClient(handlerTransport(handler));
    assert.deepEqual(await client.rules(), RULES);
    const seen: unknown[] = [];
    for await (const record of client.records()) {
      seen.push(record);
      if (seen.length === RECORDS.length) break;
      if (seen.length === 1) for (const r of RECORDS.slice(1)) writer!(r);
    }
    assert.deepEqual(seen, RECORDS);
    assert.equal(writer, undefined, 'unsubscribed when the client stopped');

    // without a source of rules: none, dns off
    const server = await startControlServer(parseControlAddress('127.0.0.1:0'), createApiHandler(new ControlModel()));
    try {
      assert.equal(ok(await ctl(['--control', server.address, 'rules'])), 'dns: off\n  no rules\n');
    } finally {
      await server.close();
    }
  });

  it('graft ctl records ends with status 0 when graft ends', async () => {
    let writer: ((record: object) => void) | undefined;
    const server = await startControlServer(
      parseControlAddress('127.0.0.1:0'),
      createApiHandler(new ControlModel(), {
        records: (write) => {
          writer = write;
          return () => {};
        },
      }),
    );
    const run = ctl(['--control', server.address, 'records']);
    for (let i = 0; i < 500 && !writer; i++) await new Promise((r) => setTimeout(r, 20));
    writer!(RECORDS[0]!);
    await new Promise((r) => setTimeout(r, 200));
    await server.close();
    assert.equal(ok(await run), 'open       1234 curl -> 198.51.100.7:80 (proxy web)\n');
  });

  it('a refused stream is a ControlError', async () => {
    const refusing: ApiHandler = () => Promise.resolve({ status: 503, headers: {}, body: '{"error":"not now","status":503}\n' });
    const client = new ControlClient(handlerTransport(refusing));
    await assert.rejects(collect(client.records()), (err: unknown) => err instanceof ControlError && err.status === 503 && err.message === 'not now');
    const server = await startControlServer(parseControlAddress('127.0.0.1:0'), refusing);
    try {
      const overHttp = new ControlClient(httpTransport(parseControlAddress(server.address)));
      await assert.rejects(collect(overHttp.records()), (err: unknown) => err instanceof ControlError && err.status === 503 && err.message === 'not now');
      fails(await ctl(['--control', server.address, 'records']), 1, 'graft ctl: 503 not now\n');
    } finally {
      await server.close();
    }
  });
});

// ---- ControlClient: the same answers over both transports --------------------

/** The same script of calls; each result or refusal, as data. */
async function script(client: ControlClient): Promise<unknown[]> {
  const out: unknown[] = [];
  const step = async (f: () => Promise<unknown>): Promise<void> => {
    try {
      out.push(['ok', await f()]);
    } catch (err) {
      out.push(err instanceof ControlError ? ['refused', err.status, err.message] : ['threw', String(err)]);
    }
  };
  await step(() => client.version());
  await step(() => client.createProxy({ name: 'redis', upstream: '10.0.0.5:6379', listen: '127.0.0.1:26379' }));
  await step(() => client.createProxy({ name: 'db', upstream: 'db.internal:5432', enabled: false }));
  await step(() => client.createProxy({ name: 'redis', upstream: '10.0.0.5:6379' }));
  await step(() => client.proxies());
  await step(() => client.proxy('missing'));
  await step(() => client.updateProxy('db', { upstream: 'db.internal:5433' }));
  await step(() => client.setEnabled('db', true));
  await step(() => client.addToxic('redis', { type: 'latency', attributes: { latency: 100, jitter: 10 } }));
  await step(() => client.addToxic('redis', { type: 'bandwidth', name: 'bw', stream: 'upstream', toxicity: 0.5, attributes: { rate: 10 } }));
  await step(() => client.addToxic('redis', { type: 'latency' }));
  await step(() => client.addToxic('redis', { type: 'latency', name: 'bad', attributes: { latency: 'slow' } }));
  await step(() => client.updateToxic('redis', 'bw', { attributes: { rate: 20 } }));
  await step(() => client.updateToxic('redis', 'missing', { toxicity: 1 }));
  await step(() => client.toxics('redis'));
  await step(() => client.removeToxic('redis', 'bw'));
  await step(() =>
    client.populate([
      { name: 'a', upstream: '192.0.2.1:80' },
      { name: 'db', upstream: 'db.internal:5432' },
    ]),
  );
  await step(() => client.populate([{ name: 'b', upstream: '' }]));
  await step(() => client.reset());
  await step(() => client.proxies());
  await step(() => client.deleteProxy('a'));
  await step(() => client.deleteProxy('a'));
  await step(() => client.proxies());
  return out;
}

describe('ControlClient', () => {
  it('gives the same results over HTTP and in process', async () => {
    const server = await startControlServer(parseControlAddress('127.0.0.1:0'), createApiHandler(new ControlModel()));
    try {
      const overHttp = await script(new ControlClient(httpTransport(parseControlAddress(server.address))));
      const inProcess = await script(new ControlClient(handlerTransport(createApiHandler(new ControlModel()))));
      assert.deepEqual(overHttp, inProcess);
      assert.equal(overHttp.filter((r) => (r as unknown[])[0] === 'threw').length, 0, JSON.stringify(overHttp));
      assert.deepEqual(overHttp[5], ['refused', 404, 'proxy not found']);
      assert.deepEqual(overHttp[3], ['refused', 409, 'proxy already exists']);
    } finally {
      await server.close();
    }
  });

  it('reads one model the same through both transports, and its views as the model has them', async () => {
    const model = new ControlModel();
    const handler = createApiHandler(model);
    const server = await startControlServer(parseControlAddress(`unix:${join(tmp, 'client.sock')}`), handler);
    try {
      const http = new ControlClient(httpTransport(parseControlAddress(server.address)));
      const local = new ControlClient(handlerTransport(handler));
      await http.createProxy({ name: 'z', upstream: '192.0.2.9:9' });
      await local.createProxy({ name: 'm', upstream: '192.0.2.8:8' });
      await http.addToxic('m', { type: 'slicer', attributes: { average_size: 10, size_variation: 5, delay: 100 } });
      const views: readonly ProxyView[] = model.proxies() satisfies readonly ModelProxyView[];
      assert.deepEqual(await http.proxies(), await local.proxies());
      assert.deepEqual(
        (await http.proxies()).map((p) => p.name),
        ['m', 'z'],
      );
      assert.deepEqual(await local.proxies(), JSON.parse(JSON.stringify([...views].sort((a, b) => a.name.localeCompare(b.name)))));
      assert.deepEqual(await http.toxics('m'), await local.toxics('m'));
    } finally {
      await server.close();
    }
  });

  it('says when nothing answers', async () => {
    const port = await freePort();
    const client = new ControlClient(httpTransport(parseControlAddress(`127.0.0.1:${port}`)));
    await assert.rejects(
      client.version(),
      (err: unknown) => err instanceof ControlUnreachable && err.address === `127.0.0.1:${port}` && err.code === 'ECONNREFUSED',
    );
  });
});

describe('graft ctl parsing', () => {
  it('reads KEY=VALUE as a number when it is one, else as a string', () => {
    assert.deepEqual(parseAttributes(['latency=200', 'jitter=0.5', 'errno=ECONNREFUSED', 'x=-3', 'y=1e3', 'z=a=b']), {
      latency: 200,
      jitter: 0.5,
      errno: 'ECONNREFUSED',
      x: -3,
      y: 1000,
      z: 'a=b',
    });
    for (const bad of ['latency', '=1', 'latency=', '1x=2']) assert.throws(() => parseAttributes([bad]), UsageError, bad);
  });

  it('shows a record in one line, control characters escaped', () => {
    assert.equal(recordLine({ event: 'open', pid: 1, exe: 'a\nb', dst: '192.0.2.1:80' }), 'open       1 a\\nb -> 192.0.2.1:80');
    assert.equal(
      recordLine({
        event: 'connection',
        action: 'listener',
        proxy: 'web',
        client: '127.0.0.1:5000',
        dst: '10.0.0.5:6379',
        bytesUp: 1,
        bytesDown: 2,
        durationMs: 3,
        faults: ['latency'],
      }),
      'connection 127.0.0.1:5000 -> 10.0.0.5:6379 (listener web) 1 B up, 2 B down, 3 ms faults=["latency"]',
    );
    assert.equal(
      recordLine({ event: 'refused', pid: 7, exe: 'nc', dst: '192.0.2.1:25', action: 'refuse', error: 'ECONNREFUSED' }),
      'refused    7 nc -> 192.0.2.1:25 (refuse) error=ECONNREFUSED',
    );
  });
});
