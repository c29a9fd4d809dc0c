/**
 * The control API's proxies as scopes (src/control/scopes.ts), without
 * sockets: which connections a proxy's upstream selects (addresses in any
 * spelling, host names graft answered), what a new connect in a scope gets
 * (refused, delayed, let through) and the toxics in Toxiproxy's units as the
 * relay's stages.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkProxy, checkToxic, ControlModel, type ToxicInput } from '../../src/control/model.js';
import { Scopes, stageSpec } from '../../src/control/scopes.js';
import { seededRandom } from '../../src/chaos/random.js';

function proxy(name: string, upstream: string, enabled = true) {
  const checked = checkProxy({ name, listen: '127.0.0.1:0', upstream, enabled });
  assert.ok(checked.ok);
  return checked.value;
}

function toxic(input: Partial<ToxicInput> & Pick<ToxicInput, 'type'>) {
  const checked = checkToxic({ name: input.type, stream: 'downstream', toxicity: 1, attributes: {}, ...input });
  assert.ok(checked.ok, checked.ok ? '' : checked.problem);
  return checked.value;
}

function setup() {
  const model = new ControlModel();
  const scopes = new Scopes(model, seededRandom(1));
  return { model, scopes };
}

describe('control scopes', () => {
  it('an upstream selects connections by address (any spelling) and port, or by the name graft answered', () => {
    const { model, scopes } = setup();
    model.createProxy(proxy('v4', '198.51.100.7:80'));
    model.createProxy(proxy('v6', '[2001:db8::1]:443'));
    model.createProxy(proxy('db', 'DB.Example:5432'));
    const scope = (ip: string, port: number, name?: string) => scopes.scopeOf({ ip, port, ...(name !== undefined ? { name } : {}) })?.name;
    assert.equal(scope('198.51.100.7', 80), 'v4');
    assert.equal(scope('198.51.100.7', 81), undefined);
    assert.equal(scope('2001:0db8:0:0::0001', 443), 'v6');
    assert.equal(scope('192.0.2.9', 5432, 'db.example.'), 'db');
    assert.equal(scope('192.0.2.9', 5432), undefined, 'a name matches only where graft knows it');
    assert.equal(scope('192.0.2.9', 5432, 'other.example'), undefined);
  });

  it('a connection open before its proxy existed joins the scope when the proxy comes, and leaves when it goes', () => {
    const { model, scopes } = setup();
    const tracked = scopes.track({ ip: '198.51.100.7', port: 80 });
    assert.equal(tracked.scope(), undefined);
    model.createProxy(proxy('web', '198.51.100.7:80'));
    assert.equal(tracked.scope(), 'web');
    model.addToxic('web', toxic({ type: 'latency', attributes: { latency: 100 } }));
    assert.deepEqual(tracked.toxics().down, [{ key: 'api:web/latency', spec: { type: 'latency', latencyMs: 100, jitterMs: 0 } }]);
    model.deleteProxy('web');
    assert.equal(tracked.scope(), undefined);
    assert.deepEqual(tracked.toxics(), { up: [], down: [] });
    assert.deepEqual(tracked.release(), { scope: 'web', faults: ['web/latency: latency latency=100 jitter=0 stream=downstream'] });
  });

  it('a new connect: refused when its proxy is disabled or by a refuse toxic; delayed by delay toxics; toxicity 0 never applies', () => {
    const { model, scopes } = setup();
    const dst = { ip: '198.51.100.7', port: 80 };
    assert.deepEqual(scopes.admit(dst), { kind: 'go', delayMs: 0, scope: undefined, faults: [] });
    model.createProxy(proxy('web', '198.51.100.7:80', false));
    assert.equal(scopes.admit(dst).kind, 'refuse');
    assert.equal(scopes.disabledFor(dst), 'web');
    model.updateProxy(proxy('web', '198.51.100.7:80', true));
    model.addToxic('web', toxic({ type: 'delay', name: 'd1', attributes: { time: 300 } }));
    model.addToxic('web', toxic({ type: 'delay', name: 'd2', attributes: { time: 200 } }));
    model.addToxic('web', toxic({ type: 'refuse', name: 'never', toxicity: 0, attributes: { errno: 'ETIMEDOUT' } }));
    const delayed = scopes.admit(dst);
    assert.equal(delayed.kind, 'go');
    assert.equal(delayed.delayMs, 500);
    model.addToxic('web', toxic({ type: 'refuse', name: 'no', attributes: { errno: 'ehostunreach', delay: 50 } }));
    assert.deepEqual(scopes.admit(dst), {
      kind: 'refuse',
      errno: 'EHOSTUNREACH',
      delayMs: 50,
      scope: 'web',
      fault: 'web/no: refuse errno=EHOSTUNREACH delay=50',
    });
  });

  it("toxics in Toxiproxy's units become the relay's stages (KB/s, slicer delay in µs; bandwidth 0 is none)", () => {
    assert.deepEqual(stageSpec(toxic({ type: 'bandwidth', attributes: { rate: 64 } })), { type: 'bandwidth', bytesPerSecond: 64_000 });
    assert.equal(stageSpec(toxic({ type: 'bandwidth', attributes: { rate: 0 } })), undefined);
    assert.deepEqual(stageSpec(toxic({ type: 'slicer', attributes: { average_size: 10, size_variation: 2, delay: 1500 } })), {
      type: 'slicer',
      averageSize: 10,
      sizeVariation: 2,
      delayMs: 1.5,
    });
    assert.deepEqual(stageSpec(toxic({ type: 'reset_peer', attributes: { timeout: 20 } })), { type: 'reset_peer', timeMs: 20 });
    assert.equal(stageSpec(toxic({ type: 'refuse' })), undefined, 'connect toxics have no stage');
  });

  it('an unknown errno for a refuse toxic is refused by the model', () => {
    const checked = checkToxic({ name: 'x', type: 'refuse', stream: 'downstream', toxicity: 1, attributes: { errno: 'ENOPE' } });
    assert.ok(!checked.ok);
    assert.match(checked.problem, /attributes\.errno: 'ENOPE' is not an errno graft can fail a connect with/);
  });
});
