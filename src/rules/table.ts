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
import type { Action, Match, Rule } from './model.js';

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

  /** A loopback destination only matches a rule naming it explicitly. */
  matches(ip: string, port: number, loopback: boolean): boolean {
    const m: Match = this.rule.match;
    switch (m.kind) {
      case 'all':
        return !loopback;
      case 'port':
        return !loopback && port >= m.ports.lo && port <= m.ports.hi;
      case 'net': {
        if (m.ports && (port < m.ports.lo || port > m.ports.hi)) return false;
        const addr = unmapped(ip);
        return this.list!.check(addr, isIPv6(addr) ? 'ipv6' : 'ipv4');
      }
    }
  }
}

/** A MATCH on its own (toxics use it): true when it covers ip:port. */
export function destinationMatcher(match: Match): (ip: string, port: number) => boolean {
  const c = new CompiledRule({ match, action: { kind: 'pass' }, origin: '', text: '' });
  return (ip, port) => c.matches(ip, port, isLoopback(unmapped(ip)));
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

  /** The rule deciding a connect to ip:port; undefined: loopback, passed untouched. */
  decide(ip: string, port: number): Decision | undefined {
    const loopback = isLoopback(unmapped(ip));
    const index = this.compiled.findIndex((c) => c.matches(ip, port, loopback));
    return index < 0 ? undefined : { index, rule: this.compiled[index]!.rule };
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
    default:
      return a.kind;
  }
}
