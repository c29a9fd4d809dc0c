/**
 * Every way a dial can fail, turned into the one errno the program's
 * connect(2) gets. A redirected connect completes only once the destination
 * (or the last hop's reply) accepts; when the dial fails instead, the
 * program sees the errno a native connect would most plausibly have seen.
 *
 * Pure: no I/O. REPLY_ERRNOS is the mapping; docs/design.md ("Upstream
 * replies and the errno the program gets") has the same table in prose, and
 * test/unit/dial-failure.test.ts checks both.
 */

/** Why a proxy handshake failed, as far as the proxy's bytes tell. */
export type HandshakeReason =
  /** a SOCKS5 reply with REP other than 0x00 (RFC 1928, section 6) */
  | { readonly kind: 'socks5'; readonly code: number }
  /** a SOCKS4 reply with CD other than 0x5A (90) */
  | { readonly kind: 'socks4'; readonly code: number }
  /** an HTTP CONNECT reply with a non-2xx status (401 and 407 included) */
  | { readonly kind: 'http'; readonly status: number }
  /** SOCKS5: no acceptable method (0xFF) or the user/password refused */
  | { readonly kind: 'auth' }
  /** bytes that are not a reply of the hop's protocol */
  | { readonly kind: 'malformed' }
  /** the proxy closed or reset the connection before its reply */
  | { readonly kind: 'closed' }
  /** no reply within the connect timeout */
  | { readonly kind: 'timeout' }
  /** the hop's host name does not resolve */
  | { readonly kind: 'unresolvable' }
  /** the hop cannot carry the address's family (SOCKS4 and IPv6, no --source of that family) */
  | { readonly kind: 'family' };

/** A handshake with an upstream proxy that failed, and why. */
export class ProxyHandshakeError extends Error {
  override readonly name = 'ProxyHandshakeError';
  /** the HTTP status of a refused CONNECT, when there was one */
  readonly status: number | undefined;
  constructor(
    message: string,
    readonly reason: HandshakeReason,
  ) {
    super(message);
    this.status = reason.kind === 'http' ? reason.status : undefined;
  }
}

export interface FailureRow {
  /** the reply or event, as the docs name it */
  readonly reply: string;
  readonly errno: string;
  readonly why: string;
}

const refused = 'ECONNREFUSED';

/**
 * The mapping: a row per reply or event, keyed as rowFor() names them.
 * Rows whose errno is `passthrough` give the socket's own errno.
 */
