/**
 * Test hosts made of network namespaces and veth pairs. Nothing here touches
 * the machine's own network: every address and route lives inside a
 * namespace the lab created, and destroy() removes them all (tests call it
 * from a finally/after hook, so it also runs when a test fails).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

let counter = 0;

export function sh(cmd: string, args: readonly string[]): string {
  return execFileSync(cmd, args as string[], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export class Namespace {
  constructor(readonly name: string) {}

  /** Runs a command inside the namespace and returns its stdout. */
  run(cmd: string, ...args: string[]): string {
    return sh('ip', ['netns', 'exec', this.name, cmd, ...args]);
  }

  ip(...args: string[]): void {
    sh('ip', ['-n', this.name, ...args]);
  }

  /** Starts a long-running process inside the namespace. */
  spawn(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  }
}

export class Lab {
  private readonly namespaces: Namespace[] = [];
  private readonly children: ChildProcess[] = [];
  private readonly prefix = `gt${process.pid % 100000}x${counter++}`;

  host(label: string): Namespace {
    const ns = new Namespace(`${this.prefix}-${label}`);
    sh('ip', ['netns', 'add', ns.name]);
    this.namespaces.push(ns);
    ns.ip('link', 'set', 'lo', 'up');
    // No duplicate address detection on the links made later: their
    // link-local addresses would otherwise hold up the first IPv6 exchange.
    ns.run('sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0');
    return ns;
  }

  /**
   * Joins two namespaces with a veth pair. Addresses are CIDR strings
   * (IPv4 or IPv6); IPv6 ones skip duplicate address detection so they
   * work at once. Returns the interface names.
   */
  link(a: Namespace, aAddrs: readonly string[], b: Namespace, bAddrs: readonly string[], names?: { a: string; b: string }): { a: string; b: string } {
    const n = this.namespaces.length;
    const ifA = names?.a ?? `v${n}a${counter}`;
    const ifB = names?.b ?? `v${n}b${counter++}`;
    const tmpA = `${this.prefix}a${counter}`.slice(0, 15);
    const tmpB = `${this.prefix}b${counter}`.slice(0, 15);
    // Created in the lab's first namespace, then moved: never in the host's.
    a.ip('link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB, 'netns', b.name);
    a.ip('link', 'set', tmpA, 'name', ifA);
    b.ip('link', 'set', tmpB, 'name', ifB);
    for (const [ns, ifc, addrs] of [
      [a, ifA, aAddrs],
      [b, ifB, bAddrs],
    ] as const) {
      for (const addr of addrs) {
        if (addr.includes(':')) ns.ip('-6', 'addr', 'add', addr, 'dev', ifc, 'nodad');
        else ns.ip('addr', 'add', addr, 'dev', ifc);
      }
      ns.ip('link', 'set', ifc, 'up');
    }
    return { a: ifA, b: ifB };
  }

  /** Adds addresses to a namespace's loopback (a host answering on many IPs). */
  addLocal(ns: Namespace, ...addrs: string[]): void {
    for (const addr of addrs) {
      if (addr.includes(':')) ns.ip('-6', 'addr', 'add', addr, 'dev', 'lo', 'nodad');
      else ns.ip('addr', 'add', addr, 'dev', 'lo');
    }
  }

  route(ns: Namespace, ...args: string[]): void {
    ns.ip(args[0]?.includes(':') ? '-6' : '-4', 'route', 'add', ...args);
  }

  /** Tracks a process so destroy() kills it. */
  adopt<T extends ChildProcess>(child: T): T {
    this.children.push(child);
    return child;
  }

  destroy(): void {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }
    for (const ns of this.namespaces) {
      try {
        const pids = sh('ip', ['netns', 'pids', ns.name]).split('\n').filter(Boolean);
        for (const pid of pids) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* already gone */
          }
        }
      } catch {
        /* namespace already gone */
      }
      try {
        sh('ip', ['netns', 'del', ns.name]);
      } catch {
        /* already gone */
      }
    }
    this.namespaces.length = 0;
  }
}
