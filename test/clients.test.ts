/** Real client programs reach a namespace test host through graft. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { A4, A6, B4, World, connections } from './lab/world.js';
import { repoRoot } from './lab/paths.js';
import { LAB, needs } from './lab/capabilities.js';

describe('real clients through graft', { skip: needs(...LAB, 'curl') }, () => {
  let world: World;
  before(async () => {
    world = await new World().start();
  });
  after(() => world?.destroy());

  it('curl', async () => {
    const mark = world.events.length;
    const run = await world.graft(['curl', '-sS', `http://${A4}:8080/curl`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'name=A path=/curl\n');
    const conns = connections(run);
    assert.equal(conns.length, 1);
    assert.equal(conns[0]!.dst, `${A4}:8080`);
    assert.equal(conns[0]!.action, 'proxy');
    assert.match(String(conns[0]!.exe), /curl$/);
    assert.ok(Number(conns[0]!.bytesUp) > 0 && Number(conns[0]!.bytesDown) > 0);
    assert.equal(world.since(mark).filter((e) => e.service === 'http').length, 1);
  });

  it('curl over IPv6', async () => {
    const run = await world.graft(['curl', '-sS', `http://[${A6}]:8080/v6`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'name=A path=/v6\n');
    assert.deepEqual(
      connections(run).map((c) => c.dst),
      [`[${A6}]:8080`],
    );
  });

  it('wget', { skip: needs('wget') }, async () => {
    const run = await world.graft(['wget', '-q', '-O', '-', `http://${B4}:8080/wget`]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'name=B path=/wget\n');
    assert.deepEqual(
      connections(run).map((c) => c.dst),
      [`${B4}:8080`],
    );
    assert.match(String(connections(run)[0]!.exe), /wget$/);
  });

  it('python3 urllib', async () => {
    const code = `import urllib.request; print(urllib.request.urlopen('http://${A4}:8080/py').read().decode(), end='')`;
    const run = await world.graft(['python3', '-c', code]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'name=A path=/py\n');
    assert.deepEqual(
      connections(run).map((c) => c.dst),
      [`${A4}:8080`],
    );
    assert.match(String(connections(run)[0]!.exe), /python3/);
  });

  it('runs unprivileged (no_new_privs), as user nobody', { skip: needs('setpriv') }, async () => {
    const run = await world.native([
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      join(repoRoot, 'bin/graft'),
      '-v',
      '--',
      'curl',
      '-sS',
      `http://${A4}:8080/nobody`,
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'name=A path=/nobody\n');
    assert.match(run.stderr, new RegExp(`^graft: curl\\[\\d+\\] -> ${A4.replaceAll('.', '\\.')}:8080 proxy: \\d+ B up, \\d+ B down, \\d+ ms\\n$`));
  });

  it('is quiet on the terminal by default, one line per connection with -v, silent with -q', async () => {
    const ok = `http://${A4}:8080/quiet`;
    const refused = `http://${A4}:1/`;
    const plain = await world.graft(['sh', '-c', `curl -sS ${ok}; curl -s ${refused}; true`]);
    assert.equal(plain.stdout, 'name=A path=/quiet\n');
    assert.equal(plain.stderr, '');
    const verbose = await world.graft(['sh', '-c', `curl -sS ${ok}; curl -s ${refused}; true`], { graftArgs: ['-v'] });
    const lines = verbose.stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 2, verbose.stderr);
    assert.match(
      lines.find((l) => l.includes(':8080'))!,
      /^graft: curl\[\d+\] -> 198\.51\.100\.7:8080 proxy: \d+ B up, \d+ B down, \d+ ms$/,
    );
    assert.match(
      lines.find((l) => l.includes(':1 '))!,
      /^graft: curl\[\d+\] -> 198\.51\.100\.7:1 proxy: 0 B up, 0 B down, \d+ ms, error: connect: ECONNREFUSED$/,
    );
    const quiet = await world.graft(['sh', '-c', `curl -sS ${ok}; curl -s ${refused}; true`], { graftArgs: ['-q'] });
    assert.equal(quiet.stderr, '');
    assert.equal(connections(quiet).length, 2, 'the log file still gets every record');
  });

  it('a bash script: two curls in sequence and one in the background', { skip: needs('bash') }, async () => {
    const script = [`curl -sS http://${A4}:8080/one`, `curl -sS http://${B4}:8080/bg > "$1" &`, `curl -sS http://${A4}:8080/two`, 'wait', 'cat "$1"'].join(
      '\n',
    );
    const run = await world.graft(['bash', '-c', script, 'script', world.path('bg.out')]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, 'name=A path=/one\nname=A path=/two\nname=B path=/bg\n');
    const conns = connections(run);
    assert.equal(conns.length, 3);
    const pids = new Set(conns.map((c) => c.pid));
    assert.equal(pids.size, 3, 'each curl is its own process');
    assert.deepEqual(conns.map((c) => c.dst).sort(), [`${A4}:8080`, `${A4}:8080`, `${B4}:8080`]);
  });
});
