/**
 * The control API over real sockets: toxiproxy-node-client (the npm client
 * Toxiproxy users script with) against src/control/server.ts on a loopback
 * port, then raw node:http requests for what the client never sends (bad
 * bodies, unknown paths, browsers, oversized bodies), the unix socket, and
 * a property test of the handler with generated requests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Toxiproxy, ToxiproxyError, type ICreateToxicBody, type ToxicType } from 'toxiproxy-node-client';
import { createApiHandler, MAX_BODY_BYTES, TOXIPROXY_VERSION } from '../../src/control/api.js';
import { checkProxy, checkToxic, ControlModel, DATA_TOXIC_TYPES, TOXIC_TYPES, type ControlEvent } from '../../src/control/model.js';
import { parseControlAddress, startControlServer, type ControlServer } from '../../src/control/server.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

type Target = { host: string; port: number } | { socketPath: string };

function target(server: ControlServer): Target {
  if (server.address.startsWith('unix:')) return { socketPath: server.address.slice(5) };
  const i = server.address.lastIndexOf(':');
  return { host: server.address.slice(0, i), port: Number(server.address.slice(i + 1)) };
}

/** One request with node:http, which sends exactly the headers given (no User-Agent of its own). */
function raw(to: Target, method: string, path: string, body?: string | Buffer, headers: OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ ...to, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A Toxiproxy error reply: the status, and a body `{"error": message, "status": status}`. */
function assertError(reply: Reply, status: number, message?: RegExp): void {
  assert.equal(reply.status, status, reply.body);
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  const body = JSON.parse(reply.body) as { error: unknown; status: unknown };
  assert.deepEqual(Object.keys(body), ['error', 'status']);
  assert.equal(body.status, status);
  assert.equal(typeof body.error, 'string');
  if (message) assert.match(body.error as string, message);
}

/** A client call that must fail with `status` (the client says only "Request failed with status code N"). */
async function rejectsWith(call: Promise<unknown>, status: number): Promise<void> {
  await assert.rejects(call, (err: unknown) => err instanceof ToxiproxyError && err.message === `Request failed with status code ${status}`);
}

/** One body per toxic type, as a client sends it; `bump` gives the values an update sends. */
function toxicBodies(bump = 0): ICreateToxicBody<unknown>[] {
  const attributes: Record<ToxicType, Record<string, number>> = {
    latency: { latency: 100 + bump, jitter: 10 },
    bandwidth: { rate: 64 + bump },
    slow_close: { delay: 50 + bump },
    timeout: { timeout: 1000 + bump },
    reset_peer: { timeout: 20 + bump },
    slicer: { average_size: 64 + bump, size_variation: 8, delay: 1000 },
    limit_data: { bytes: 4096 + bump },
    down: {},
  };
  return DATA_TOXIC_TYPES.map((type, i) => ({
    name: `${type}_${i}`,
    type,
    stream: i % 2 ? 'upstream' : 'downstream',
    toxicity: bump ? 0.5 : 1,
    attributes: attributes[type],
  }));
}

describe('control API: toxiproxy-node-client', () => {
  const model = new ControlModel();
  const events: ControlEvent[] = [];
  model.subscribe((e) => events.push(e));
  let server: ControlServer;
  let client: Toxiproxy;

  before(async () => {
    server = await startControlServer(parseControlAddress('0'), createApiHandler(model));
    client = new Toxiproxy(`http://${server.address}`);
  });
  after(() => server.close());

  it('listens on loopback when given a port alone', () => {
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
  });

  it('reports the version as Toxiproxy writes it', async () => {
    assert.equal(await client.getVersion(), `{"version": "${TOXIPROXY_VERSION}"}\n`);
  });

  it('creates, lists, gets, updates and deletes proxies', async () => {
    const redis = await client.createProxy({ name: 'redis', listen: '127.0.0.1:26379', upstream: '10.0.0.5:6379' });
    assert.deepEqual(redis.toJson(), { enabled: true, listen: '127.0.0.1:26379', name: 'redis', upstream: '10.0.0.5:6379' });
    await client.createProxy({ name: 'db', listen: '127.0.0.1:0', upstream: 'db.internal:5432', enabled: false });

    const all = await client.getAll();
    assert.deepEqual(Object.keys(all), ['db', 'redis']);
    assert.equal(all.db!.enabled, false);
    assert.equal((await client.get('redis')).upstream, '10.0.0.5:6379');

    const down = await redis.update({ enabled: false, listen: redis.listen, upstream: redis.upstream });
    assert.equal(down.enabled, false);
    const moved = await down.update({ enabled: true, listen: '127.0.0.1:26380', upstream: '10.0.0.6:6379' });
    assert.deepEqual(moved.toJson(), { enabled: true, listen: '127.0.0.1:26380', name: 'redis', upstream: '10.0.0.6:6379' });

    await rejectsWith(client.createProxy({ name: 'redis', listen: '127.0.0.1:0', upstream: '10.0.0.5:6379' }), 409);
    await (await client.get('db')).remove();
    await rejectsWith(client.get('db'), 404);
    assert.deepEqual(Object.keys(await client.getAll()), ['redis']);
  });

  it('adds, reads, updates and removes a toxic of every type', async () => {
    const proxy = await client.get('redis');
    for (const body of toxicBodies()) {
      const toxic = await proxy.addToxic(body);
      assert.deepEqual(toxic.toJson(), body);
      assert.deepEqual((await proxy.getToxic(body.name)).toJson(), body);
    }
    // the client sends name, type and stream with an update; they are ignored, as Toxiproxy ignores them
    for (const body of toxicBodies(1)) {
      const toxic = await proxy.getToxic(body.name);
      const updated = await toxic.update({ ...body, stream: body.stream === 'upstream' ? 'downstream' : 'upstream' });
      assert.deepEqual(updated.toJson(), { ...body, stream: toxic.stream });
    }
    const listed = JSON.parse((await raw(target(server), 'GET', '/proxies/redis/toxics')).body) as { stream: string }[];
    assert.equal(listed.length, DATA_TOXIC_TYPES.length);
    const streams = listed.map((t) => t.stream);
    assert.ok(streams.lastIndexOf('upstream') < streams.indexOf('downstream'), `upstream toxics first, as Toxiproxy lists them: ${streams.join()}`);
    const latency = await proxy.getToxic('latency_0');
    await latency.remove();
    await rejectsWith(proxy.getToxic('latency_0'), 404);
    await rejectsWith(latency.remove(), 404);
    await rejectsWith(proxy.addToxic(toxicBodies()[1]!), 409);
  });

  it('populates: creates new proxies, keeps identical ones with their toxics, replaces changed ones', async () => {
    const redisToxics = (await raw(target(server), 'GET', '/proxies/redis/toxics')).body;
    const proxies = await client.populate([
      { name: 'redis', listen: '127.0.0.1:26380', upstream: '10.0.0.6:6379' },
      { name: 'mysql', listen: '127.0.0.1:23306', upstream: '10.0.0.7:3306', enabled: false },
    ]);
    assert.deepEqual(Object.keys(proxies).sort(), ['mysql', 'redis']);
    assert.equal(proxies.mysql!.enabled, false);
    assert.equal((await raw(target(server), 'GET', '/proxies/redis/toxics')).body, redisToxics, 'identical: untouched');

    await client.populate([{ name: 'redis', listen: '127.0.0.1:26380', upstream: '10.0.0.8:6379' }]);
    assert.equal((await raw(target(server), 'GET', '/proxies/redis/toxics')).body, '[]', 'changed: replaced, toxics gone');
  });

  it('resets: every toxic removed, every proxy enabled', async () => {
    const redis = await client.get('redis');
    await redis.addToxic({ name: 'slow', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 500, jitter: 0 } });
    await client.reset();
    const all = await client.getAll();
    for (const proxy of Object.values(all)) assert.equal(proxy.enabled, true, proxy.name);
    const reply = JSON.parse((await raw(target(server), 'GET', '/proxies')).body) as Record<string, { toxics: unknown[] }>;
    for (const [name, proxy] of Object.entries(reply)) assert.deepEqual(proxy.toxics, [], name);
  });

  it("announced each change to the model's listeners", () => {
    const kinds = new Set(events.map((e) => e.kind));
    for (const kind of ['proxy-created', 'proxy-updated', 'proxy-deleted', 'toxic-added', 'toxic-updated', 'toxic-removed', 'reset'] as const) {
      assert.ok(kinds.has(kind), kind);
    }
    // /reset enabled mysql (an update, as its listener opened) just before it removed the toxics
    const at = events.map((e) => e.kind).lastIndexOf('reset');
    const enabled = events[at - 1];
    assert.ok(enabled?.kind === 'proxy-updated');
    assert.deepEqual([enabled.after.name, enabled.before.enabled, enabled.after.enabled], ['mysql', false, true]);
    const reset = events[at];
    assert.ok(reset?.kind === 'reset');
    assert.deepEqual(
      reset.removed.map(({ proxy, toxic }) => `${proxy}/${toxic.name}`),
      ['redis/slow'],
    );
  });
});

