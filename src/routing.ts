/**
 * How each destination goes, for one run: the rule table (user rules plus
 * graft's implicit ones), the proxy chains, the global egress options and
 * the mode, resolved once at start. The tracer gets the table compiled
 * (tracerRules); the proxy asks dialFor(rule) for connects the tracer
 * redirected to it; `graft rules explain` prints explain().
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { UsageError } from './errors.js';
import { describeEgress, egressSocketOptions, hasEgress } from './egress/options.js';
import type { SocketOption } from './egress/native-socket.js';
import type { Egress } from './egress/model.js';
import type { ModeChoice } from './plan.js';
import type { Action, Match, Rule } from './rules/model.js';
import { describeAction, destinationMatcher, RuleTable, type Decision } from './rules/table.js';
import { describeChain, type UpstreamProxy } from './upstream/url.js';
import type { ConnectFault } from './chaos/connect-faults.js';
import type { RuleMessage, TcpAction, UdpAction } from './tracer/messages.js';
import { matchFields } from './tracer/table.js';
import type { ScopedToxic } from './chaos/parse.js';

/** What the proxy does with a connect the tracer sent it. */
export type DialPlan = (
  | { readonly kind: 'direct'; readonly egress: Egress }
  | { readonly kind: 'chain'; readonly name: string; readonly chain: readonly UpstreamProxy[]; readonly egress: Egress }
) & {
  /** the egress as socket options, made once per rule */
  readonly socketOptions: readonly SocketOption[];
};

/** What a connection's log record says about the rule that decided it. */
export interface LogContext {
  readonly egress?: string;
  readonly rule?: string;
  /** the upstream chain, passwords masked */
  readonly upstream?: string;
}

export interface RoutingInput {
  readonly rules: readonly Rule[];
  /** the system's DNS servers (resolv.conf); reached directly on port 53 when the default is a proxy */
  readonly nameservers?: readonly string[];
  /** named chains; the unnamed default chain (--proxy) under '' */
  readonly chains: ReadonlyMap<string, readonly UpstreamProxy[]>;
  readonly egress: Egress;
  readonly mode: ModeChoice;
  /** faults on the proxy path: in auto mode they send every connection there */
  readonly toxics?: readonly ScopedToxic[];
  /** faults on the connect, decided in the tracer before the rules */
  readonly connectFaults?: readonly ConnectFault[];
}

export class Routing {
  /** per rule, worked out once: the proxy's dial plan and the log context */
  private readonly plans: readonly DialPlan[];
  private readonly contexts: readonly LogContext[];

  private constructor(
    readonly table: RuleTable,
    private readonly input: RoutingInput,
  ) {
    this.plans = table.rules.map((r) => this.planOf(r.action));
    this.contexts = table.rules.map((r, i) => {
      const plan = this.plans[i]!;
      const egress = describeEgress(plan.egress);
      return {
        ...(egress !== undefined ? { egress } : {}),
        ...(r.origin !== 'default' ? { rule: `${r.origin}: ${r.text}` } : {}),
        ...(plan.kind === 'chain' ? { upstream: describeChain(plan.chain) } : {}),
      };
    });
  }

  private planOf(a: Action): DialPlan {
    if (a.kind === 'proxy') {
      const name = a.name ?? '';
      return { kind: 'chain', name, chain: this.input.chains.get(name)!, egress: this.input.egress, socketOptions: egressSocketOptions(this.input.egress) };
    }
    // 'pass' leaves a connect untouched; the proxy dials one only to end a
    // handshake a fault delayed, and then without egress options too
    const egress = a.kind === 'pass' ? {} : this.egressOf(a);
    return { kind: 'direct', egress, socketOptions: egressSocketOptions(egress) };
  }

