/**
 * The benchmarks' lab: the two-uplink topology of test/lab/uplinks.ts
 * (client --upA-- hostA, client --upB-- hostB; both hosts own 198.51.100.7),
 * with the benchmark servers in hostB only.
 *
 * The test suite's Node services (test/fixtures/server.ts) are not started:
 * hostA runs nothing at all, so a benchmark run whose traffic took the
 * default route (uplink A) instead of uplink B is refused and reported as a
 * failure instead of being measured.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../test/lab/paths.js';
import { buildStaticGo } from '../test/lab/build.js';
import { poll } from '../test/lab/procs.js';
import { DEST4, SRC_B4, Uplinks } from '../test/lab/uplinks.js';
import { runCollect, type GraftRun } from '../test/lab/world.js';
import { lineReader } from './procs.js';

export { DEST4, MARK_B, SRC_B4, UP_B } from '../test/lab/uplinks.js';

export const NAME_PORT = 7000;
export const IPERF_PORT = 5201;
const binDir = join(repoRoot, 'build', 'bench-bin');
const graftBin = join(repoRoot, 'bin', 'graft');

/** Compiles bench/fixtures/NAME.c into build/bench-bin/NAME (when the source is newer). */
export function buildBenchC(name: string): string {
  mkdirSync(binDir, { recursive: true });
  const src = join(repoRoot, 'bench', 'fixtures', `${name}.c`);
  const out = join(binDir, name);
  const header = join(repoRoot, 'bench', 'fixtures', 'common.h');
  if (!existsSync(out) || statSync(out).mtimeMs < Math.max(statSync(src).mtimeMs, statSync(header).mtimeMs)) {
    execFileSync(process.env.CC ?? 'cc', ['-O2', '-Wall', '-Wextra', '-o', out, src], { stdio: 'inherit' });
  }
  return out;
}

/**
 * Builds the command bench/fixtures/go/NAME/ (a package of the module
 * graftbench in bench/fixtures/go, standard library only) as a static binary
 * in build/bench-bin/.
 */
export function buildBenchGo(name: string): string {
  return buildStaticGo(join(repoRoot, 'bench', 'fixtures', 'go'), join(binDir, name), name);
}

/** Throws a readable error when a tool the benchmark needs is not installed. */
export function requireTool(cmd: string, versionArg: string, install: string): void {
  const r = spawnSync(cmd, [versionArg], { stdio: 'ignore' });
  if (r.error) throw new Error(`${cmd} is not installed: ${install}`);
}

export interface RunResult extends GraftRun {
  /** the command line, for error messages */
  readonly command: string;
}

export class BenchLab {
  readonly net: Uplinks;
  private nameServer: Promise<void> | undefined;
  private iperfServer: Promise<void> | undefined;
  private resolvConfDir: string | undefined;

  constructor() {
    // The constructor builds the namespaces and routes; start() (the Node
    // services) is deliberately not called.
    this.net = new Uplinks();
  }

  /** Namespace names, for the report. */
  get namespaces(): { client: string; hostA: string; hostB: string } {
    return { client: this.net.client.name, hostA: this.net.hostA.name, hostB: this.net.hostB.name };
  }

  /**
   * The name service on hostB's DEST4:7000 ("B\n", then close), as the tiny
   * C server bench/fixtures/acceptd.c rather than test/fixtures/server.ts:
   * see cases/connects.ts for why.
   */
  startNameServer(): Promise<void> {
    this.nameServer ??= (async () => {
      const bin = buildBenchC('acceptd');
      const server = this.net.lab.adopt(this.net.hostB.spawn(bin, [DEST4, String(NAME_PORT), 'B']));
      await waitForLine(server, 'ready', 'acceptd');
      // one connection through uplink B, so first-contact costs (ARP) are paid here
      const connloop = buildBenchC('connloop');
      await this.native([connloop, DEST4, String(NAME_PORT), '10', SRC_B4]);
    })();
    return this.nameServer;
  }