export const REPLY_ERRNOS = {
  // A socket's own failure: the dial to the destination, or to the first hop.
  socket: {
    reply: "the socket's own connect error (direct dial, or the connect to hop 1)",
    errno: 'passthrough',
    why: 'the kernel already said what a native connect from here gets: passed on unchanged when connect(2) ends with it for a reason on the path (PASSTHROUGH)',
  },
  'socket-other': {
    reply: 'any other error of the dial, or an error with no errno',
    errno: refused,
    why: 'the socket state it describes is graft\'s, not the program\'s (EMFILE, EINVAL, ...); an immediate "no" that every client handles and that claims nothing the program could misread as a fault of its own socket',
  },
  'socks5:0x01': {
    reply: 'SOCKS5 0x01 general SOCKS server failure',
    errno: refused,
    why: 'microsocks and dante send it when their own connect failed with an errno they do not map (EACCES from a prohibit route, in the lab): the cause is lost, an immediate failure is all that is known',
  },
  'socks5:0x02': {
    reply: 'SOCKS5 0x02 connection not allowed by ruleset',
    errno: 'EACCES',
    why: 'a rule on the path forbids the destination: what connect(2) gives natively for a firewall rule or a prohibit route',
  },
  'socks5:0x03': { reply: 'SOCKS5 0x03 network unreachable', errno: 'ENETUNREACH', why: 'the same condition, seen by the proxy' },
  'socks5:0x04': { reply: 'SOCKS5 0x04 host unreachable', errno: 'EHOSTUNREACH', why: 'the same condition, seen by the proxy' },
  'socks5:0x05': { reply: 'SOCKS5 0x05 connection refused', errno: refused, why: 'the destination answered with a reset' },
  'socks5:0x06': {
    reply: 'SOCKS5 0x06 TTL expired',
    errno: 'ETIMEDOUT',
    why: 'proxies use it for a connect of theirs that timed out (RFC 1928 has no other timeout code)',
  },
  'socks5:0x07': {
    reply: 'SOCKS5 0x07 command not supported',
    errno: refused,
    why: 'the proxy does not do CONNECT: says nothing of the destination; an immediate failure',
  },
  'socks5:0x08': {
    reply: 'SOCKS5 0x08 address type not supported',
    errno: 'ENETUNREACH',
    why: 'the proxy cannot reach that address family: natively, a family with no route (IPv6 on an IPv4-only host) is ENETUNREACH, and clients then try the other family',
  },
  'socks5:other': { reply: 'SOCKS5 any other reply code', errno: refused, why: 'not in RFC 1928: an immediate failure of unknown cause' },
  'socks4:0x5b': {
    reply: 'SOCKS4 0x5B request rejected or failed',
    errno: refused,
    why: "SOCKS4's one failure code: dante sends it for a refused, unroutable, unreachable and prohibited destination alike (in the lab); a refused connect is its most common cause",
  },
  'socks4:0x5c': {
    reply: 'SOCKS4 0x5C rejected: the server cannot reach identd on the client',
    errno: 'EACCES',
    why: 'an identity check failed: a permission refusal, that a retry does not fix',
  },
  'socks4:0x5d': {
    reply: "SOCKS4 0x5D rejected: identd's user id differs",
    errno: 'EACCES',
    why: 'an identity check failed: a permission refusal, that a retry does not fix',
  },
  'socks4:other': { reply: 'SOCKS4 any other reply code', errno: refused, why: 'not in the protocol: an immediate failure of unknown cause' },
  'http:400': { reply: 'HTTP 400 Bad Request', errno: refused, why: 'the proxy did not take the request: says nothing of the destination' },
  'http:401': {
    reply: 'HTTP 401 (tinyproxy) or 407 Proxy Authentication Required',
    errno: 'EACCES',
    why: 'the credentials are missing or wrong: a permission refusal',
  },
  'http:403': { reply: 'HTTP 403 Forbidden', errno: 'EACCES', why: "the proxy's policy forbids the destination, like SOCKS5 0x02" },
  'http:404': { reply: 'HTTP 404 Not Found', errno: 'EHOSTUNREACH', why: 'proxies answer it for a destination host they cannot find' },
  'http:500': {
    reply: 'HTTP 500 Internal Server Error',
    errno: refused,
    why: 'tinyproxy answers every failed connect with it (refused, unroutable, unreachable and prohibited alike, in the lab): nothing more is known',
  },
  'http:502': { reply: 'HTTP 502 Bad Gateway', errno: refused, why: 'the proxy could not connect to the destination' },
  'http:503': { reply: 'HTTP 503 Service Unavailable', errno: refused, why: 'squid and others answer a failed connect to the destination with it' },
  'http:504': { reply: 'HTTP 504 Gateway Timeout', errno: 'ETIMEDOUT', why: "the proxy's connect to the destination timed out" },
  'http:other': {
    reply: 'HTTP any other non-2xx status (1xx, 3xx, other 4xx and 5xx)',
    errno: refused,
    why: 'the tunnel was refused for a reason that says nothing of the destination',
  },
  auth: {
    reply: 'SOCKS5 authentication failure (no acceptable method, or user/password refused)',
    errno: 'EACCES',
    why: 'a permission refusal, that a retry does not fix',
  },
  malformed: {
    reply: "a reply that is not of the hop's protocol",
    errno: refused,
    why: 'no tunnel, and nothing known of the destination: an immediate failure',
  },
  closed: {
    reply: 'the proxy closes or resets the connection before its reply',
    errno: refused,
    why: 'natively, a reset where the handshake should go on reads as a refused connect',
  },
  timeout: { reply: 'no reply within the connect timeout', errno: 'ETIMEDOUT', why: 'the same as a native connect that hears nothing' },
  unresolvable: {
    reply: "a hop's host name that does not resolve",
    errno: 'EHOSTUNREACH',
    why: 'the host the connection must go through cannot be found: no route to it',
  },
  family: {
    reply: "a hop that cannot carry the address family (SOCKS4 and an IPv6 address; no --source address of the first hop's family)",
    errno: 'ENETUNREACH',
    why: 'natively, a family this host has no route for is ENETUNREACH, and clients then try the other family',
  },
} as const satisfies Record<string, FailureRow>;

