/**
 * The control model and the pure handler, without sockets: how bodies are
 * read (as Toxiproxy's Go decoder reads them), what each change does to the
 * state, and which events the later layers receive.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createApiHandler, type ApiResponse } from '../../src/control/api.js';
import { checkProxy, ControlModel, type ControlEvent } from '../../src/control/model.js';

/** A handler over a fresh model, answering with the parsed body; and the events it caused. */
function setup() {
  const model = new ControlModel();
  const events: ControlEvent[] = [];
  model.subscribe((e) => events.push(e));
  const handle = createApiHandler(model);
  const call = async (method: string, path: string, body: unknown = ''): Promise<{ status: number; body: unknown; reply: ApiResponse }> => {
    const reply = await handle(method, path, {}, typeof body === 'string' ? body : JSON.stringify(body));
    return { status: reply.status, body: reply.body ? (JSON.parse(reply.body) as unknown) : undefined, reply };
  };
  return { model, events, call };
}

const upstream = '10.0.0.1:80';

describe('control model: bodies read as Toxiproxy reads them', () => {
  it('keys match case-insensitively, the last one winning; null is as absent; unknown keys are ignored', async () => {
    const { call } = setup();
    const created = await call('POST', '/proxies', '{"Name": "a", "NAME": "b", "Upstream": "10.0.0.1:80", "enabled": null, "colour": "red"}');
    assert.equal(created.status, 201);
    assert.deepEqual(created.body, { name: 'b', listen: '127.0.0.1:0', upstream, enabled: true, toxics: [] });
    const toxic = await call(
      'POST',
      '/proxies/b/toxics',
      '{"TYPE": "latency", "Stream": "UPSTREAM", "toxicity": null, "attributes": {"Latency": 10, "extra": "x"}}',
    );
    assert.deepEqual(toxic.body, { attributes: { latency: 10, jitter: 0 }, name: 'latency_upstream', type: 'latency', stream: 'upstream', toxicity: 1 });
  });

  it("GET /proxies: an object keyed by name, fields in Toxiproxy's order", async () => {
    const { call } = setup();
    await call('POST', '/proxies', { name: 'z', upstream });
    await call('POST', '/proxies', { name: 'a', upstream, listen: '127.0.0.1:5000', enabled: false });
    const { reply } = await call('GET', '/proxies');
    assert.equal(
      reply.body,
      '{"a":{"name":"a","listen":"127.0.0.1:5000","upstream":"10.0.0.1:80","enabled":false,"toxics":[]},' +
        '"z":{"name":"z","listen":"127.0.0.1:0","upstream":"10.0.0.1:80","enabled":true,"toxics":[]}}',
    );
  });

  it('a proxy update changes only what the body names, never the name, and keeps the toxics', async () => {
    const { call, events } = setup();
    await call('POST', '/proxies', { name: 'a', upstream });
    await call('POST', '/proxies/a/toxics', { type: 'timeout' });
    events.length = 0;
    const updated = await call('PATCH', '/proxies/a', { name: 'renamed', enabled: false });
    assert.equal(updated.status, 200);
    assert.deepEqual(updated.body, {
      name: 'a',
      listen: '127.0.0.1:0',
      upstream,
      enabled: false,
      toxics: [{ attributes: { timeout: 0 }, name: 'timeout_downstream', type: 'timeout', stream: 'downstream', toxicity: 1 }],
    });
    assert.deepEqual(
      events.map((e) => e.kind === 'proxy-updated' && [e.before.enabled, e.after.enabled]),
      [[true, false]],
    );
  });

  it('a toxic update merges the attributes it names and keeps the toxicity it omits', async () => {
    const { call, events } = setup();
    await call('POST', '/proxies', { name: 'a', upstream });
    await call('POST', '/proxies/a/toxics', { name: 's', type: 'slicer', toxicity: 0.25, attributes: { average_size: 100, size_variation: 10, delay: 5 } });
    const updated = await call('POST', '/proxies/a/toxics/s', { attributes: { delay: 50 } });
    assert.deepEqual(updated.body, {
      attributes: { average_size: 100, size_variation: 10, delay: 50 },
      name: 's',
      type: 'slicer',
      stream: 'downstream',
      toxicity: 0.25,
    });
    const last = events.at(-1);
    assert.ok(last?.kind === 'toxic-updated');
    assert.deepEqual(
      [last.before.attributes, last.after.attributes],
      [
        { average_size: 100, size_variation: 10, delay: 5 },
        { average_size: 100, size_variation: 10, delay: 50 },
      ],
    );
  });

  it('toxic names are unique across both streams of a proxy, not across proxies', async () => {
    const { call } = setup();
    await call('POST', '/proxies', { name: 'a', upstream });
    await call('POST', '/proxies', { name: 'b', upstream });
    assert.equal((await call('POST', '/proxies/a/toxics', { name: 't', type: 'latency', stream: 'upstream' })).status, 200);
    assert.equal((await call('POST', '/proxies/a/toxics', { name: 't', type: 'latency', stream: 'downstream' })).status, 409);
    assert.equal((await call('POST', '/proxies/b/toxics', { name: 't', type: 'latency' })).status, 200);
  });
});

