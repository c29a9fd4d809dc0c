/**
 * What the tracer decides by, as boundary messages: the rules (first match
 * wins) and the connect faults. Routing says what each rule does; this
 * module only puts it into the spec's terms.
 */
import type { ConnectFault } from '../chaos/connect-faults.js';
import type { Match } from '../rules/model.js';
import { encodeMessages } from './codec.js';
import { PASSTHROUGH, REPLY_ERRNOS } from '../upstream/failure.js';
import { UPSTREAM_ANSWER_LIMIT_MS } from '../upstream/chain.js';
import type { DialMessage, DnsMessage, FaultMessage, RuleMessage } from './messages.js';

type MatchFields = Pick<RuleMessage, 'family' | 'net' | 'prefix' | 'portLo' | 'portHi' | 'explicit' | 'byName'>;

/** A fault's MATCH: faults are decided by address (a name is refused when parsed). */
type FaultMatchFields = Pick<FaultMessage, 'family' | 'net' | 'prefix' | 'portLo' | 'portHi' | 'explicit'>;

/** A rule's or fault's MATCH in the table's fields. */
export function matchFields(m: Match): MatchFields {
  const ports = m.kind === 'all' ? { lo: 0, hi: 65535 } : m.kind === 'port' ? m.ports : (m.ports ?? { lo: 0, hi: 65535 });
  const where =
    m.kind === 'net'
      ? { family: m.family === 4 ? ('ip4' as const) : ('ip6' as const), net: m.address, prefix: m.prefix }
      : { family: 'any' as const, prefix: 0 };
  // a name rule may match a loopback address answered for its name (explicit), and only addresses answered for it (byName)
  return { ...where, portLo: ports.lo, portHi: ports.hi, explicit: m.kind === 'net' || m.kind === 'name', byName: m.kind === 'name' };
}

export function faultMessage(f: ConnectFault): FaultMessage {
  const s = f.select;
  const where: FaultMatchFields & { byName?: boolean } = { ...matchFields(f.match) };
  delete where.byName;
  return {
    kind: 'fault',
    ...where,
    ...(f.errno ? { error: f.errno } : {}),
    delayMs: f.delayMs,
    select: s.kind,
    n: s.kind === 'first' || s.kind === 'every' || s.kind === 'after' ? s.n : 0,
    prob: s.kind === 'prob' ? s.p : 0,
  };
}

/** Where graft's DNS server listens (UDP): 127.0.0.1:port4 and [::1]:port6. */
export type DnsListeners = Omit<DnsMessage, 'kind'>;

/** SOCKS5 replies 0x01 to 0x08, then any other: the rows of REPLY_ERRNOS the tracer's errnos come from. */
const SOCKS5_REPLY_ROWS = [
  'socks5:0x01',
  'socks5:0x02',
  'socks5:0x03',
  'socks5:0x04',
  'socks5:0x05',
  'socks5:0x06',
  'socks5:0x07',
  'socks5:0x08',
  'socks5:other',
] as const;

/**
 * How the tracer dials: the timeouts, the errnos a failed dial passes on
 * as they are, and the errno of each way a SOCKS5 handshake can fail: the
 * policy a Node dial follows (upstream/failure.ts), written once.
 */
function dialMessage(connectTimeoutMs: number | undefined): DialMessage {
  return {
    kind: 'dial',
    ...(connectTimeoutMs !== undefined ? { timeoutMs: connectTimeoutMs } : {}),
    passthrough: [...PASSTHROUGH].join(','),
    upstreamTimeoutMs: UPSTREAM_ANSWER_LIMIT_MS,
    socksReplies: SOCKS5_REPLY_ROWS.map((row) => REPLY_ERRNOS[row].errno).join(','),
    socksAuth: REPLY_ERRNOS.auth.errno,
    socksMalformed: REPLY_ERRNOS.malformed.errno,
    socksClosed: REPLY_ERRNOS.closed.errno,
    socksTimeout: REPLY_ERRNOS.timeout.errno,
  };
}

/**
 * The bytes the tracer reads on its rules fd. With `dns`, datagrams to a
 * destination whose rule says `udp: 'dns'` go to graft's DNS server (a
 * table with such a rule and no `dns` is refused by the tracer). When a
 * rule has the tracer relay its redirects, a dial message says how it
 * dials them: `connectTimeoutMs` is graft's --connect-timeout (undefined:
 * the kernel's SYN retries decide), as for the proxy's own dials.
 */
export function encodeTable(rules: readonly RuleMessage[], faults: readonly ConnectFault[], dns?: DnsListeners, connectTimeoutMs?: number): Buffer {
  const dial: DialMessage[] = rules.some((r) => r.relay) ? [dialMessage(connectTimeoutMs)] : [];
  const listeners: DnsMessage[] = dns ? [{ kind: 'dns', port4: dns.port4, port6: dns.port6 }] : [];
  return encodeMessages([...rules, ...faults.map(faultMessage), ...dial, ...listeners]);
}