describe('control API: raw HTTP', () => {
  let server: ControlServer;
  let to: Target;
  const json = { 'content-type': 'application/json' };

  before(async () => {
    server = await startControlServer(parseControlAddress('127.0.0.1:0'), createApiHandler(new ControlModel()));
    to = target(server);
    const created = await raw(to, 'POST', '/proxies', JSON.stringify({ name: 'p', upstream: '127.0.0.1:9' }), json);
    assert.equal(created.status, 201, created.body);
    const toxic = await raw(to, 'POST', '/proxies/p/toxics', JSON.stringify({ type: 'latency', attributes: { latency: 5 } }), json);
    assert.equal(toxic.status, 200, toxic.body);
  });
  after(() => server.close());

  it('answers a new toxic with its defaults: name type_stream, downstream, toxicity 1, missing attributes 0', async () => {
    const reply = await raw(to, 'GET', '/proxies/p/toxics/latency_downstream');
    assert.equal(reply.status, 200);
    assert.deepEqual(JSON.parse(reply.body), {
      name: 'latency_downstream',
      type: 'latency',
      stream: 'downstream',
      toxicity: 1,
      attributes: { latency: 5, jitter: 0 },
    });
  });

  it('400: malformed JSON, an empty body, a body of the wrong shape', async () => {
    assertError(await raw(to, 'POST', '/proxies', '{"name": "x",', json), 400, /^bad request body: /);
    assertError(await raw(to, 'POST', '/proxies', '', json), 400, /^bad request body: EOF$/);
    assertError(await raw(to, 'POST', '/proxies', '[1, 2]', json), 400, /^bad request body: /);
    assertError(await raw(to, 'POST', '/populate', '{"name": "x"}', json), 400, /^bad request body: /);
    assertError(await raw(to, 'POST', '/proxies/p/toxics', 'latency', json), 400, /^bad request body: /);
  });

  it('400: missing fields, as Toxiproxy names them', async () => {
    assertError(await raw(to, 'POST', '/proxies', '{"upstream": "127.0.0.1:9"}', json), 400, /^missing required field: name$/);
    assertError(await raw(to, 'POST', '/proxies', '{"name": "q"}', json), 400, /^missing required field: upstream$/);
    assertError(
      await raw(to, 'POST', '/populate', '[{"name": "a", "upstream": "127.0.0.1:9"}, {"name": "b"}]', json),
      400,
      /^missing required field: upstream at proxy 2$/,
    );
    assert.equal((await raw(to, 'GET', '/proxies/a')).status, 404, 'a populate with a bad entry changes nothing');
  });

  it('400: unknown toxic type, bad stream, out-of-range or wrong-typed attributes and fields', async () => {
    const bad: [object, RegExp][] = [
      [{ type: 'earthquake' }, /^invalid toxic type$/],
      [{ attributes: { latency: 5 } }, /^invalid toxic type$/],
      [{ type: 'latency', stream: 'sideways' }, /^stream was invalid, can be either upstream or downstream$/],
      [{ type: 'latency', name: 'x', toxicity: 1.5 }, /^bad request body: toxicity/],
      [{ type: 'latency', name: 'x', toxicity: -0.1 }, /^bad request body: toxicity/],
      [{ type: 'latency', name: 'x', toxicity: '1' }, /^bad request body: toxicity/],
      [{ type: 'latency', name: 'x', attributes: { latency: -1 } }, /^bad request body: attributes\.latency/],
      [{ type: 'latency', name: 'x', attributes: { latency: 1.5 } }, /^bad request body: attributes\.latency/],
      [{ type: 'latency', name: 'x', attributes: { latency: '100ms' } }, /^bad request body: attributes\.latency/],
      [{ type: 'latency', name: 'x', attributes: { latency: 2 ** 31 } }, /^bad request body: attributes\.latency/],
      [{ type: 'latency', attributes: [100] }, /^bad request body: attributes/],
      [{ type: 'slicer', attributes: { average_size: 0 } }, /^bad request body: attributes\.average_size/],
      [{ type: 'slicer', attributes: { average_size: 10, size_variation: 10 } }, /^bad request body: attributes\.size_variation/],
      [{ type: 'latency', name: 7 }, /^bad request body: name/],
    ];
    for (const [body, message] of bad) assertError(await raw(to, 'POST', '/proxies/p/toxics', JSON.stringify(body), json), 400, message);
    assertError(await raw(to, 'POST', '/proxies/p/toxics/latency_downstream', '{"attributes": {"jitter": -5}}', json), 400, /attributes\.jitter/);
    assertError(await raw(to, 'POST', '/proxies', '{"name": "q", "upstream": "nowhere"}', json), 400, /^bad request body: upstream/);
    assertError(await raw(to, 'POST', '/proxies', '{"name": "q", "upstream": "127.0.0.1:9", "enabled": "yes"}', json), 400, /^bad request body: enabled/);
    assertError(await raw(to, 'POST', '/proxies/p', '{"listen": "127.0.0.1:99999"}', json), 400, /^bad request body: listen/);
  });

  it('404: unknown proxy, toxic or path; a malformed escape is 400', async () => {
    assertError(await raw(to, 'GET', '/proxies/nope'), 404, /^proxy not found$/);
    assertError(await raw(to, 'POST', '/proxies/nope/toxics', 'not even JSON', json), 404, /^proxy not found$/);
    assertError(await raw(to, 'POST', '/proxies/nope', 'not even JSON', json), 404, /^proxy not found$/);
    assertError(await raw(to, 'PATCH', '/proxies/p/toxics/nope', 'not even JSON', json), 404, /^toxic not found$/);
    assertError(await raw(to, 'DELETE', '/proxies/p/toxics/nope'), 404, /^toxic not found$/);
    assertError(await raw(to, 'POST', '/proxies/p/toxics/nope', '{}', json), 404, /^toxic not found$/);
    for (const path of ['/', '/nope', '/proxies/', '/proxies/p/toxics/latency_downstream/more', '/proxies/p%2Fq/toxics']) {
      assertError(await raw(to, 'GET', path), 404);
    }
    assertError(await raw(to, 'GET', '/proxies/%zz'), 400);
  });

  it('405 for a known path with another method, naming the allowed ones', async () => {
    const reply = await raw(to, 'DELETE', '/proxies');
    assertError(reply, 405);
    assert.equal(reply.headers.allow, 'GET, POST');
  });

  it("409: a duplicate proxy or toxic, before the toxic's attributes are read", async () => {
    assertError(await raw(to, 'POST', '/proxies', '{"name": "p", "upstream": "127.0.0.1:9"}', json), 409, /^proxy already exists$/);
    assertError(await raw(to, 'POST', '/proxies/p/toxics', '{"type": "latency", "attributes": {"latency": -1}}', json), 409, /^toxic already exists$/);
    assertError(await raw(to, 'POST', '/proxies/p/toxics', '{"type": "latency", "attributes": {"latency": "x"}}', json), 409, /^toxic already exists$/);
  });

  it('403 for a browser: a Mozilla/ User-Agent or an Origin header, on any path', async () => {
    const browser = { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' };
    assertError(await raw(to, 'GET', '/proxies', undefined, browser), 403, /^User agent not allowed$/);
    assertError(await raw(to, 'POST', '/reset', undefined, { origin: 'https://evil.example' }), 403);
    assertError(await raw(to, 'GET', '/nope', undefined, browser), 403);
    assert.equal((await raw(to, 'GET', '/proxies', undefined, { 'user-agent': 'curl/8.5.0' })).status, 200);
  });

  it('413 for a body over the cap, declared or streamed; the server keeps serving', async () => {
    const big = Buffer.alloc(MAX_BODY_BYTES + 1, 0x20);
    assertError(await raw(to, 'POST', '/proxies', big, json), 413);
    const chunked = await new Promise<Reply>((resolve, reject) => {
      const req = httpRequest({ ...to, method: 'POST', path: '/populate', headers: { ...json, 'transfer-encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      for (let i = 0; i < 5; i++) req.write(Buffer.alloc(MAX_BODY_BYTES / 4, 0x20));
      req.end();
    });
    assertError(chunked, 413);
    assert.equal((await raw(to, 'GET', '/version')).status, 200);
    // exactly the cap is read
    assertError(await raw(to, 'POST', '/proxies', Buffer.alloc(MAX_BODY_BYTES, 0x20), json), 400, /^bad request body: EOF$/);
  });

  it('204 with no body for DELETE and /reset', async () => {
    const reply = await raw(to, 'DELETE', '/proxies/p/toxics/latency_downstream');
    assert.equal(reply.status, 204);
    assert.equal(reply.body, '');
    assert.equal((await raw(to, 'POST', '/reset')).status, 204);
  });
});

describe('control API: unix socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'graft-control-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is created mode 0600, serves the API, and is removed at close', async () => {
    const path = join(dir, 'control.sock');
    const server = await startControlServer(parseControlAddress(`unix:${path}`), createApiHandler(new ControlModel()));
    assert.equal(server.address, `unix:${path}`);
    const stat = statSync(path);
    assert.ok(stat.isSocket());
    assert.equal(stat.mode & 0o777, 0o600);
    const reply = await raw({ socketPath: path }, 'GET', '/proxies');
    assert.deepEqual([reply.status, reply.body], [200, '{}']);
    await server.close();
    assert.equal(existsSync(path), false);
  });
  it('replaces a stale socket left by a graft that died; refuses a path in use', async () => {
    const path = join(dir, 'stale.sock');
    // a socket file with no listener: a process that bound it and exited without closing
    const child = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`]);
    assert.equal(child.status, 0, String(child.stderr));
    assert.ok(statSync(path).isSocket());
    const server = await startControlServer(parseControlAddress(`unix:${path}`), createApiHandler(new ControlModel()));
    assert.equal((await raw({ socketPath: path }, 'GET', '/version')).status, 200);
    await assert.rejects(startControlServer(parseControlAddress(`unix:${path}`), createApiHandler(new ControlModel())), { code: 'EADDRINUSE' });
    await server.close();
    const file = join(dir, 'regular');
    writeFileSync(file, 'mine');
    await assert.rejects(startControlServer(parseControlAddress(`unix:${file}`), createApiHandler(new ControlModel())), { code: 'EADDRINUSE' });
    assert.equal(readFileSync(file, 'utf8'), 'mine');
  });
});

describe('control address', () => {
  it('a port alone is loopback; a host or unix path only when written', () => {
    assert.deepEqual(parseControlAddress('8474'), { kind: 'tcp', host: '127.0.0.1', port: 8474 });
    assert.deepEqual(parseControlAddress('0.0.0.0:8474'), { kind: 'tcp', host: '0.0.0.0', port: 8474 });
    assert.deepEqual(parseControlAddress('[::1]:8474'), { kind: 'tcp', host: '::1', port: 8474 });
    assert.deepEqual(parseControlAddress('unix:/run/graft.sock'), { kind: 'unix', path: '/run/graft.sock' });
    for (const bad of ['', ':8474', 'host:', 'unix:', '70000', '[nope]:1', 'a:b:1'])
      assert.throws(() => parseControlAddress(bad), /PORT|socket path|IPv6/, bad);
  });
});

describe('control API: property', () => {
  const methods = fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'HEAD', 'OPTIONS', 'get', '');
  const segment = fc.oneof(
    fc.constantFrom('proxies', 'toxics', 'populate', 'reset', 'version', 'p', 'q', 'latency_downstream', '', '..', '%2F', '%zz', '%E2%82', '?x=1'),
    fc.string({ maxLength: 8 }),
  );
  const path = fc.array(segment, { maxLength: 5 }).map((parts) => `/${parts.join('/')}`);
  const value = fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 6 }), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}));
  /** Mostly a value from `good`, sometimes anything: sequences must both build state and hit every check. */
  const mostly = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof({ arbitrary: good, weight: 5 }, { arbitrary: value, weight: 1 });
  const toxicBody = fc.record(
    {
      name: mostly(fc.constantFrom('t', 't', '')),
      type: mostly(fc.constantFrom(...TOXIC_TYPES, 'down')),
      stream: mostly(fc.constantFrom('upstream', 'downstream', 'UPSTREAM')),
      toxicity: mostly(fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: -1, max: 2 }))),
      attributes: mostly(
        fc.dictionary(
          fc.constantFrom('latency', 'jitter', 'rate', 'delay', 'timeout', 'average_size', 'size_variation', 'bytes'),
          mostly(fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.integer())),
        ),
      ),
    },
    { requiredKeys: ['type'] },
  );
  const proxyBody = fc.record(
    {
      name: mostly(fc.constantFrom('p', 'q')),
      listen: mostly(fc.constantFrom('127.0.0.1:0', ':8080', '[::1]:1', 'x')),
      upstream: mostly(fc.constantFrom('127.0.0.1:9', 'db:5432', '')),
      enabled: mostly(fc.boolean()),
    },
    { requiredKeys: ['name', 'upstream'] },
  );
  const body = fc.oneof(
    fc.json().map(String),
    toxicBody.map((b) => JSON.stringify(b)),
    proxyBody.map((b) => JSON.stringify(b)),
    fc.array(proxyBody, { maxLength: 3 }).map((b) => JSON.stringify(b)),
    fc.string(),
    fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  );
  const headers = fc.dictionary(
    fc.constantFrom('user-agent', 'origin', 'Content-Type', 'USER-AGENT'),
    fc.oneof(fc.string({ maxLength: 12 }), fc.constant('Mozilla/5.0')),
    {
      maxKeys: 2,
    },
  );
  const anyRequest = fc.tuple(methods, path, headers, body);
  // requests a client could mean, so that sequences build proxies and toxics and then change them
  const name = fc.constantFrom('p', 'q');
  const toxicName = fc.constantFrom('t', 'latency_downstream');
  const plausible = fc.oneof(
    fc.tuple(
      fc.constant('POST'),
      fc.constant('/proxies'),
      fc.constant({}),
      proxyBody.map((b) => JSON.stringify(b)),
    ),
    fc.tuple(
      fc.constantFrom('POST', 'PATCH'),
      name.map((n) => `/proxies/${n}`),
      fc.constant({}),
      proxyBody.map((b) => JSON.stringify(b)),
    ),
    fc.tuple(
      fc.constant('POST'),
      name.map((n) => `/proxies/${n}/toxics`),
      fc.constant({}),
      toxicBody.map((b) => JSON.stringify(b)),
    ),
    fc.tuple(
      fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE'),
      fc.tuple(name, toxicName).map(([n, t]) => `/proxies/${n}/toxics/${t}`),
      fc.constant({}),
      toxicBody.map((b) => JSON.stringify(b)),
    ),
    fc.tuple(
      fc.constant('POST'),
      fc.constant('/populate'),
      fc.constant({}),
      fc.array(proxyBody, { maxLength: 3 }).map((b) => JSON.stringify(b)),
    ),
    fc.tuple(
      fc.constantFrom('DELETE', 'GET'),
      name.map((n) => `/proxies/${n}`),
      fc.constant({}),
      fc.constant(''),
    ),
    fc.tuple(fc.constant('POST'), fc.constant('/reset'), fc.constant({}), fc.constant('')),
  );
  const request = fc.oneof({ arbitrary: anyRequest, weight: 1 }, { arbitrary: plausible, weight: 3 });

  /** What the state must be after any sequence: every value valid, toxic names unique per proxy. */
  function assertSound(model: ControlModel): void {
    for (const proxy of model.proxies()) {
      assert.ok(checkProxy(proxy).ok, JSON.stringify(proxy));
      for (const toxic of proxy.toxics) assert.ok(checkToxic(toxic).ok, JSON.stringify(toxic));
      assert.equal(new Set(proxy.toxics.map((t) => t.name)).size, proxy.toxics.length);
    }
  }

  it('no request sequence throws; each answer is 2xx/4xx with a JSON body (none for 204); the state stays sound', async () => {
    const created = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: 10, maxLength: 60, size: 'medium' }), async (requests) => {
        const model = new ControlModel();
        model.subscribe((e) => created.add(e.kind));
        const handle = createApiHandler(model);
        for (const [method, p, h, b] of requests) {
          const reply = await handle(method, p, h, b);
          assert.ok((reply.status >= 200 && reply.status < 300) || (reply.status >= 400 && reply.status < 500), `${reply.status} ${reply.body}`);
          if (reply.status === 204) {
            assert.equal(reply.body, '');
            continue;
          }
          const parsed = JSON.parse(reply.body) as unknown;
          if (reply.status >= 400) assert.deepEqual(parsed, { error: (parsed as { error: string }).error, status: reply.status });
        }
        assertSound(model);
      }),
      { seed: 15_015, numRuns: 400 },
    );
    // the generators reach every kind of change, so the property covered them
    assert.deepEqual([...created].sort(), ['proxy-created', 'proxy-deleted', 'proxy-updated', 'reset', 'toxic-added', 'toxic-removed', 'toxic-updated']);
  });
});
