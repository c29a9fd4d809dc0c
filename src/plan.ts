/** Everything one run of graft needs, resolved from argv and the config file. */
import type { Rule } from './rules/model.js';
import type { UpstreamProxy } from './upstream/url.js';
import type { ScopedToxic } from './chaos/parse.js';
import type { ConnectFault } from './chaos/connect-faults.js';
import type { Egress } from './egress/model.js';
import type { DnsFault } from './chaos/dns-faults.js';
import type { ControlAddress } from './control/server.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** What graft tells the terminal: errors only, one line per connection, or nothing. */
export type TerminalVerbosity = 'normal' | 'verbose' | 'quiet';

export interface LogPlan {
  readonly terminal: TerminalVerbosity;
  /** Threshold for the log file and, when verbose, for the terminal. */
  readonly level: LogLevel;
  /** ndjson log file, one record per connection. */
  readonly file?: string;
}

/**
 * Where the egress options are applied to TCP: on the proxy's own outbound
 * socket, or on the program's socket by the tracer (no proxy hop).
 */
export type Mode = 'proxy' | 'inplace';
export type ModeChoice = Mode | 'auto';

/**
 * Who answers the program's DNS: graft, with fake addresses for names that
 * go through a proxy (remote); graft, with every name's real answer
 * (local); or nobody but the program's own servers (off).
 */
export type DnsMode = 'remote' | 'local' | 'off';
export const DNS_MODES: readonly DnsMode[] = ['remote', 'local', 'off'];

export interface DnsPlan {
  /** absent: chosen by dnsModeFor (src/routing.ts): remote, local or off, from the rules, the default route and the DNS faults */
  readonly mode?: DnsMode;
  /** the fake address ranges (CIDR), where given */
  readonly fake4?: string;
  readonly fake6?: string;
  /** faults on questions, decided by graft's DNS server */
  readonly faults: readonly DnsFault[];
}

export interface Plan {
  readonly program: string;
  readonly args: readonly string[];
  readonly egress: Egress;
  readonly mode: ModeChoice;
  /** the user's rules, in order (first match wins) */
  readonly rules: readonly Rule[];
  /** upstream proxy chains by name; the default chain (--proxy) under '' */
  readonly chains: ReadonlyMap<string, readonly UpstreamProxy[]>;
  /** data faults on the proxy path */
  readonly toxics: readonly ScopedToxic[];
  /** faults on the connect itself, decided in the tracer */
  readonly connectFaults: readonly ConnectFault[];
  readonly dns: DnsPlan;
  /** seeds the randomness of faults; random when absent */
  readonly seed?: number;
  /** graft's own limit on dialing a destination (--connect-timeout); absent: the network's own, as the program would see natively */
  readonly connectTimeoutMs?: number;
  readonly log: LogPlan;
  /** the runtime control API; absent: faults are fixed at start */
  readonly control?: ControlPlan;
}

export interface ControlPlan {
  /** where the API listens; absent: only in this process (runGraft's handle) */
  readonly address?: ControlAddress;
}