export type FailureRowKey = keyof typeof REPLY_ERRNOS;

/**
 * The socket errnos that pass through unchanged: what connect(2) itself can
 * end with for a reason on the path. Others describe the state of graft's
 * own socket (EMFILE, EBADF, EINVAL, EINPROGRESS, ...), which the program's
 * socket does not share: they take the 'socket-other' row. Each is in
 * os.constants.errno, which the tracer boundary encodes errnos with (Node
 * has no EHOSTDOWN or ENONET).
 */
export const PASSTHROUGH: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EADDRNOTAVAIL',
  'EADDRINUSE',
  'EACCES',
  'EPERM',
  'ECONNRESET',
  'ECONNABORTED',
  'ENETDOWN',
  'EPROTO',
]);

/** The row for a handshake failure. */
export function rowFor(reason: HandshakeReason): FailureRowKey {
  switch (reason.kind) {
    case 'socks5': {
      const key = `socks5:0x${reason.code.toString(16).padStart(2, '0')}`;
      return key in REPLY_ERRNOS ? (key as FailureRowKey) : 'socks5:other';
    }
    case 'socks4': {
      const key = `socks4:0x${reason.code.toString(16).padStart(2, '0')}`;
      return key in REPLY_ERRNOS ? (key as FailureRowKey) : 'socks4:other';
    }
    case 'http': {
      const status = reason.status === 407 ? 401 : reason.status;
      const key = `http:${status}`;
      return key in REPLY_ERRNOS ? (key as FailureRowKey) : 'http:other';
    }
    default:
      return reason.kind;
  }
}

const SOCKS5_REPLIES: Readonly<Record<number, string>> = {
  1: 'general SOCKS server failure',
  2: 'connection not allowed by ruleset',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused',
  6: 'TTL expired',
  7: 'command not supported',
  8: 'address type not supported',
};

const SOCKS4_REPLIES: Readonly<Record<number, string>> = {
  0x5b: 'request rejected or failed',
  0x5c: 'cannot reach identd on the client',
  0x5d: "identd's user id differs",
};

/** A SOCKS failure reply for the log: "SOCKS5 reply 0x05 (connection refused)". */
export function describeSocksReply(reason: { readonly kind: 'socks4' | 'socks5'; readonly code: number }): string {
  const name = (reason.kind === 'socks5' ? SOCKS5_REPLIES : SOCKS4_REPLIES)[reason.code];
  const hex = `0x${reason.code.toString(16).padStart(2, '0').toUpperCase()}`;
  return `${reason.kind === 'socks5' ? 'SOCKS5' : 'SOCKS4'} reply ${hex}${name ? ` (${name})` : ''}`;
}

/** How a SOCKS handshake can end without a tunnel, as the proxy's bytes (or their absence) tell. */
export type SocksEnd = Extract<HandshakeReason, { readonly kind: 'socks5' | 'socks4' | 'auth' | 'malformed' | 'closed' }>;

/**
 * A SOCKS handshake that ended without a tunnel, in the log's words: the
 * hop's masked URL, then what happened. The one text for each end, written
 * alike by graft's proxy (upstream/chain.ts) and by the records of the
 * SOCKS5 connections the tracer relays (proxy/connection-record.ts), which
 * know no more than the end: the socks package's own messages are not used.
 */
export function socksHandshakeError(display: string, protocol: 'socks4' | 'socks5', reason: SocksEnd): ProxyHandshakeError {
  const what =
    reason.kind === 'socks5' || reason.kind === 'socks4'
      ? describeSocksReply(reason)
      : reason.kind === 'auth'
        ? 'SOCKS5 authentication failed'
        : reason.kind === 'malformed'
          ? `not a ${protocol === 'socks5' ? 'SOCKS5' : 'SOCKS4'} reply`
          : 'closed the connection during the SOCKS handshake';
  return new ProxyHandshakeError(`${display}: ${what}`, reason);
}

