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
import type { DnsMode, DnsPlan } from './plan.js';
import { DEFAULT_FAKE4, DEFAULT_FAKE6, FakeAddresses } from './dns/fake.js';

/** What the proxy does with a connect the tracer sent it. */
export type DialPlan = (
  | { readonly kind: 'direct'; readonly egress: Egress }
  | { readonly kind: 'chain'; readonly name: string; readonly chain: readonly UpstreamProxy[]; readonly egress: Egress }
  /** the program's DNS over TCP: graft's DNS server answers it */
  | { readonly kind: 'dns'; readonly egress: Egress }
  /** a fake address: the plan of the rule for its name (decideByName) */
  | { readonly kind: 'name'; readonly egress: Egress }
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
  /** resolv.conf's search domains: names under them get their real answer unless a name rule names them */
  readonly search?: readonly string[];
  /** named chains; the unnamed default chain (--proxy) under '' */
  readonly chains: ReadonlyMap<string, readonly UpstreamProxy[]>;
  readonly egress: Egress;
  readonly mode: ModeChoice;
  /** faults on the proxy path: in auto mode they send every connection there */
  readonly toxics?: readonly ScopedToxic[];
  /** faults on the connect, decided in the tracer before the rules */
  readonly connectFaults?: readonly ConnectFault[];
  /** the control API runs: faults may come at any time, so every direct connection goes through the proxy */
  readonly control?: unknown;
  /** who answers the program's DNS (absent: nobody, as --dns off) */
  readonly dns?: DnsPlan;
}

/** The DNS mode in force, why (for -v), and the fake addresses of remote mode. */
export interface DnsState {
  readonly mode: DnsMode;
  readonly why: string;
  readonly fakes?: FakeAddresses;
}

/** The DNS mode of a run, and why: the user's choice, or remote when the default route is a proxy, a rule names a host or a DNS fault is given. */
export function dnsModeFor(
  chosen: DnsMode | undefined,
  rules: readonly Rule[],
  chains: ReadonlyMap<string, unknown>,
  faults: number,
): { mode: DnsMode; why: string } {
  if (chosen !== undefined) return { mode: chosen, why: 'chosen with --dns or dns:' };
  const named = rules.find((r) => r.match.kind === 'name');
  if (named) return { mode: 'remote', why: `a rule names a host (${named.origin}: '${named.text}')` };
  if (chains.has('')) {
    // a rule by address that sends somewhere else than a proxy decides by the
    // real address: names then resolve here, as before graft answered them
    const byAddress = rules.find((r) => r.match.kind === 'net' && r.action.kind !== 'proxy');
    if (byAddress)
      return {
        mode: 'local',
        why: `the default route is a proxy, but a rule by address decides by real addresses (${byAddress.origin}: '${byAddress.text}'); --dns remote resolves names at the proxy`,
      };
    return { mode: 'remote', why: 'the default route is a proxy' };
  }
  if (faults > 0) return { mode: 'remote', why: 'DNS faults are given' };
  return { mode: 'off', why: 'no proxy by default and no rule names a host' };
}

/** What graft's DNS server does with a name's A and AAAA questions. */
export type NameAnswer =
  | { readonly kind: 'fake' }
  /** the real answer, asked with this egress; the tracer learns `rules` for each address in it */
  | { readonly kind: 'real'; readonly rules: readonly number[]; readonly egress: Egress };

export class Routing {
  /** per rule, worked out once: the proxy's dial plan and the log context */
  private readonly plans: readonly DialPlan[];
  private readonly contexts: readonly LogContext[];

