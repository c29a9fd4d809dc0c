/**
 * What graft records per connection: one record when a proxied connection
 * ends, when a connect goes on in place, or when graft fails a connect.
 * Every connect the tracer redirected to the proxy gets exactly one record,
 * also when the program exits first (see AtExit).
 * They go to the log (pino) and to whoever collects them (the programmatic
 * API, tests).
 */
import type { Logger } from 'pino';
import type { Losses } from './summary.js';

/**
 * Set on the record of a connect graft could not serve for lack of its own
 * resources (the program's connect failed, as a refused one does); such
 * records are logged at error level and counted for the exit summary.
 */
export type Lost = 'descriptors';

interface ConnectionBase {
  readonly pid: number;
  readonly tid: number;
  readonly exe: string;
  /** "ip:port" or "[ip6]:port" */
  readonly dst: string;
  /** the host name graft answered the program's DNS with this address for (a fake address's name, or a real answer's) */
  readonly name?: string;
  /** "mark 0x10, dev wg0, src 192.0.2.1" when egress options apply */
  readonly egress?: string;
  /** the rule that decided, as written (absent for graft's default) */
  readonly rule?: string;
}

/**
 * Where a proxied connection stood when the program's whole tree had
 * exited, for one that had not ended by then (the field is absent
 * otherwise):
 * - 'open': relayed and still open; graft passed on what the program had
 *   sent, then closed both sides without waiting for the destination;
 * - 'pending': the program's connect was still waiting for the destination
 *   (or its upstream proxy, or a handshake delay fault); the dial was
 *   dropped.
 */
export type AtExit = 'open' | 'pending';

export interface ProxiedConnection extends ConnectionBase {
  readonly event: 'connection';
  readonly action: 'proxy';
  /** the upstream proxy chain the connection went through, passwords masked */
  readonly upstream?: string;
  /** the faults (toxics) applied to this connection */
  readonly faults?: readonly string[];
  /** the control API's proxy (scope) it was in, if any */
  readonly proxy?: string;
  /** the program's end of its connection to the proxy */
  readonly local: string;
  /** program -> destination */
  readonly bytesUp: number;
  /** destination -> program */
  readonly bytesDown: number;
  readonly durationMs: number;
  readonly error?: string;
  /** present when the program exited before this connection ended */
  readonly atExit?: AtExit;
  /** present when graft could not serve it (its connect failed) */
  readonly lost?: Lost;
}

export interface InplaceConnection extends ConnectionBase {
  readonly event: 'connection';
  readonly action: 'inplace';
}

/** A connect a fault delayed (it then went on as the rules say). */
export interface DelayedConnect extends ConnectionBase {
  readonly event: 'delayed';
  readonly faults: readonly string[];
}

export interface RefusedConnect extends ConnectionBase {
  readonly event: 'refused';
  /** the connect fault that refused it, if one did */
  readonly faults?: readonly string[];
  /** the errno the program's call failed with, e.g. "ENETUNREACH" */
  readonly errno: string;
  readonly reason: string;
  /** present when graft could not serve it (the tracer was out of file descriptors) */
  readonly lost?: Lost;
}

/**
 * A datagram socket connected to a destination only a proxy may reach: the
 * connect went through (so the program learns its source address, as
 * getaddrinfo's address ordering does), and what it sends stays on this
 * machine (a proxy carries TCP only).
 */
export interface KeptLocalDatagrams extends ConnectionBase {
  readonly event: 'kept-local';
  readonly reason: string;
}

/**
 * A connection the listener of a control API proxy accepted (Toxiproxy's
 * own kind of connection: a client of that address, not the program).
 */
export interface ListenedConnection {
  readonly event: 'connection';
  readonly action: 'listener';
  /** the control API's proxy whose listener accepted it */
  readonly proxy: string;
  /** the client's end, "ip:port" */
  readonly client: string;
  /** the proxy's upstream, as given */
  readonly dst: string;
  readonly faults?: readonly string[];
  readonly bytesUp: number;
  readonly bytesDown: number;
  readonly durationMs: number;
  readonly error?: string;
}

export type ConnectionRecord = ProxiedConnection | InplaceConnection | RefusedConnect | DelayedConnect | KeptLocalDatagrams | ListenedConnection;

/**
 * A relayed connection has opened (the program's connect succeeded, or a
 * listener's client was connected to the upstream). Only the control API's
 * record stream carries it; its record comes when it ends.
 */
export type OpenedConnection =
  | (Pick<ProxiedConnection, 'pid' | 'exe' | 'dst' | 'name' | 'proxy' | 'local'> & { readonly event: 'open'; readonly action: 'proxy' })
  | (Pick<ListenedConnection, 'proxy' | 'client' | 'dst'> & { readonly event: 'open'; readonly action: 'listener' });

/** What the record stream carries: every record, and each opening. */
export type StreamRecord = ConnectionRecord | OpenedConnection;

export class ConnectionLog {
  private readonly listeners: ((r: ConnectionRecord) => void)[] = [];

  constructor(
    private readonly logger: Logger,
    private readonly losses?: Losses,
  ) {}

  private readonly followers = new Set<(r: StreamRecord) => void>();

  onRecord(listener: (r: ConnectionRecord) => void): void {
    this.listeners.push(listener);
  }

  /** Every record and opening from now on (the control API's stream); returns the unsubscribe. */
  follow(follower: (r: StreamRecord) => void): () => void {
    this.followers.add(follower);
    return () => this.followers.delete(follower);
  }

  /** A relayed connection opened: for the followers only (the log has its record when it ends). */
  opened(r: OpenedConnection): void {
    for (const f of this.followers) f(r);
  }

  record(r: ConnectionRecord): void {
    if ((r.event === 'refused' || r.event === 'connection') && 'lost' in r && r.lost !== undefined) {
      this.losses?.connectionLost();
      this.logger.error(r, 'connection lost: graft could not serve it');
    } else if (r.event === 'refused') this.logger.warn(r, 'connect failed by graft');
    else if (r.event === 'delayed') this.logger.info(r, 'connect delayed by a fault');
    else if (r.event === 'kept-local') this.logger.info(r, 'datagrams kept on this machine');
    else if (r.action !== 'inplace' && r.error !== undefined) this.logger.warn(r, 'connection failed');
    else this.logger.info(r, 'connection');
    for (const l of this.listeners) l(r);
    for (const f of this.followers) f(r);
  }
}