describe('control model: events for the layers that act on connections', () => {
  it('each change, in order, with what changed', async () => {
    const { call, events } = setup();
    await call('POST', '/proxies', { name: 'a', upstream });
    await call('POST', '/proxies/a/toxics', { type: 'bandwidth', attributes: { rate: 10 } });
    await call('DELETE', '/proxies/a/toxics/bandwidth_downstream');
    await call('POST', '/proxies/a/toxics', { type: 'limit_data', stream: 'upstream', attributes: { bytes: 5 } });
    await call('POST', '/proxies/a', { enabled: false });
    await call('POST', '/reset');
    await call('DELETE', '/proxies/a');
    assert.deepEqual(
      events.map((e) => e.kind),
      // /reset enables each disabled proxy as its listener opens (an update each), then removes the toxics
      ['proxy-created', 'toxic-added', 'toxic-removed', 'toxic-added', 'proxy-updated', 'proxy-updated', 'reset', 'proxy-deleted'],
    );
    const enabled = events[5];
    assert.ok(enabled?.kind === 'proxy-updated');
    assert.deepEqual([enabled.before.enabled, enabled.after.enabled, enabled.after.name], [false, true, 'a']);
    const reset = events[6];
    assert.ok(reset?.kind === 'reset');
    assert.deepEqual([reset.enabled.map((p) => p.name), reset.removed.map((r) => r.toxic.name)], [[], ['limit_data_upstream']]);
  });

  it('/populate replacing a changed proxy: deleted (with its toxics) then created; an identical one: nothing', async () => {
    const { call, events } = setup();
    await call('POST', '/proxies', { name: 'a', upstream, enabled: false });
    await call('POST', '/proxies/a/toxics', { type: 'latency' });
    events.length = 0;
    const same = await call('POST', '/populate', [{ name: 'a', upstream }]);
    assert.equal(same.status, 201);
    assert.deepEqual(same.body, {
      proxies: [
        { name: 'a', listen: '127.0.0.1:0', upstream, enabled: false, toxics: [(same.body as { proxies: [{ toxics: [unknown] }] }).proxies[0].toxics[0]] },
      ],
    });
    assert.equal(events.length, 0);
    await call('POST', '/populate', [{ name: 'a', upstream: '10.0.0.2:80' }]);
    assert.deepEqual(
      events.map((e) => e.kind + (e.kind === 'proxy-deleted' ? `:${e.toxics.length}` : '')),
      ['proxy-deleted:1', 'proxy-created'],
    );
    assert.deepEqual((await call('POST', '/populate', [])).body, { proxies: [] });
  });

  it('a listener that throws: the others still hear the event, the state holds the change, the answer is 500', async () => {
    const { model, call } = setup();
    const heard: string[] = [];
    model.subscribe(() => {
      throw new Error('relay gone');
    });
    model.subscribe((e) => heard.push(e.kind));
    const reply = await call('POST', '/proxies', { name: 'a', upstream });
    assert.equal(reply.status, 500);
    assert.match((reply.body as { error: string }).error, /a control listener failed on proxy-created/);
    assert.deepEqual(heard, ['proxy-created']);
    assert.ok(model.proxy('a'));
  });

  it('recordListen: the bound address replaces port 0, silently', async () => {
    const { model, call, events } = setup();
    await call('POST', '/proxies', { name: 'a', upstream });
    events.length = 0;
    model.recordListen('a', '127.0.0.1:40123');
    assert.equal(model.proxy('a')?.listen, '127.0.0.1:40123');
    assert.equal(events.length, 0);
  });
});

describe('control model: addresses', () => {
  const check = (listen: string, up: string) => checkProxy({ name: 'p', listen, upstream: up, enabled: true }).ok;

  it('listen: host:port, the host possibly empty (every address), port 0 to pick one', () => {
    for (const listen of ['127.0.0.1:0', ':8080', '[::1]:1', 'localhost:65535']) assert.ok(check(listen, upstream), listen);
    for (const listen of ['127.0.0.1', '127.0.0.1:65536', '[::1]', 'a b:1', '1:2:3', '']) assert.ok(!check(listen, upstream), listen);
  });

  it('upstream: host:port with a host and a port from 1', () => {
    for (const up of ['10.0.0.1:1', 'db.internal:5432', '[2001:db8::1]:443']) assert.ok(check('127.0.0.1:0', up), up);
    for (const up of [':80', 'db:0', 'db', 'db:http', '[::1]', '[db]:80', 'http://db:80', 'a@b:1']) assert.ok(!check('127.0.0.1:0', up), up);
  });
});
