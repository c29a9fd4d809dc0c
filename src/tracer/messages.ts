// Generated from spec/tracer-boundary.json by scripts/gen-boundary.mjs: do not edit.
import type { MessageSpec } from './spec.js';

export const LINE_MAX = 4096;
export const TEXT_MAX = 1023;

export const FAMILY = ['any', 'ip4', 'ip6'] as const;
export type Family = (typeof FAMILY)[number];

export const TCP_ACTION = ['pass', 'refuse', 'redirect', 'inplace'] as const;
export type TcpAction = (typeof TCP_ACTION)[number];

export const UDP_ACTION = ['pass', 'refuse', 'egress', 'dns'] as const;
export type UdpAction = (typeof UDP_ACTION)[number];

export const SELECT = ['all', 'prob', 'first', 'every', 'after'] as const;
export type Select = (typeof SELECT)[number];

export const RELAY_END = ['ok', 'dial', 'handshake', 'program', 'upstream', 'exit-dialing', 'exit-cut', 'socks-reply', 'socks-auth', 'socks-malformed', 'socks-closed', 'socks-timeout'] as const;
export type RelayEnd = (typeof RELAY_END)[number];

/** C: a connect handed to graft's proxy: the program's socket waits in SYN_SENT towards the black hole at hole_port (on the loopback address of peer_ip's family) until the proxy answers this id on the control fd; peer_ip/peer_port: the program's end of it; fault and delay_ms: a handshake delay fault (the proxy completes the handshake no sooner than delay_ms after this record) */
export interface RedirectMessage {
  readonly kind: 'redirect';
  readonly pid: number;
  readonly tid: number;
  readonly id: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly peerIp: string;
  readonly peerPort: number;
  readonly holePort: number;
  readonly rule: number;
  readonly fault?: number;
  readonly delayMs: number;
  readonly exe: string;
}

/** R: a connect of a relay rule, dialed and relayed by the tracer itself, once it has ended (sent in batches, at most 100 ms late). end says how: ok (both sides closed; error absent), dial (the destination did not accept: error is its errno, which the program's connect got when the dial message passes it through; ETIMEDOUT also for graft's own connect timeout), handshake (the program's socket no longer waited for the connect: error why; the program's connect failed with ECONNABORTED, or ECONNREFUSED when error is EMFILE or ENFILE), program or upstream (that side failed with error; the other was reset), exit-dialing (the program exited while the destination was dialed), exit-cut (the program exited and its bytes could not be handed on within a second). at_exit: the program exited while this connection was open. A dial that failed for EMFILE or ENFILE failed the program's connect with ECONNREFUSED. For a rule with a SOCKS5 proxy, dial is the connect to the proxy, and its handshake can end: socks-reply (a reply with REP socks_code, not 0), socks-auth (no acceptable method, or the user/password refused), socks-malformed (bytes that are not a SOCKS5 reply), socks-closed (the proxy closed or reset before its reply), socks-timeout (no reply by graft's deadline); the program's connect then got the errno the dial message gives for it */
export interface RelayedMessage {
  readonly kind: 'relayed';
  readonly pid: number;
  readonly tid: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly peerIp: string;
  readonly peerPort: number;
  readonly rule: number;
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly durationMs: number;
  readonly end: RelayEnd;
  readonly error?: string;
  readonly socksCode?: number;
  readonly atExit: boolean;
  readonly exe: string;
}

/** O: a connect of a relay rule succeeded (the program's end peer_ip/peer_port is connected to the destination), sent before its R record in the same batching */
export interface OpenedMessage {
  readonly kind: 'opened';
  readonly pid: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly peerIp: string;
  readonly peerPort: number;
  readonly exe: string;
}

/** I: a connect let go on in place, with its rule's egress options set on the program's socket */
export interface InplaceMessage {
  readonly kind: 'inplace';
  readonly pid: number;
  readonly tid: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly rule: number;
  readonly exe: string;
}

/** K: a datagram socket connected to a destination only a proxy may reach: the connect went through (the program sees the source address the kernel picked), and what the socket sends stays on this machine */
export interface KeptLocalMessage {
  readonly kind: 'kept-local';
  readonly pid: number;
  readonly tid: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly rule: number;
  readonly exe: string;
}

/** Q: a datagram socket pointed at graft's DNS server (table message dns), sent at once when it is first pointed there and whenever its meant destination changes: family says which listener (ip4: 127.0.0.1:port4, ip6: [::1]:port6); local_port is the socket's port, the source port the DNS server sees; dst_ip/dst_port where the program meant to send */
export interface DnsSocketMessage {
  readonly kind: 'dns-socket';
  readonly pid: number;
  readonly tid: number;
  readonly family: Family;
  readonly localPort: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly exe: string;
}

