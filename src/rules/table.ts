/**
 * The effective rule table of a run: the proxies' own addresses (always
 * passed), the user's rules in order, loopback (passed unless a rule names
 * a loopback address explicitly), and the default action (the default proxy
 * chain if one is given, else direct). Matching uses net.BlockList. The same
 * table compiles into the lines the tracer decides by (compileForTracer), so
 * a connect is decided in the tracer without a round trip through Node; the
 * tests check both deciders agree.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Action, Match, PortRange, Rule } from './model.js';
import { canonicalName, nameMatches } from '../dns/pattern.js';

export interface Decision {
  /** index into RuleTable.rules */
  readonly index: number;
  readonly rule: Rule;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('0.0.0.0', 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addAddress('::', 'ipv6');

export function isLoopback(ip: string): boolean {
  return LOOPBACK.check(ip, isIPv6(ip) ? 'ipv6' : 'ipv4');
}

/** "::ffff:1.2.3.4" -> "1.2.3.4": rules about IPv4 networks match v4-mapped destinations. */
function unmapped(ip: string): string {
  const lower = ip.toLowerCase();
  return lower.startsWith('::ffff:') && isIPv4(lower.slice(7)) ? lower.slice(7) : ip;
}

class CompiledRule {
  private readonly list?: BlockList;

  constructor(readonly rule: Rule) {
    const m = rule.match;
    if (m.kind === 'net') {
      this.list = new BlockList();
      this.list.addSubnet(m.address, m.prefix, m.family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  /**
   * A loopback destination only matches a rule naming it explicitly (by
   * address or by name). A name rule matches only a destination that has a
   * name: one graft answered the program for (canonical, see dns/pattern).
   */
  matches(ip: string, port: number, loopback: boolean, name: string | undefined): boolean {
    const m: Match = this.rule.match;
    switch (m.kind) {
      case 'all':
        return !loopback;
      case 'port':
        return !loopback && inPorts(m.ports, port);
      case 'net': {
        if (m.ports && !inPorts(m.ports, port)) return false;
        const addr = unmapped(ip);
        return this.list!.check(addr, isIPv6(addr) ? 'ipv6' : 'ipv4');
      }
      case 'name':
        return name !== undefined && (!m.ports || inPorts(m.ports, port)) && nameMatches(m.pattern, name);
    }
  }

  /** For a name before it has an address (a DNS question): may this rule decide some connect to `name`, and does it decide all of them? */
  coversName(name: string): 'none' | 'some ports' | 'every port' {
    const m = this.rule.match;
    const ports = m.kind === 'all' ? undefined : m.kind === 'port' ? m.ports : m.kind === 'name' && nameMatches(m.pattern, name) ? m.ports : null;
    if (ports === null) return 'none';
    return ports === undefined ? 'every port' : 'some ports';
  }
}

/** -1 (no port: `graft rules explain` without one) is in no range. */
const inPorts = (r: PortRange, port: number): boolean => port >= r.lo && port <= r.hi;

/** A MATCH on its own (toxics use it): true when it covers ip:port (with the name graft answered for ip, if any). */
export function destinationMatcher(match: Match): (ip: string, port: number, name?: string) => boolean {
  const c = new CompiledRule({ match, action: { kind: 'pass' }, origin: '', text: '' });
  return (ip, port, name) => c.matches(ip, port, isLoopback(unmapped(ip)), name);
}

export class RuleTable {
  private readonly compiled: CompiledRule[];

  /**
   * @param passFirst rules for the proxies' own addresses
   * @param user the user's rules, in order
   * @param fallback the action when no rule matches a non-loopback destination
   */
  constructor(passFirst: readonly Rule[], user: readonly Rule[], fallback: Action) {
    const all: Rule[] = [...passFirst, ...user, { match: { kind: 'all' }, action: fallback, origin: 'default', text: 'all ' + describeAction(fallback) }];
    this.compiled = all.map((r) => new CompiledRule(r));
  }

  get rules(): readonly Rule[] {
    return this.compiled.map((c) => c.rule);
  }

  /** The rule deciding a connect to ip:port (which graft answered the program for `name`, if given); undefined: loopback, passed untouched. */
  decide(ip: string, port: number, name?: string): Decision | undefined {
    const loopback = isLoopback(unmapped(ip));
    const index = this.compiled.findIndex((c) => c.matches(ip, port, loopback, name));
    return index < 0 ? undefined : { index, rule: this.compiled[index]!.rule };
  }

  /**
   * The rules that may decide a connect to `name` before its address is
   * known (a DNS question), in order: every name rule matching it and every
   * port rule, up to the first rule covering every port. Rules by address
   * are not among them: they decide once the program connects to an address.
   */
  candidatesForName(name: string): Decision[] {
    const out: Decision[] = [];
    for (const [index, c] of this.compiled.entries()) {
      if (c.rule.action.kind === 'dns' || c.rule.action.kind === 'fake') continue;
      const covers = c.coversName(name);
      if (covers === 'none') continue;
      out.push({ index, rule: c.rule });
      if (covers === 'every port') break;
    }
    return out;
  }

  /**
   * The rule deciding a connect to `name` on `port` when only the name is
   * known (the program connected to a fake address): the first rule by
   * name, by port, or for all, as for an address; rules by address and
   * graft's own are passed over.
   */
  decideByName(name: string, port: number): Decision | undefined {
    const index = this.compiled.findIndex(
      (c) => c.rule.match.kind !== 'net' && c.rule.action.kind !== 'dns' && c.rule.action.kind !== 'fake' && c.matches('', port, false, name),
    );
    return index < 0 ? undefined : { index, rule: this.compiled[index]!.rule };
  }

  /** The indices of the name rules matching `name` (what the tracer is told for an address answered for it). */
  nameRulesFor(name: string): number[] {
    const canonical = canonicalName(name);
    if (canonical === undefined) return [];
    return this.compiled.flatMap((c, i) => (c.rule.match.kind === 'name' && nameMatches(c.rule.match.pattern, canonical) ? [i] : []));
  }
}

export function describeAction(a: Action): string {
  switch (a.kind) {
    case 'proxy':
      return a.name !== undefined ? `proxy ${a.name}` : 'proxy';
    case 'refuse':
      return `refuse ${a.errno}`;
    case 'route': {
      const e = a.egress;
      const parts: string[] = [];
      if (e.mark !== undefined) parts.push(`mark 0x${e.mark.toString(16)}`);
      if (e.interface !== undefined) parts.push(`interface ${e.interface}`);
      for (const s of [e.source4, e.source6]) if (s !== undefined) parts.push(`source ${s}`);
      return parts.join(' ');
    }
    case 'dns':
      return "graft's DNS server";
    case 'fake':
      return 'as the rules say for the name it stands for';
    default:
      return a.kind;
  }
}