  /** Resolves the proxies' host names (their addresses pass untouched); every rule's proxy name exists (src/settings checked it). */
  static async create(input: RoutingInput): Promise<Routing> {
    const passFirst: Rule[] = [];
    for (const [name, chain] of input.chains) {
      const first = chain[0];
      if (!first) continue;
      let ips: string[];
      try {
        ips = isIP(first.host) ? [first.host] : (await lookup(first.host, { all: true })).map((a) => a.address);
      } catch (err) {
        throw new UsageError(`proxy ${first.display}: cannot resolve '${first.host}' (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      }
      for (const ip of ips) {
        const family = isIP(ip) as 4 | 6;
        const text = `${family === 6 ? `[${ip}]` : ip}:${first.port} pass (the upstream proxy itself)`;
        if (passFirst.some((r) => r.text === text)) continue; // one chain under two names
        passFirst.push({
          match: { kind: 'net', family, address: ip, prefix: family === 4 ? 32 : 128, ports: { lo: first.port, hi: first.port } },
          action: { kind: 'pass' },
          origin: name ? `proxy ${name}` : 'proxy',
          text,
        });
      }
    }
    const fallback: Action = input.chains.has('') ? { kind: 'proxy' } : { kind: 'direct' };
    // A proxy carries TCP only: with the default going through one, the
    // system's name servers stay reachable directly on port 53 (UDP and
    // TCP), so programs can still resolve names. A rule of the user's comes
    // first and can refuse or proxy them instead.
    const dns: Rule[] =
      fallback.kind === 'proxy'
        ? (input.nameservers ?? [])
            .filter((ip) => isIP(ip))
            .map((ip) => {
              const family = isIP(ip) as 4 | 6;
              return {
                match: { kind: 'net', family, address: ip, prefix: family === 4 ? 32 : 128, ports: { lo: 53, hi: 53 } },
                action: { kind: 'direct' },
                origin: 'resolv.conf',
                text: `${family === 6 ? `[${ip}]` : ip}:53 direct (a name server of this system)`,
              } satisfies Rule;
            })
        : [];
    return new Routing(new RuleTable(passFirst, [...input.rules, ...dns], fallback), input);
  }

  private egressOf(a: Action): Egress {
    return a.kind === 'route' ? a.egress : this.input.egress;
  }

  /** In place or through the proxy, for a rule that sends a connect straight to its destination. */
  private tcpFor(a: Action): TcpAction {
    switch (a.kind) {
      case 'pass':
        return 'pass';
      case 'refuse':
        return 'refuse';
      case 'proxy':
        return 'redirect';
      case 'direct':
      case 'route':
        if (this.input.mode === 'proxy') return 'redirect';
        if (this.input.mode === 'inplace') return 'inplace';
        // auto: in place when there is something to set and no fault needs
        // the proxy; plain graft proxies
        return hasEgress(this.egressOf(a)) && !this.input.toxics?.length ? 'inplace' : 'redirect';
    }
  }

  private udpFor(a: Action): UdpAction {
    return a.kind === 'pass' ? 'pass' : a.kind === 'refuse' || a.kind === 'proxy' ? 'refuse' : 'egress';
  }

  /** The rules the tracer decides by, in order, as boundary messages (tracer/table.ts encodes them). */
  tracerRules(): readonly RuleMessage[] {
    return this.table.rules.map((r, index) => {
      const a = r.action;
      const e = this.egressOf(a);
      // a datagram to a destination only a proxy may reach is refused ENETUNREACH
      const error = a.kind === 'refuse' ? a.errno : a.kind === 'proxy' ? 'ENETUNREACH' : undefined;
      const tcp = this.tcpFor(a);
      return {
        kind: 'rule',
        ...matchFields(r.match),
        byName: false,
        tcp,
        udp: this.udpFor(a),
        direct: tcp === 'redirect' && this.dialFor(index).kind === 'direct',
        ...(error !== undefined ? { error } : {}),
        ...(e.mark !== undefined ? { mark: e.mark } : {}),
        ...(e.interface !== undefined ? { iface: e.interface } : {}),
        ...(e.source4 !== undefined ? { src4: e.source4 } : {}),
        ...(e.source6 !== undefined ? { src6: e.source6 } : {}),
      };
    });
  }

  /** For a connect the tracer redirected under rule `index`. */
  dialFor(index: number): DialPlan {
    return this.plans[index] ?? this.planOf({ kind: 'direct' });
  }

  /** For the log record of a connect decided by rule `index` (-1: none). */
  logContext(index: number): LogContext {
    return this.contexts[index] ?? {};
  }

  decide(ip: string, port: number): Decision | undefined {
    return this.table.decide(ip, port);
  }

  /** One paragraph on what graft would do with a TCP connect to ip:port (any port: rules naming ports are skipped). */
  explain(ip: string, port: number | undefined): string {
    const d = this.decide(ip, port ?? -1);
    const host = ip.includes(':') ? `[${ip}]` : ip;
    const dst = port !== undefined ? `${host}:${port}` : `${host} (no port given: rules that name ports are skipped)`;
    if (!d) return `${dst}: loopback, no rule names it: passed untouched (the program connects directly)`;
    const where = d.rule.origin === 'default' ? 'no rule matches; the default' : `${d.rule.origin}: '${d.rule.text}'`;
    const a = d.rule.action;
    const e = this.egressOf(a);
    const via = describeEgress(e);
    const tcp = this.tcpFor(a);
    let what: string;
    switch (a.kind) {
      case 'pass':
        what = 'passed untouched (the program connects directly, graft does not see it again)';
        break;
      case 'refuse':
        what = `the connect fails with ${a.errno}`;
        break;
      case 'proxy': {
        const chain = this.input.chains.get(a.name ?? '')!;
        what = `through graft's proxy, then the upstream proxy chain${a.name ? ` '${a.name}'` : ''}: ${describeChain(chain)}${via ? ` (the connection to the first proxy with ${via})` : ''}`;
        break;
      }
      default:
        what = `${tcp === 'inplace' ? 'in place: the program connects directly' : "through graft's proxy, which connects directly"}${via ? `, with ${via}` : ''}`;
    }
    // faults for this destination: connect faults act on every TCP connect
    // graft sees, toxics on the proxy path only
    const covers = (f: { match: Match }): boolean => destinationMatcher(f.match)(ip, port ?? -1);
    const listed = (fs: readonly { text: string; origin: string }[]): string => fs.map((f) => `'${f.text}' (${f.origin})`).join(', ');
    const faults = (this.input.connectFaults ?? []).filter(covers);
    const toxics = tcp === 'redirect' ? (this.input.toxics ?? []).filter(covers) : [];
    return [
      `${dst}: ${where} (${describeAction(a)}): ${what}`,
      ...(faults.length ? [`connect faults, checked first (the first one chosen applies): ${listed(faults)}`] : []),
      ...(toxics.length ? [`toxics on its data: ${listed(toxics)}`] : []),
    ].join('\n  ');
  }
}