  private constructor(
    readonly table: RuleTable,
    private readonly input: RoutingInput,
    /** who answers the program's DNS */
    readonly dns: DnsState,
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
    if (a.kind === 'dns' || a.kind === 'fake') return { kind: a.kind === 'dns' ? 'dns' : 'name', egress: {}, socketOptions: [] };
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
    const dnsState = resolveDns(input);
    const dnsOn = dnsState.mode !== 'off';
    // With graft answering DNS, its own rules come before the user's: every
    // question to port 53 reaches graft's DNS server (which asks the real
    // servers as the name's rule says), and a fake address goes by its name.
    const own: Rule[] = dnsOn ? [...dnsRules(), ...(dnsState.fakes ? fakeRules(dnsState.fakes) : [])] : [];
    // Without it, a proxy carries TCP only: with the default going through
    // one, the system's name servers stay reachable directly on port 53 (UDP
    // and TCP), so programs can still resolve names. A rule of the user's
    // comes first and can refuse or proxy them instead.
    const dns: Rule[] =
      fallback.kind === 'proxy' && !dnsOn
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
    return new Routing(new RuleTable([...passFirst, ...own], [...input.rules, ...dns], fallback), input, dnsState);
  }

  private egressOf(a: Action): Egress {
    if (a.kind === 'dns' || a.kind === 'fake') return {};
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
      case 'dns':
      case 'fake':
        return 'redirect';
      case 'direct':
      case 'route':
        if (this.input.mode === 'proxy') return 'redirect';
        if (this.input.mode === 'inplace') return 'inplace';
        // auto: in place when there is something to set and no fault needs
        // the proxy; plain graft proxies
        return hasEgress(this.egressOf(a)) && !this.input.toxics?.length && !this.input.control ? 'inplace' : 'redirect';
    }
  }

  private udpFor(a: Action): UdpAction {
    if (a.kind === 'dns') return 'dns';
    return a.kind === 'pass' ? 'pass' : a.kind === 'refuse' || a.kind === 'proxy' || a.kind === 'fake' ? 'refuse' : 'egress';
  }

  /** The rules the tracer decides by, in order, as boundary messages (tracer/table.ts encodes them). */
  tracerRules(): readonly RuleMessage[] {
    return this.table.rules.map((r, index) => {
      const a = r.action;
      const e = this.egressOf(a);
      // a datagram to a destination only a proxy may reach is refused ENETUNREACH;
      // one to a fake address, ECONNREFUSED (QUIC clients then fall back to TCP)
      const error = a.kind === 'refuse' ? a.errno : a.kind === 'proxy' ? 'ENETUNREACH' : a.kind === 'fake' ? 'ECONNREFUSED' : undefined;
      const tcp = this.tcpFor(a);
      const plan = this.dialFor(index);
      const direct = tcp === 'redirect' && plan.kind === 'direct';
      const socks = tcp === 'redirect' ? relayedSocks(plan) : undefined;
      // the tracer relays it itself when nothing of graft's can concern its connections
      const relay = (direct || socks !== undefined) && !this.input.toxics?.length && !this.input.control;
      return {
        kind: 'rule',
        ...matchFields(r.match),
        tcp,
        udp: this.udpFor(a),
        direct,
        relay,
        ...(relay && socks ? socksFields(socks) : {}),
        ...(error !== undefined ? { error } : {}),
        ...(e.mark !== undefined ? { mark: e.mark } : {}),
        ...(e.interface !== undefined ? { iface: e.interface } : {}),
        ...(e.source4 !== undefined ? { src4: e.source4 } : {}),
        ...(e.source6 !== undefined ? { src6: e.source6 } : {}),
      };
    });
  }

  /** The SOCKS5 proxy the tracer dials rule `index`'s connects through itself, if it does. */
  relayedSocks(index: number): UpstreamProxy | undefined {
    return relayedSocks(this.dialFor(index));
  }

  /** For a connect the tracer redirected under rule `index`. */
  dialFor(index: number): DialPlan {
    return this.plans[index] ?? this.planOf({ kind: 'direct' });
  }

  /** For the log record of a connect decided by rule `index` (-1: none). */
  logContext(index: number): LogContext {
    return this.contexts[index] ?? {};
  }

  decide(ip: string, port: number, name?: string): Decision | undefined {
    return this.table.decide(ip, port, name);
  }

  /** resolv.conf's name servers, as read once at start */
  get nameservers(): readonly string[] {
    return this.input.nameservers ?? [];
  }

  /** The rule for a connect to a fake address standing for `name`. */
  decideByName(name: string, port: number): Decision | undefined {
    return this.table.decideByName(name, port);
  }

  /**
   * What graft's DNS server answers `name` (canonical): a fake address when
   * some connect to it may go through a proxy (remote mode), else the real
   * answer, asked with the egress of the first rule that may decide it.
   */
  answerFor(name: string): NameAnswer {
    const candidates = this.table.candidatesForName(name);
    const rules = this.table.nameRulesFor(name);
    // a resolver tries a short name under its search domains first; natively
    // those mostly do not exist, and a fake answer would end the search there
    const searched = rules.length === 0 && (this.input.search ?? []).some((d) => name.endsWith(`.${d}`));
    // a name that is refused anyway gets a fake too, so its question leaves nothing either
    const goesOut = candidates.some((d) => d.rule.action.kind === 'proxy') || candidates[candidates.length - 1]?.rule.action.kind === 'refuse';
    if (this.dns.fakes && goesOut && !searched) return { kind: 'fake' };
    const first = candidates.find((d) => d.rule.action.kind === 'direct' || d.rule.action.kind === 'route');
    return { kind: 'real', rules, egress: first ? this.egressOf(first.rule.action) : this.input.egress };
  }

  /** One paragraph on what graft would do with a TCP connect to ip:port (any port: rules naming ports are skipped). */
  explain(ip: string, port: number | undefined): string {
    const d = this.decide(ip, port ?? -1);
    const host = ip.includes(':') ? `[${ip}]` : ip;
    const dst = port !== undefined ? `${host}:${port}` : `${host} (no port given: rules that name ports are skipped)`;
    if (!d) return `${dst}: loopback, no rule names it: passed untouched (the program connects directly)`;
    return this.explainDecision(dst, d, (m) => destinationMatcher(m)(ip, port ?? -1));
  }

  /** The same for a host name: what graft's DNS server answers for it, then which rule decides a connect to it. */
  explainName(name: string, port: number | undefined): string {
    const dst = port !== undefined ? `${name}:${port}` : `${name} (no port given: rules that name ports are skipped)`;
    if (this.dns.mode === 'off') {
      return `${dst}: graft does not answer DNS (${this.dns.why}): the program resolves the name itself, and its connect is decided by the address it gets (rules by name never match)`;
    }
    const answer = this.answerFor(name);
    const dns =
      answer.kind === 'fake'
        ? `DNS (${this.dns.mode}: ${this.dns.why}): a fake address, and no query leaves this machine; a connect to it goes by the name`
        : `DNS (${this.dns.mode}: ${this.dns.why}): the real answer, asked of the program's own name server${hasEgress(answer.egress) ? ` (over TCP, with ${describeEgress(answer.egress)})` : ''}`;
    // the rules by name, port or all; for a real answer, a rule by address before them may decide first (said below)
    const d = this.decideByName(name, port ?? -1);
    const covers = (m: Match): boolean => destinationMatcher(m)('', port ?? -1, name);
    return `${dst}: ${dns}\n  ${d ? this.explainDecision('the connect', d, covers).replace(/\n {2}/g, '\n    ') : 'no rule decides it'}${
      answer.kind === 'real' ? '\n  (rules by address before it still decide for the addresses they match)' : ''
    }`;
  }

  /** What a decision means for a connect, with the faults that would apply. */
  private explainDecision(dst: string, d: Decision, covers: (m: Match) => boolean): string {
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
      case 'dns':
        what = "graft's DNS server answers it";
        break;
      case 'fake':
        what = "one of graft's fake addresses: the rule for the name it stands for decides";
        break;
      default:
        what = `${tcp === 'inplace' ? 'in place: the program connects directly' : "through graft's proxy, which connects directly"}${via ? `, with ${via}` : ''}`;
    }
    // faults for this destination: connect faults act on every TCP connect
    // graft sees, toxics on the proxy path only
    const listed = (fs: readonly { text: string; origin: string }[]): string => fs.map((f) => `'${f.text}' (${f.origin})`).join(', ');
    const faults = (this.input.connectFaults ?? []).filter((f) => covers(f.match));
    const toxics = tcp === 'redirect' ? (this.input.toxics ?? []).filter((t) => covers(t.match)) : [];
    return [
      `${dst}: ${where} (${describeAction(a)}): ${what}`,
      ...(faults.length ? [`connect faults, checked first (the first one chosen applies): ${listed(faults)}`] : []),
      ...(toxics.length ? [`toxics on its data: ${listed(toxics)}`] : []),
    ].join('\n  ');
  }
}