/** F: a call the tracer failed on purpose instead of letting it out another way; rule -1 when no rule is the reason; fault: the connect fault that failed it */
export interface FailedMessage {
  readonly kind: 'failed';
  readonly pid: number;
  readonly tid: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly error: string;
  readonly rule: number;
  readonly fault?: number;
  readonly exe: string;
  readonly reason: string;
}

/** H: a blocking connect a delay fault holds in the tracer before it goes on */
export interface DelayedMessage {
  readonly kind: 'delayed';
  readonly pid: number;
  readonly tid: number;
  readonly dstIp: string;
  readonly dstPort: number;
  readonly fault: number;
  readonly exe: string;
}

/** D: something worth a log line */
export interface DiagnosticMessage {
  readonly kind: 'diagnostic';
  readonly pid: number;
  readonly tid: number;
  readonly message: string;
}

/** rule: family any: every destination (net absent); explicit: the rule names a network, the only kind that may match a loopback destination; by_name: the rule matches an address only through the names control message (family any, net absent, prefix 0; its ports still apply), never by a network of its own; udp dns: datagrams go to graft's DNS server (table message dns); direct: a redirect the proxy dials itself, without an upstream proxy, so the local routing's answer for the destination (no route, prohibited) is the connect's, at once; relay (direct, or socks_ip given): no toxic, name or control API can concern this rule's redirects, so the tracer dials and relays them itself (R and O records, no C record) unless a handshake delay fault or a source of the other family only applies; socks_ip/socks_port: a relay rule's one upstream proxy, SOCKS5 at this address, asked to CONNECT to the destination's address, with RFC 1929 user/password when socks_user and socks_pass are given (the egress options then apply to the connection to the proxy); error: what refuse fails with, and what a datagram to a proxy-only destination gets */
export interface RuleMessage {
  readonly kind: 'rule';
  readonly family: Family;
  readonly net?: string;
  readonly prefix: number;
  readonly portLo: number;
  readonly portHi: number;
  readonly explicit: boolean;
  readonly byName: boolean;
  readonly tcp: TcpAction;
  readonly udp: UdpAction;
  readonly direct: boolean;
  readonly relay: boolean;
  readonly socksIp?: string;
  readonly socksPort?: number;
  readonly socksUser?: string;
  readonly socksPass?: string;
  readonly error?: string;
  readonly mark?: number;
  readonly iface?: string;
  readonly src4?: string;
  readonly src6?: string;
}

/** fault: a connect fault: error absent means a handshake delay only (the connect goes on after delay_ms), else the connect fails with it after delay_ms; select with n (first n, every nth, after n went through) or prob (0 to 1) */
export interface FaultMessage {
  readonly kind: 'fault';
  readonly family: Family;
  readonly net?: string;
  readonly prefix: number;
  readonly portLo: number;
  readonly portHi: number;
  readonly explicit: boolean;
  readonly error?: string;
  readonly delayMs: number;
  readonly select: Select;
  readonly n: number;
  readonly prob: number;
}

/** dial: how the tracer dials the redirects of relay rules: timeout_ms is graft's own connect timeout (absent: the kernel's SYN retries decide); passthrough, the errnos (comma-separated names) a failed dial passes on to the program's connect as they are: any other fails it with ECONNREFUSED; upstream_timeout_ms: without timeout_ms, how long a dial through a SOCKS5 proxy may take, its handshake included; socks_replies: the errnos (nine comma-separated names) for SOCKS5 replies 0x01 to 0x08 and then any other; socks_auth, socks_malformed, socks_closed, socks_timeout: the errnos for the other ends of a handshake (relay_end); at most one */
export interface DialMessage {
  readonly kind: 'dial';
  readonly timeoutMs?: number;
  readonly passthrough: string;
  readonly upstreamTimeoutMs: number;
  readonly socksReplies: string;
  readonly socksAuth: string;
  readonly socksMalformed: string;
  readonly socksClosed: string;
  readonly socksTimeout: string;
}

/** dns: graft's DNS server listens (UDP) on 127.0.0.1:port4 and [::1]:port6; at most one; a rule with udp dns needs it */
export interface DnsMessage {
  readonly kind: 'dns';
  readonly port4: number;
  readonly port6: number;
}

/** fail: the destination (or an upstream proxy) did not accept: the program's connect fails with error, as the kernel would have failed it */
export interface RefusedMessage {
  readonly kind: 'refused';
  readonly id: number;
  readonly error: string;
}

