/**
 * Upstream proxy URLs as users write them:
 *   socks5://[user:pass@]host:port   socks4://[user@]host:port
 *   socks4a://[user@]host:port       http://[user:pass@]host:port (CONNECT)
 * Credentials are kept apart from everything printed: `display` has them
 * masked and is the only form logs and errors use.
 */
import { isIP } from 'node:net';
import { UsageError } from '../errors.js';

export type ProxyKind = 'socks5' | 'socks4' | 'socks4a' | 'http';

export interface Credentials {
  readonly user: string;
  readonly password: string;
}

export interface UpstreamProxy {
  readonly kind: ProxyKind;
  /** a host name or an IP address */
  readonly host: string;
  readonly port: number;
  readonly auth?: Credentials;
  /** the URL with any password masked, for logs and messages */
  readonly display: string;
}

const KINDS: Record<string, ProxyKind> = { 'socks5:': 'socks5', 'socks5h:': 'socks5', 'socks4:': 'socks4', 'socks4a:': 'socks4a', 'http:': 'http' };

/** Masks the password of anything that looks like a proxy URL. */
export function maskUrl(text: string): string {
  return text.replace(/(\/\/[^:/@\s]*:)[^@/\s]*@/g, '$1***@');
}

/** A URL's user or password, percent-decoded; undefined when its escapes are not valid UTF-8 percent-encoding. */
function decodePart(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

/** Parses a proxy URL; a UsageError says what is wrong with it (the settings layer adds where it came from). */
export function parseProxyUrl(text: string): UpstreamProxy {
  const shown = maskUrl(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`'${shown}' is not a proxy URL (e.g. socks5://host:1080, http://user:pass@host:3128)`);
  }
  const kind = KINDS[url.protocol];
  if (!kind) throw new UsageError(`'${shown}': unsupported scheme '${url.protocol}' (socks5, socks4, socks4a or http)`);
  if (url.pathname !== '' && url.pathname !== '/') throw new UsageError(`'${shown}': a proxy URL has no path`);
  if (url.search || url.hash) throw new UsageError(`'${shown}': a proxy URL has no query or fragment`);
  if (!url.hostname) throw new UsageError(`'${shown}': no host`);
  if (!url.port) throw new UsageError(`'${shown}': no port (e.g. ${kind}://${url.hostname}:${kind === 'http' ? 3128 : 1080})`);
  if (Number(url.port) === 0) throw new UsageError(`'${shown}': port 0 is not a port (1-65535)`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const user = decodePart(url.username);
  const password = decodePart(url.password);
  if (user === undefined || password === undefined) {
    throw new UsageError(`'${shown}': the ${user === undefined ? 'user name' : 'password'} has a bad %-escape (write a literal % as %25, @ as %40, : as %3A)`);
  }
  if (kind === 'socks4' || kind === 'socks4a') {
    if (password) throw new UsageError(`'${shown}': SOCKS4 has a user id but no password`);
  }
  if ((kind === 'socks5' || kind === 'http') && (user === '') !== (password === '') && !(user && !password)) {
    throw new UsageError(`'${shown}': a password needs a user name`);
  }
  const displayHost = isIP(host) === 6 ? `[${host}]` : host;
  const display = `${kind}://${user ? `${encodeURIComponent(user)}${password ? ':***' : ''}@` : ''}${displayHost}:${url.port}`;
  return { kind, host, port: Number(url.port), ...(user ? { auth: { user, password } } : {}), display };
}

/** "socks5://a:1080 -> http://b:3128" */
export function describeChain(chain: readonly UpstreamProxy[]): string {
  return chain.map((p) => p.display).join(' -> ');
}
