/**
 * graft's routing rules: `MATCH ACTION`, first match wins. The model here is
 * what the parser produces, what explain prints, and what compiles into the
 * tracer's table.
 */
import type { Egress } from '../egress/model.js';
import type { NamePattern } from '../dns/pattern.js';

export interface PortRange {
  readonly lo: number;
  readonly hi: number;
}

export type Match =
  | { readonly kind: 'all' }
  | { readonly kind: 'port'; readonly ports: PortRange }
  | { readonly kind: 'net'; readonly family: 4 | 6; readonly address: string; readonly prefix: number; readonly ports?: PortRange }
  /** a host name or `*.` its subdomains: matches the addresses graft answered the program for such a name */
  | { readonly kind: 'name'; readonly pattern: NamePattern; readonly ports?: PortRange };

export type Action =
  /** through an upstream proxy chain; no name: the default chain (--proxy) */
  | { readonly kind: 'proxy'; readonly name?: string }
  /** straight to the destination with the global egress options */
  | { readonly kind: 'direct' }
  /** straight to the destination with these egress options (they replace the global ones) */
  | { readonly kind: 'route'; readonly egress: Egress }
  /** connect fails with this errno */
  | { readonly kind: 'refuse'; readonly errno: RefuseErrno }
  /** untouched by graft */
  | { readonly kind: 'pass' }
  /** graft's own rules, never written by a user: DNS to port 53 goes to graft's DNS server ... */
  | { readonly kind: 'dns' }
  /** ... and a connect to a fake address goes as the rules say for the name it stands for */
  | { readonly kind: 'fake' };

export const REFUSE_ERRNOS = ['ECONNREFUSED', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNRESET', 'EACCES', 'EPERM'] as const;
export type RefuseErrno = (typeof REFUSE_ERRNOS)[number];

/** Where a rule came from, for messages: "--rule 2" or "config.yaml:14". */
export type Origin = string;

export interface Rule {
  readonly match: Match;
  readonly action: Action;
  readonly origin: Origin;
  /** the rule as written, for explain and logs */
  readonly text: string;
}
