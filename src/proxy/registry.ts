/**
 * Connections the tracer announced and the proxy has not accepted yet, keyed
 * by the program-side address the proxy will see on accept. The proxy may
 * accept before the record arrives: it then waits, bounded. It never guesses:
 * a peer nobody registered gets nothing.
 */
import { formatEndpoint } from '../address.js';

/** What the registry needs of an entry: the peer it is expected from. */
export interface Expected {
  readonly peerIp: string;
  readonly peerPort: number;
}

/** An entry never claimed is handed to `dispose` (the proxy closes its
 * pre-dialed connection and records it as never accepted) after this
 * long, so a stale one cannot be picked up by a later, unrelated local
 * connection, and a connection the program never made (it died, or the
 * proxy could not accept it) does not hold sockets for long. The
 * program's connect follows its record within microseconds; only a proxy
 * far behind on accepting (a burst of many thousands) comes near this. */
const STALE_MS = 10_000;
const SWEEP_MS = 1_000;

interface Waiter<T> {
  readonly resolve: (r: T | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

export class Registry<T extends Expected> {
  private readonly byPeer = new Map<string, { entry: T; at: number }>();
  private readonly waiters = new Map<string, Waiter<T>>();
  private readonly sweeper: NodeJS.Timeout;

  /**
   * `dispose` releases an entry nobody claimed (stale, replaced, or left at
   * close); each entry ends either claimed or disposed, exactly once.
   */
  constructor(private readonly dispose: (entry: T) => void) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Set while the channel may hold unread records (a full read). */
  private channelBacklog = false;

  /** The channel reader reports each chunk it read. */
  noteChannelRead(bytes: number, readLimit: number): void {
    this.channelBacklog = bytes >= readLimit;
  }

  get pending(): number {
    return this.byPeer.size;
  }

  register(entry: T): void {
    const key = formatEndpoint(entry.peerIp, entry.peerPort);
    const waiter = this.waiters.get(key);
    if (waiter) return this.hand(key, entry);
    const old = this.byPeer.get(key);
    if (old) this.dispose(old.entry); // the port was reused: that one never came
    this.byPeer.set(key, { entry, at: Date.now() });
  }

  /** Resolves with the entry for this peer, or undefined when nobody registered it. */
  claim(peerIp: string, peerPort: number, waitMs: number): Promise<T | undefined> {
    const key = formatEndpoint(peerIp, peerPort);
    const hit = this.byPeer.get(key);
    if (hit) {
      this.byPeer.delete(key);
      return Promise.resolve(hit.entry);
    }
    return new Promise((resolve) => {
      const giveUp = (): void => {
        const w = this.waiters.get(key);
        if (w?.resolve !== resolve) return;
        clearTimeout(w.timer);
        this.waiters.delete(key);
        resolve(undefined);
      };
      const timer = setTimeout(giveUp, waitMs);
      this.waiters.get(key)?.resolve(undefined);
      this.waiters.set(key, { resolve, timer });
      // The tracer writes a record before the program's connect goes on, so
      // by the time the proxy accepts, the record is already in the channel
      // and is read in the same event-loop turn. Still missing after that
      // turn means nobody registered this peer: reset it at once, unless
      // the channel had more queued than one turn reads.
      setImmediate(() => {
        if (!this.channelBacklog) giveUp();
      });
    });
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const w of this.waiters.values()) {
      clearTimeout(w.timer);
      w.resolve(undefined);
    }
    this.waiters.clear();
    for (const { entry } of this.byPeer.values()) this.dispose(entry);
    this.byPeer.clear();
  }

  private hand(key: string, entry: T): void {
    const w = this.waiters.get(key)!;
    this.waiters.delete(key);
    clearTimeout(w.timer);
    w.resolve(entry);
  }

  private sweep(): void {
    const limit = Date.now() - STALE_MS;
    for (const [k, v] of this.byPeer) {
      if (v.at >= limit) continue;
      this.byPeer.delete(k);
      this.dispose(v.entry);
    }
  }
}