/**
 * The one SOCKS5 proxy the tracer can dial a rule's connects through
 * itself: a chain of exactly one SOCKS5 hop at an IP address, whose user
 * name and password, if any, are each 1 to 255 bytes (RFC 1929) with no
 * NUL (which the boundary's texts cannot carry). Any other chain goes
 * through graft's proxy.
 */
function relayedSocks(plan: DialPlan): UpstreamProxy | undefined {
  if (plan.kind !== 'chain' || plan.chain.length !== 1) return undefined;
  const hop = plan.chain[0]!;
  if (hop.kind !== 'socks5' || !isIP(hop.host)) return undefined;
  const fits = (s: string): boolean => {
    const n = Buffer.byteLength(s, 'utf8');
    return n >= 1 && n <= 255 && !s.includes('\0');
  };
  if (hop.auth && !(fits(hop.auth.user) && fits(hop.auth.password))) return undefined;
  return hop;
}

/** A relay rule's SOCKS5 proxy, as the rule message names it. */
function socksFields(hop: UpstreamProxy): Pick<RuleMessage, 'socksIp' | 'socksPort' | 'socksUser' | 'socksPass'> {
  return { socksIp: hop.host, socksPort: hop.port, ...(hop.auth ? { socksUser: hop.auth.user, socksPass: hop.auth.password } : {}) };
}