/** names: from now on, destination ip (v4-mapped counts as IPv4) also matches the by_name rules listed in rules (their indices, comma-separated ascending decimals); rules absent forgets ip. Written before the DNS answer holding ip reaches the program. The tracer keeps at most 65536 addresses, the least recently set replaced */
export interface NamesMessage {
  readonly kind: 'names';
  readonly ip: string;
  readonly rules?: string;
}

export type RecordMessage = RedirectMessage | RelayedMessage | OpenedMessage | InplaceMessage | KeptLocalMessage | DnsSocketMessage | FailedMessage | DelayedMessage | DiagnosticMessage;
export type TableMessage = RuleMessage | FaultMessage | DialMessage | DnsMessage;
export type ControlMessage = RefusedMessage | NamesMessage;
export type Message = RecordMessage | TableMessage | ControlMessage;

export const MESSAGES: { readonly [K in Message['kind']]: MessageSpec } = {
  'redirect': {
    tag: 'C',
    direction: 'records',
    fields: [
      { name: 'pid', type: 'int', optional: false },
      { name: 'tid', type: 'int', optional: false },
      { name: 'id', type: 'uint', optional: false },
      { name: 'dstIp', type: 'addr', optional: false },
      { name: 'dstPort', type: 'port', optional: false },
      { name: 'peerIp', type: 'addr', optional: false },
      { name: 'peerPort', type: 'port', optional: false },
      { name: 'holePort', type: 'port', optional: false },
      { name: 'rule', type: 'int', optional: false },
      { name: 'fault', type: 'int', optional: true },
      { name: 'delayMs', type: 'uint', optional: false },
      { name: 'exe', type: 'text', optional: false },
    ],
  },
  'relayed': {
    tag: 'R',
    direction: 'records',
    fields: [
      { name: 'pid', type: 'int', optional: false },
      { name: 'tid', type: 'int', optional: false },
      { name: 'dstIp', type: 'addr', optional: false },
      { name: 'dstPort', type: 'port', optional: false },
      { name: 'peerIp', type: 'addr', optional: false },
      { name: 'peerPort', type: 'port', optional: false },
      { name: 'rule', type: 'int', optional: false },
      { name: 'bytesUp', type: 'count', optional: false },
      { name: 'bytesDown', type: 'count', optional: false },
      { name: 'durationMs', type: 'uint', optional: false },
      { name: 'end', type: 'enum', optional: false, words: RELAY_END },
      { name: 'error', type: 'errno', optional: true },
      { name: 'socksCode', type: 'uint', optional: true },
      { name: 'atExit', type: 'bool', optional: false },
      { name: 'exe', type: 'text', optional: false },
    ],
  },
  'opened': {
    tag: 'O',
    direction: 'records',
    fields: [
      { name: 'pid', type: 'int', optional: false },
      { name: 'dstIp', type: 'addr', optional: false },
      { name: 'dstPort', type: 'port', optional: false },
      { name: 'peerIp', type: 'addr', optional: false },
      { name: 'peerPort', type: 'port', optional: false },
      { name: 'exe', type: 'text', optional: false },
    ],
  },
  'inplace': {
    tag: 'I',
    direction: 'records',
    fields: [
      { name: 'pid', type: 'int', optional: false },
      { name: 'tid', type: 'int', optional: false },
      { name: 'dstIp', type: 'addr', optional: false },
      { name: 'dstPort', type: 'port', optional: false },
      { name: 'rule', type: 'int', optional: false },
      { name: 'exe', type: 'text', optional: false },
    ],
  },
  'kept-local': {
    tag: 'K',
    direction: 'records',
    fields: [
      { name: 'pid', type: 'int', optional: false },
      { name: 'tid', type: 'int', optional: false },
      { name: 'dstIp', type: 'addr', optional: false },
      { name: 'dstPort', type: 'port', optional: false },
      { name: 'rule', type: 'int', optional: false },
      { name: 'exe', type: 'text', optional: false },
    ],
  },
  'dns-socket': {
    tag: 'Q',
    direction: 'records',
    fields: [
      { name: 'pid', type: 'int', optional: false },
      { name: 'tid', type: 'int', optional: false },
      { name: 'family', type: 'enum', optional: false, words: FAMILY },
      { name: 'localPort', type: 'port', optional: false },
      { name: 'dstIp', type: 'addr', optional: false },
      { name: 'dstPort', type: 'port', optional: false },
      { name: 'exe', type: 'text', optional: false },
    ],
  },
  'failed': {
    tag: 'F',
    direction: 'records',
    fields: [
      { name: 'pid', type: 'int', optional: false },
      { name: 'tid', type: 'int', optional: false },
      { name: 'dstIp', type: 'addr', optional: false },
      { name: 'dstPort', type: 'port', optional: false },
      { name: 'error', type: 'errno', optional: false },
      { name: 'rule', type: 'int', optional: false },
      { name: 'fault', type: 'int', optional: true },
      { name: 'exe', type: 'text', optional: false },
      { name: 'reason', type: 'text', optional: false },
    ],
  },
  'delayed': {
    tag: 'H',
    direction: 'records',
    fields: [
      { name: 'pid', type: 'int', optional: false },
      { name: 'tid', type: 'int', optional: false },
      { name: 'dstIp', type: 'addr', optional: false },
      { name: 'dstPort', type: 'port', optional: false },
      { name: 'fault', type: 'int', optional: false },
      { name: 'exe', type: 'text', optional: false },
    ],
  },
  'diagnostic': {
    tag: 'D',
    direction: 'records',
    fields: [
      { name: 'pid', type: 'int', optional: false },
      { name: 'tid', type: 'int', optional: false },
      { name: 'message', type: 'text', optional: false },
    ],
  },
  'rule': {
    tag: 'rule',
    direction: 'table',
    fields: [
      { name: 'family', type: 'enum', optional: false, words: FAMILY },
      { name: 'net', type: 'addr', optional: true },
      { name: 'prefix', type: 'uint', optional: false },
      { name: 'portLo', type: 'port', optional: false },
      { name: 'portHi', type: 'port', optional: false },
      { name: 'explicit', type: 'bool', optional: false },
      { name: 'byName', type: 'bool', optional: false },
      { name: 'tcp', type: 'enum', optional: false, words: TCP_ACTION },
      { name: 'udp', type: 'enum', optional: false, words: UDP_ACTION },
      { name: 'direct', type: 'bool', optional: false },
      { name: 'relay', type: 'bool', optional: false },
      { name: 'socksIp', type: 'addr', optional: true },
      { name: 'socksPort', type: 'port', optional: true },
      { name: 'socksUser', type: 'text', optional: true },
      { name: 'socksPass', type: 'text', optional: true },
      { name: 'error', type: 'errno', optional: true },
      { name: 'mark', type: 'uint', optional: true },
      { name: 'iface', type: 'text', optional: true },
      { name: 'src4', type: 'addr', optional: true },
      { name: 'src6', type: 'addr', optional: true },
    ],
  },
  'fault': {
    tag: 'fault',
    direction: 'table',
    fields: [
      { name: 'family', type: 'enum', optional: false, words: FAMILY },
      { name: 'net', type: 'addr', optional: true },
      { name: 'prefix', type: 'uint', optional: false },
      { name: 'portLo', type: 'port', optional: false },
      { name: 'portHi', type: 'port', optional: false },
      { name: 'explicit', type: 'bool', optional: false },
      { name: 'error', type: 'errno', optional: true },
      { name: 'delayMs', type: 'uint', optional: false },
      { name: 'select', type: 'enum', optional: false, words: SELECT },
      { name: 'n', type: 'uint', optional: false },
      { name: 'prob', type: 'double', optional: false },
    ],
  },
  'dial': {
    tag: 'dial',
    direction: 'table',
    fields: [
      { name: 'timeoutMs', type: 'uint', optional: true },
      { name: 'passthrough', type: 'text', optional: false },
      { name: 'upstreamTimeoutMs', type: 'uint', optional: false },
      { name: 'socksReplies', type: 'text', optional: false },
      { name: 'socksAuth', type: 'errno', optional: false },
      { name: 'socksMalformed', type: 'errno', optional: false },
      { name: 'socksClosed', type: 'errno', optional: false },
      { name: 'socksTimeout', type: 'errno', optional: false },
    ],
  },
  'dns': {
    tag: 'dns',
    direction: 'table',
    fields: [
      { name: 'port4', type: 'port', optional: false },
      { name: 'port6', type: 'port', optional: false },
    ],
  },
  'refused': {
    tag: 'fail',
    direction: 'control',
    fields: [
      { name: 'id', type: 'uint', optional: false },
      { name: 'error', type: 'errno', optional: false },
    ],
  },
  'names': {
    tag: 'names',
    direction: 'control',
    fields: [
      { name: 'ip', type: 'addr', optional: false },
      { name: 'rules', type: 'text', optional: true },
    ],
  },
};
