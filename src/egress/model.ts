/**
 * How outgoing connections leave. A module of its own: the rules, the
 * config, the egress checks and the plan all name it, and none of them
 * should depend on another for it.
 */

/** How outgoing connections leave: all optional, combinable. */
export interface Egress {
  /** SO_MARK, for `ip rule fwmark` routing */
  readonly mark?: number;
  /** SO_BINDTODEVICE */
  readonly interface?: string;
  /** local source addresses, one per family at most */
  readonly source4?: string;
  readonly source6?: string;
}
