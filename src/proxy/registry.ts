/**
 * Connections the tracer announced and the proxy has not accepted yet, keyed
 * by the program-side address the proxy will see on accept. The proxy may
 * accept before the record arrives: it then waits, bounded. It never guesses:
 * a peer nobody registered gets nothing.
 */
import type { RedirectRecord } from '../channel.js';
import { formatEndpoint } from '../address.js';

/** A record that was never claimed is dropped after this long, so a stale
 * one cannot be picked up by a later, unrelated local connection. */
const STALE_MS = 30_000;

interface Waiter {
  readonly resolve: (r: RedirectRecord | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

export class Registry {
  private readonly byPeer = new Map<string, { record: RedirectRecord; at: number }>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly sweeper: NodeJS.Timeout;

  constructor() {
    this.sweeper = setInterval(() => this.sweep(), STALE_MS / 2);
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

  register(record: RedirectRecord): void {
    const key = formatEndpoint(record.peerIp, record.peerPort);
    const waiter = this.waiters.get(key);
    if (waiter) return this.hand(key, record);
    this.byPeer.set(key, { record, at: Date.now() });
  }

  /** Resolves with the record for this peer, or undefined after `waitMs`. */
  claim(peerIp: string, peerPort: number, waitMs: number): Promise<RedirectRecord | undefined> {
    const key = formatEndpoint(peerIp, peerPort);
    const hit = this.byPeer.get(key);
    if (hit) {
      this.byPeer.delete(key);
      return Promise.resolve(hit.record);
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
  }

  private hand(key: string, record: RedirectRecord): void {
    const w = this.waiters.get(key)!;
    this.waiters.delete(key);
    clearTimeout(w.timer);
    w.resolve(record);
  }

  private sweep(): void {
    const limit = Date.now() - STALE_MS;
    for (const [k, v] of this.byPeer) if (v.at < limit) this.byPeer.delete(k);
  }
}
