/**
 * `graft serve`: the control API with no program, as a Toxiproxy server
 * (no root needed: loopback only). Driven with the npm Toxiproxy client;
 * a proxy's listener forwards to an echo server in this process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Toxiproxy } from 'toxiproxy-node-client';
import { repoRoot } from '../lab/paths.js';

const tmp = mkdtempSync(join(tmpdir(), 'graft-serve-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Serving {
  readonly child: ChildProcess;
  /** where the API listens, from graft's own line */
  readonly address: string;
  readonly stderr: () => string;
}

/** Starts `graft serve ARGS` and waits for the line saying where its API listens. */
async function serve(args: readonly string[]): Promise<Serving> {
  const child = spawn(join(repoRoot, 'bin/graft'), ['serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const lines = createInterface({ input: child.stderr });
  const address = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      stderr += `${line}\n`;
      const m = /^graft: control API on (\S+) /.exec(line);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`graft serve exited with ${code}: ${stderr}`)));
  });
  return { child, address, stderr: () => stderr };
}

/** Stops it as a service manager would; resolves with its exit status. */
async function stop(s: Serving): Promise<number | null> {
  s.child.kill('SIGTERM');
  const [code] = (await once(s.child, 'exit')) as [number | null];
  return code;
}

/** One byte out and back over `socket`; the round trip in ms. */
async function roundTrip(socket: net.Socket): Promise<number> {
  const started = performance.now();
  socket.write('x');
  await once(socket, 'data');
  return performance.now() - started;
}

describe('graft serve', () => {
  let echo: net.Server;
  let echoPort: number;
  before(async () => {
    echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    echoPort = (echo.address() as net.AddressInfo).port;
  });
  after(() => echo.close());

  it('is a Toxiproxy server: --populate at start, a listener per proxy, toxics live on its connections, SIGTERM ends it with 0', async () => {
    const file = join(tmp, 'proxies.json');
    writeFileSync(file, JSON.stringify([{ name: 'echo', listen: '127.0.0.1:0', upstream: `127.0.0.1:${echoPort}` }]));
    const s = await serve(['--control', '127.0.0.1:0', '--populate', file]);
    try {
      const toxiproxy = new Toxiproxy(`http://${s.address}`);
      const proxy = await toxiproxy.get('echo');
      assert.match(proxy.listen, /^127\.0\.0\.1:[1-9]\d*$/, 'port 0 made concrete');
      const [host, port] = [proxy.listen.split(':')[0]!, Number(proxy.listen.split(':')[1])];
      const client = net.connect(port, host);
      await once(client, 'connect');
      assert.ok((await roundTrip(client)) < 150);
      const toxic = await proxy.addToxic({ name: 'slow', type: 'latency', stream: 'downstream', toxicity: 1, attributes: { latency: 300, jitter: 0 } });
      assert.ok((await roundTrip(client)) >= 280, 'latency on the open connection');
      await toxic.remove();
      assert.ok((await roundTrip(client)) < 150, 'and gone');
      // the cut may come before the API's answer: listen first
      const closed = once(client, 'close');
      client.on('error', () => {});
      await proxy.update({ enabled: false, listen: proxy.listen, upstream: proxy.upstream });
      await closed;
      const refused = net.connect(port, host);
      const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
      assert.equal(err.code, 'ECONNREFUSED', 'a disabled proxy does not listen');
      client.destroy();
    } finally {
      assert.equal(await stop(s), 0, s.stderr());
    }
  });

  it('on a unix socket: mode 0600, removed when it stops', async () => {
    const path = join(tmp, 'api.sock');
    const s = await serve(['--control', `unix:${path}`]);
    assert.equal(s.address, `unix:${path}`);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(await stop(s), 0, s.stderr());
    assert.ok(!existsSync(path));
  });

  it('a bad --populate file, an address in use, a bad address: exit 2 naming it', async () => {
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, '[{"name": "x"}]');
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const takenPort = (taken.address() as net.AddressInfo).port;
    const run = async (args: readonly string[]): Promise<[number | null, string]> => {
      const child = spawn(join(repoRoot, 'bin/graft'), ['serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const [code] = (await once(child, 'exit')) as [number | null];
      return [code, stderr];
    };
    try {
      assert.deepEqual(await run(['--control', '127.0.0.1:0', '--populate', bad]), [
        2,
        `graft: --populate ${bad}: 400 missing required field: upstream at proxy 1\n`,
      ]);
      assert.deepEqual(await run(['--control', `127.0.0.1:${takenPort}`]), [2, `graft: --control 127.0.0.1:${takenPort}: cannot listen: EADDRINUSE\n`]);
      assert.deepEqual(await run(['--control', 'nowhere']), [2, "graft: --control: 'nowhere' is not PORT, HOST:PORT or unix:PATH\n"]);
    } finally {
      taken.close();
    }
  });
});