/** A hop that did not answer its handshake by the chain's deadline (`timeoutMs`: --connect-timeout, or UPSTREAM_ANSWER_LIMIT_MS). */
export function handshakeTimeout(display: string, timeoutMs: number): ProxyHandshakeError {
  return new ProxyHandshakeError(`${display}: no answer to the handshake within the connect timeout (${timeoutMs} ms)`, { kind: 'timeout' });
}

/** Where a chain's dial failed. */
export interface FailedHop {
  /** 1-based index of the hop in its chain */
  readonly index: number;
  /** the hop's URL with any password masked (UpstreamProxy.display) */
  readonly display: string;
  /** how many hops the chain has (named in the message when more than one) */
  readonly of?: number;
}

/** How the log names a hop: its masked URL, and its place in a longer chain. */
export function hopName(hop: FailedHop): string {
  return hop.of !== undefined && hop.of > 1 ? `${hop.display} (hop ${hop.index} of ${hop.of})` : hop.display;
}

/** A dial that failed, with the errno the program's connect must fail with. */
export class DialFailure extends Error {
  override readonly name = 'DialFailure';
  constructor(
    /** the errno name the program's connect gets, e.g. 'ECONNREFUSED' */
    readonly errno: string,
    /** 1-based index of the chain hop that failed; undefined for a direct dial */
    readonly hop: number | undefined,
    /** for the log: names the hop and what it replied; no credentials */
    message: string,
    /** the row of REPLY_ERRNOS that chose the errno */
    readonly row: FailureRowKey,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Maps any error of a dial to a DialFailure. `hop` is the chain hop the
 * error came from (its handshake, or the connect to it when it is hop 1);
 * without it the error is a direct dial's. A DialFailure passes through
 * unchanged. With a hop, the message starts with its masked URL (and its
 * place in a chain of more than one hop: "socks5://b:1080 (hop 2 of 2): ...").
 */
export function toDialFailure(err: unknown, hop?: FailedHop): DialFailure {
  if (err instanceof DialFailure) return err;
  const where = hop ? hopName(hop) : undefined;
  if (err instanceof ProxyHandshakeError) {
    const row = rowFor(err.reason);
    const said = hop && err.message.startsWith(`${hop.display}: `) ? err.message.slice(hop.display.length + 2) : err.message;
    return new DialFailure(REPLY_ERRNOS[row].errno, hop?.index, where ? `${where}: ${said}` : said, row, { cause: err });
  }
  const code = errnoOf(err);
  const passed = code !== undefined && PASSTHROUGH.has(code);
  const errno = passed ? code : REPLY_ERRNOS['socket-other'].errno;
  const what = hop ? `cannot connect to the proxy: ${code ?? messageOf(err)}` : `connect: ${code ?? messageOf(err)}`;
  return new DialFailure(errno, hop?.index, where ? `${where}: ${what}` : what, passed ? 'socket' : 'socket-other', { cause: err });
}

/**
 * What a SOCKS proxy's replies say, from the bytes it sent during the
 * handshake (all of them, in order): the failure reply, or undefined when
 * the bytes hold none (too short: the proxy closed or went silent first).
 */
export function socksReplyReason(kind: 'socks4' | 'socks5', bytes: Buffer): Exclude<SocksEnd, { kind: 'closed' }> | undefined {
  if (kind === 'socks4') {
    if (bytes.length < 2) return undefined;
    // the reply's version byte is 0 (some servers send 4)
    if (bytes[0] !== 0 && bytes[0] !== 4) return { kind: 'malformed' };
    return bytes[1] === 0x5a ? undefined : { kind: 'socks4', code: bytes[1]! };
  }
  if (bytes.length < 2) return undefined;
  if (bytes[0] !== 5) return { kind: 'malformed' };
  const method = bytes[1]!;
  if (method === 0xff) return { kind: 'auth' };
  let at = 2;
  if (method === 0x02) {
    if (bytes.length < 4) return undefined;
    if (bytes[3] !== 0x00) return { kind: 'auth' };
    at = 4;
  } else if (method !== 0x00) {
    return { kind: 'malformed' }; // a method graft never offers
  }
  if (bytes.length < at + 2) return undefined;
  if (bytes[at] !== 5) return { kind: 'malformed' };
  const rep = bytes[at + 1]!;
  return rep === 0 ? undefined : { kind: 'socks5', code: rep };
}