  /** `iperf3 -s -B DEST4` in hostB. */
  startIperfServer(): Promise<void> {
    this.iperfServer ??= (async () => {
      requireTool('iperf3', '--version', 'apt-get install iperf3');
      const server = this.net.lab.adopt(this.net.hostB.spawn('iperf3', ['-s', '-B', DEST4, '-p', String(IPERF_PORT)]));
      let err = '';
      server.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      server.stdout!.resume();
      await poll(
        () => {
          if (server.exitCode !== null) throw new Error(`iperf3 server exited with ${server.exitCode}: ${err.trim()}`);
          return this.net.hostB.run('ss', '-Hltn', `sport = :${IPERF_PORT}`).includes(`${DEST4}:${IPERF_PORT}`);
        },
        10_000,
        'the iperf3 server to listen',
      );
    })();
    return this.iperfServer;
  }

  /** Runs a program in the client namespace, without graft; throws unless it exits 0. */
  async native(program: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
    const run = await runCollect('ip', ['netns', 'exec', this.net.client.name, ...program], { timeoutMs }, undefined);
    return checked(run, program.join(' '));
  }

  /**
   * Runs `graft [graftArgs] -- program` in the client namespace; throws
   * unless it exits 0. No --log-file: writing a record per connection would
   * be part of what is measured.
   */
  async graft(graftArgs: readonly string[], program: readonly string[], timeoutMs = 60_000): Promise<RunResult> {
    const argv = [graftBin, ...graftArgs, '--', ...program];
    const run = await runCollect('ip', ['netns', 'exec', this.net.client.name, ...argv], { timeoutMs }, undefined);
    return checked(run, ['graft', ...graftArgs, '--', ...program].join(' '));
  }

  /**
   * Starts `graft [graftArgs] -- program` in the client namespace with its
   * stdin and stdout piped, for a program that takes commands (soakclient's
   * and dnsq's protocol); SIGKILLed after timeoutMs. The child's pid is
   * graft's Node process (procs.ts graftPids).
   */
  startGraft(graftArgs: readonly string[], program: readonly string[], timeoutMs: number): RunningGraft {
    const child = spawn('ip', ['netns', 'exec', this.net.client.name, graftBin, ...graftArgs, '--', ...program], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => {});
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const closed = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('close', (code, signal) => {
        clearTimeout(killer);
        resolve([code, signal]);
      }),
    );
    return { child, next: lineReader(child, program[0]!.split('/').pop()!), stderr: () => stderr.trim().slice(0, 2000), closed };
  }

  /**
   * Gives the client namespace its own /etc/resolv.conf (iproute2's
   * /etc/netns/NAME/, which `ip netns exec` mounts over /etc), or with
   * undefined takes it away again. destroy() takes it away too: it lives
   * outside the namespace and would outlast it.
   */
  clientResolvConf(text: string | undefined): void {
    if (this.resolvConfDir) rmSync(this.resolvConfDir, { recursive: true, force: true });
    this.resolvConfDir = undefined;
    if (text === undefined) return;
    this.resolvConfDir = join('/etc/netns', this.net.client.name);
    mkdirSync(this.resolvConfDir, { recursive: true });
    writeFileSync(join(this.resolvConfDir, 'resolv.conf'), text);
  }

  destroy(): void {
    this.clientResolvConf(undefined);
    this.net.destroy();
  }
}

export interface RunningGraft {
  readonly child: ChildProcess;
  /** waits for the program's next stdout line that `want` accepts (procs.ts lineReader) */
  readonly next: ReturnType<typeof lineReader>;
  /** what graft and the program wrote to stderr so far (the first 2,000 characters) */
  stderr(): string;
  readonly closed: Promise<[number | null, NodeJS.Signals | null]>;
}

function checked(run: GraftRun, command: string): RunResult {
  if (run.code !== 0) {
    const why = run.signal ? `was killed by ${run.signal}` : `exited with ${run.code}`;
    const detail = `${run.stderr.trim()}\n${run.stdout.trim()}`.trim().slice(0, 2000);
    throw new Error(`\`${command}\` ${why}${detail ? `:\n${detail}` : ''}`);
  }
  return { ...run, command };
}

async function waitForLine(child: ChildProcess, want: string, what: string): Promise<void> {
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const lines = createInterface({ input: child.stdout! });
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`${what} exited with ${code}: ${err.trim()}`)));
      lines.on('line', (line) => {
        if (line === want) resolve();
      });
      timer = setTimeout(() => reject(new Error(`${what} did not start within 10 s: ${err.trim()}`)), 10_000);
    });
  } finally {
    clearTimeout(timer);
  }
}
