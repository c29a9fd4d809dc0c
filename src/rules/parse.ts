/**
 * Parses rule text: `MATCH ACTION`.
 *   MATCH   all | ADDR[/PREFIX][:PORT|:LO-HI] | [IPv6[/PREFIX]][:PORT...] | port N[-M]
 *           | NAME[:PORT...] | *.NAME[:PORT...]
 *   ACTION  proxy [NAME] | direct | pass | refuse [ERRNO]
 *           | mark N | interface IF | source ADDR   (these three combine)
 * Errors are UsageErrors naming the rule and the bad word (src/settings adds where it came from).
 */
import { BlockList } from 'node:net';
import { addressFamily, notAnAddress, ZONE_HINT } from '../address.js';
import { UsageError } from '../errors.js';
import { INTERFACE_HINT, isInterfaceName, parseMark } from '../units.js';
import { parseNamePattern } from '../dns/pattern.js';
import type { Egress } from '../egress/model.js';
import { REFUSE_ERRNOS, type Action, type Match, type PortRange, type RefuseErrno, type Rule } from './model.js';

/** The origin is the rule's data, not part of the message: the settings layer says where the rule came from. */
function fail(_origin: string, text: string, why: string): never {
  throw new UsageError(`rule '${text}': ${why}`);
}

function parsePorts(spec: string, origin: string, text: string): PortRange {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(spec);
  const lo = Number(m?.[1]);
  const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
  if (!m || lo < 1 || hi > 65535 || lo > hi) fail(origin, text, `'${spec}' is not a port or port range (1-65535, e.g. 443 or 8000-8999)`);
  return { lo, hi };
}

/** "10.0.0.0/8", "198.51.100.7:443", "[2001:db8::/32]:80-90", "2001:db8::1" */
function parseNet(word: string, origin: string, text: string): Match {
  let addrPart = word;
  let portPart: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.+))?$/.exec(word);
  if (bracket) {
    addrPart = bracket[1]!;
    portPart = bracket[2];
  } else if (!word.includes('::') && (word.match(/:/g) ?? []).length === 1) {
    [addrPart, portPart] = word.split(':') as [string, string];
  }
  const [address = '', prefixText] = addrPart.split('/');
  const family = addressFamily(address);
  const pattern = family === 0 && !bracket && prefixText === undefined ? parseNamePattern(addrPart) : undefined;
  if (pattern) return { kind: 'name', pattern, ...(portPart !== undefined ? { ports: parsePorts(portPart, origin, text) } : {}) };
  if (family === 0)
    fail(
      origin,
      text,
      address.includes('%') ? `'${word}': ${ZONE_HINT}` : `'${word}' is not an IP address, CIDR, host name (example.com, *.example.com), 'all' or 'port N'`,
    );
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(max)) || prefix > max) fail(origin, text, `'/${prefixText}' is not a prefix length for IPv${family} (0-${max})`);
  try {
    new BlockList().addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  } catch {
    fail(origin, text, `'${addrPart}' is not a valid network`);
  }
  return {
    kind: 'net',
    family: family,
    address,
    prefix,
    ...(portPart !== undefined ? { ports: parsePorts(portPart, origin, text) } : {}),
  };
}

function parseAction(words: string[], origin: string, text: string): Action {
  const [verb, ...rest] = words;
  const none = (): void => {
    if (rest.length) fail(origin, text, `'${verb}' takes no argument (got '${rest.join(' ')}')`);
  };
  switch (verb) {
    case 'proxy':
      if (rest.length > 1) fail(origin, text, `'proxy' takes at most one proxy name`);
      return rest[0] !== undefined ? { kind: 'proxy', name: rest[0] } : { kind: 'proxy' };
    case 'direct':
      none();
      return { kind: 'direct' };
    case 'pass':
      none();
      return { kind: 'pass' };
    case 'refuse': {
      if (rest.length > 1) fail(origin, text, `'refuse' takes at most one errno`);
      const errno = (rest[0] ?? 'ECONNREFUSED').toUpperCase();
      if (!(REFUSE_ERRNOS as readonly string[]).includes(errno))
        fail(origin, text, `'${rest[0]}' is not an errno graft can refuse with (${REFUSE_ERRNOS.join(', ')})`);
      return { kind: 'refuse', errno: errno as RefuseErrno };
    }
    case 'mark':
    case 'interface':
    case 'source':
      return { kind: 'route', egress: parseRoute(words, origin, text) };
    case undefined:
      return fail(origin, text, 'no action (proxy, direct, pass, refuse, mark, interface or source)');
    default:
      return fail(origin, text, `'${verb}' is not an action (proxy, direct, pass, refuse, mark, interface or source)`);
  }
}

/** "mark 0x10 interface wg0 source 192.0.2.1" */
function parseRoute(words: string[], origin: string, text: string): Egress {
  const e: { -readonly [K in keyof Egress]: Egress[K] } = {};
  for (let i = 0; i < words.length; i += 2) {
    const key = words[i]!;
    const value = words[i + 1];
    if (!['mark', 'interface', 'source'].includes(key)) fail(origin, text, `'${key}' cannot be combined with mark, interface and source`);
    if (value === undefined) fail(origin, text, `'${key}' needs a value`);
    if (key === 'mark') {
      if (e.mark !== undefined) fail(origin, text, `'mark' given twice`);
      const mark = parseMark(value);
      if (mark === undefined) fail(origin, text, `'${value}' is not a 32-bit mark (decimal or 0x hex)`);
      e.mark = mark;
    } else if (key === 'interface') {
      if (e.interface !== undefined) fail(origin, text, `'interface' given twice`);
      if (!isInterfaceName(value)) fail(origin, text, `'${value}' is ${INTERFACE_HINT}`);
      e.interface = value;
    } else if (key === 'source') {
      const family = addressFamily(value);
      if (family === 0) fail(origin, text, notAnAddress(value));
      if ((family === 4 ? e.source4 : e.source6) !== undefined) fail(origin, text, `two IPv${family} source addresses`);
      if (family === 4) e.source4 = value;
      else e.source6 = value;
    } else {
      fail(origin, text, `'${key}' cannot be combined with mark, interface and source`);
    }
  }
  return e;
}

function parseMatch(words: string[], origin: string, text: string): { match: Match; rest: string[] } {
  const [first, second, ...more] = words;
  if (first === undefined) fail(origin, text, 'empty rule');
  if (first === 'all') return { match: { kind: 'all' }, rest: words.slice(1) };
  if (first === 'port') {
    if (second === undefined) fail(origin, text, `'port' needs a port or range`);
    return { match: { kind: 'port', ports: parsePorts(second, origin, text) }, rest: more };
  }
  return { match: parseNet(first, origin, text), rest: words.slice(1) };
}

export function parseRule(text: string, origin: string): Rule {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const { match, rest } = parseMatch(words, origin, text);
  return { match, action: parseAction(rest, origin, text), origin, text: text.trim() };
}
