/**
 * The standard lab for graft's tests:
 *
 *   client ns  (192.0.2.1, 2001:db8:1::1) --veth-- host ns (192.0.2.2, 2001:db8:1::2)
 *   host answers as A on 198.51.100.7 and 2001:db8:2::7,
 *             as B on 198.51.100.8 and 2001:db8:2::8 (see fixtures/server.ts)
 *   203.0.113.9 is routed to the host, which silently drops it (a black hole)
 *
 * graft and the program under test run in the client namespace.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { Lab, type Namespace } from './netns.js';
import { repoRoot } from './paths.js';

export const A4 = '198.51.100.7';
export const B4 = '198.51.100.8';
export const A6 = '2001:db8:2::7';
export const B6 = '2001:db8:2::8';
export const BLACKHOLE4 = '203.0.113.9';

export interface ServerEvent {
  readonly service: string;
  readonly name: string;
  readonly remote?: string;
  readonly remotePort?: number;
}

export interface GraftRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** the ndjson records graft wrote to its log file */
  readonly records: Record<string, unknown>[];
  readonly ms: number;
}

export interface GraftOptions {
  /** extra graft options before `--` */
  readonly graftArgs?: readonly string[];
  readonly input?: string;
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** called with the running graft process (to send it signals) */
  readonly onSpawn?: (child: ChildProcess) => void;
}

/**
 * A lab with a client namespace, where graft and the program under test
 * run. Subclasses add the hosts the client reaches.
 */
export class ClientLab {
  readonly lab = new Lab();
  readonly client: Namespace;
  readonly events: ServerEvent[] = [];
  private readonly tmp = mkdtempSync(join(tmpdir(), 'graft-test-'));
  private runs = 0;

  constructor() {
    this.client = this.lab.host('client');
  }

  /** Builds the rest of the lab; tears everything down if that fails. */
  protected build(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** Runs `graft [graftArgs] -- program args...` in the client namespace. */
  async graft(program: readonly string[], opts: GraftOptions = {}): Promise<GraftRun> {
    const logFile = join(this.tmp, `graft-${this.runs++}.ndjson`);
    const args = ['netns', 'exec', this.client.name, join(repoRoot, 'bin/graft'), '--log-file', logFile, ...(opts.graftArgs ?? []), '--', ...program];
    return runCollect('ip', args, opts, logFile);
  }

  /** Runs a program in the client namespace without graft. */
  async native(program: readonly string[], opts: GraftOptions = {}): Promise<GraftRun> {
    return runCollect('ip', ['netns', 'exec', this.client.name, ...program], opts, undefined);
  }

  /** Server events recorded since `mark` (use events.length as the mark). */
  since(mark: number): ServerEvent[] {
    return this.events.slice(mark);
  }

  path(name: string): string {
    return join(this.tmp, name);
  }

  destroy(): void {
    this.lab.destroy();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

export class World extends ClientLab {
  readonly host: Namespace;

  constructor() {
    super();
    this.host = this.lab.host('host');
    this.build(() => {
      this.lab.link(this.client, ['192.0.2.1/24', '2001:db8:1::1/64'], this.host, ['192.0.2.2/24', '2001:db8:1::2/64']);
      this.lab.addLocal(this.host, `${A4}/32`, `${B4}/32`, `${A6}/128`, `${B6}/128`);
      this.lab.route(this.client, '198.51.100.0/24', 'via', '192.0.2.2');
      this.lab.route(this.client, '203.0.113.0/24', 'via', '192.0.2.2');
      this.lab.route(this.client, '2001:db8:2::/64', 'via', '2001:db8:1::2');
    });
  }

  /** Starts the host's services and waits until they listen. */
  async start(): Promise<this> {
    await startServices(this.lab, this.host, [`A=${A4}`, `B=${B4}`, `A=${A6}`, `B=${B6}`], this.events);
    // The first IPv6 exchange on a fresh link waits about a second for
    // neighbour discovery; pay it here, not inside a test's timing.
    warmUp(this.client, [A4, A6]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    this.events.length = 0;
    return this;
  }
}

export async function runCollect(cmd: string, args: readonly string[], opts: GraftOptions, logFile: string | undefined): Promise<GraftRun> {
  const started = Date.now();
  const child = spawn(cmd, args as string[], { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => {});
  child.stdin.end(opts.input ?? '');
  opts.onSpawn?.(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  const records =
    logFile && existsSync(logFile)
      ? readFileSync(logFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>)
      : [];
  return { code, signal, stdout, stderr, records, ms: Date.now() - started };
}

/**
 * Runs fixtures/server.ts in `ns` serving NAME=ADDR pairs; pushes each
 * accepted connection to `events`; resolves once it listens.
 */
export async function startServices(lab: Lab, ns: Namespace, pairs: readonly string[], events: ServerEvent[]): Promise<ChildProcess> {
  const server = lab.adopt(ns.spawn(process.execPath, [join(repoRoot, 'dist/test/fixtures/server.js'), ...pairs]));
  const lines = createInterface({ input: server.stdout! });
  const ready = new Promise<void>((resolve, reject) => {
    server.once('exit', (code) => reject(new Error(`test server exited with ${code}`)));
    lines.on('line', (line) => {
      if (line === 'ready') return resolve();
      events.push(JSON.parse(line) as ServerEvent);
    });
  });
  let err = '';
  server.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`test server did not start: ${err}`)), 10_000);
  });
  await Promise.race([ready, deadline]).finally(() => clearTimeout(timer));
  return server;
}

/** One TCP exchange with each address's port 7000, so first-contact delays (IPv6 neighbour discovery) are paid up front. */
export function warmUp(ns: Namespace, addrs: readonly string[]): void {
  const list = addrs.map((a) => `'${a}'`).join(', ');
  ns.run('python3', '-c', `import socket\nfor a in (${list},):\n  socket.create_connection((a, 7000), timeout=5).recv(16)`);
}

/** Connection records only. */
export function connections(run: GraftRun): Record<string, unknown>[] {
  return run.records.filter((r) => r.event === 'connection');
}