/** The DNS mode of a run from its plan; remote mode gets its fake addresses. */
function resolveDns(input: RoutingInput): DnsState {
  if (!input.dns) return { mode: 'off', why: 'not asked' };
  const chosen = dnsModeFor(input.dns.mode, input.rules, input.chains, input.dns.faults.length);
  // a control API proxy may name its upstream by host name: graft must know the names the program resolves
  const { mode, why } =
    chosen.mode === 'off' && input.dns.mode === undefined && input.control
      ? { mode: 'local' as const, why: 'the control API may scope a proxy by host name; --dns off leaves names to the program' }
      : chosen;
  if (mode !== 'remote') return { mode, why };
  return { mode, why, fakes: new FakeAddresses({ v4: input.dns.fake4 ?? DEFAULT_FAKE4, v6: input.dns.fake6 ?? DEFAULT_FAKE6 }) };
}

/** Every question to port 53, by UDP or TCP, of any address (loopback ones too: systemd-resolved's 127.0.0.53). */
function dnsRules(): Rule[] {
  return ([4, 6] as const).map((family) => ({
    match: { kind: 'net', family, address: family === 4 ? '0.0.0.0' : '::', prefix: 0, ports: { lo: 53, hi: 53 } },
    action: { kind: 'dns' },
    origin: 'dns',
    text: `${family === 4 ? '0.0.0.0/0' : '[::/0]'}:53 (graft answers DNS)`,
  }));
}

/** The fake address ranges: connects there go by the name the address stands for. */
function fakeRules(fakes: FakeAddresses): Rule[] {
  return fakes.ranges.map(({ family, address, prefix }) => ({
    match: { kind: 'net', family, address, prefix },
    action: { kind: 'fake' },
    origin: 'dns',
    text: `${address}/${prefix} (graft's fake addresses)`,
  }));
}
