/**
 * Data faults on the proxy path, per connection and direction, in the
 * spirit of Toxiproxy's toxics: each is a Stage placed between the two
 * sockets of a relayed connection (upstream: program -> destination;
 * downstream: destination -> program), chained and changed by live.ts.
 * Order and content of the bytes are kept by every toxic except those whose
 * point is to cut the connection.
 */
import type { Random } from './random.js';

export type Direction = 'upstream' | 'downstream' | 'both';

export type ToxicSpec =
  | { readonly type: 'latency'; readonly latencyMs: number; readonly jitterMs: number }
  | { readonly type: 'bandwidth'; readonly bytesPerSecond: number }
  | { readonly type: 'slow_close'; readonly delayMs: number }
  | { readonly type: 'timeout'; readonly timeMs: number }
  | { readonly type: 'reset_peer'; readonly timeMs: number }
  | { readonly type: 'slicer'; readonly averageSize: number; readonly sizeVariation: number; readonly delayMs: number }
  | { readonly type: 'limit_data'; readonly bytes: number };

export interface Toxic {
  readonly spec: ToxicSpec;
  readonly direction: Direction;
  /** probability per connection, 0 to 1 */
  readonly toxicity: number;
  /** as written, for logs */
  readonly text: string;
}

/** What a toxic may do to the whole connection (both sockets). */
export interface ConnectionControl {
  /** ends both directions gracefully (FIN) once what is queued has gone */
  close(): void;
  /** resets both sockets (the program sees ECONNRESET) */
  reset(): void;
}

/** What every stage is given: the connection's randomness and control, and a way to say it let bytes go. */
export interface StageContext {
  readonly random: Random;
  readonly control: ConnectionControl;
  /** called after a stage released bytes on its own (a timer): the source may read again */
  readonly released: () => void;
}

/** Where a stage sends its bytes: the next stage, or the destination socket. */
export interface Sink {
  write(chunk: Buffer): void;
  /** the end of stream (FIN); at most once */
  end(): void;
}

/** What a stage held when it left the chain: its bytes in order, and whether the end came after them. */
export interface Holding {
  readonly chunks: readonly Buffer[];
  readonly ended: boolean;
}

/**
 * One toxic in one direction, push-based so that it can be added to or taken
 * out of a live chain without reordering anything (a Transform cannot be
 * spliced out of a pipeline: what it buffered internally would be lost or
 * overtaken). Its owner sets `next` and may change it at any time.
 */
export abstract class Stage implements Sink {
  next!: Sink;
  /** bytes held, for the source's backpressure */
  held = 0;
  /** pieces held (a slice of one byte costs far more than a byte): backpressure counts them too */
  pieces = 0;
  abstract write(chunk: Buffer): void;
  abstract end(): void;
  /** Leaves the chain: cancels its timers and gives up what it holds, for its successor or its replacement. */
  abstract leave(): Holding;
  /** It left for good (removed, not replaced): what the toxic does to the connection then, if anything. */
  removed(): void {}
}

/** A stage that holds nothing and only watches (limit_data, reset_peer) or delays the end (slow_close). */
abstract class PassStage extends Stage {
  protected endHeld = false;
  protected timer: NodeJS.Timeout | undefined;
  write(chunk: Buffer): void {
    this.next.write(chunk);
  }
  end(): void {
    this.next.end();
  }
  leave(): Holding {
    clearTimeout(this.timer);
    return { chunks: [], ended: this.endHeld };
  }
}

interface Piece {
  readonly chunk: Buffer;
  /** Date.now() at which it may go on */
  readonly at: number;
}

/**
 * A stage that holds pieces until their time (latency, bandwidth, slicer):
 * one queue in arrival order and one timer for its head, so a piece never
 * overtakes the one ahead of it. Subclasses only say when each piece is due.
 */
abstract class TimedStage extends Stage {
  private queue: Piece[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private endSent = false;
  /** due time of the last piece queued: nothing may be due before it */
  protected lastAt = 0;
  constructor(protected readonly ctx: StageContext) {
    super();
  }
  /** The pieces this chunk becomes, each with its due time (never before `lastAt`). */
  protected abstract schedule(chunk: Buffer, now: number): Piece[];
  write(chunk: Buffer): void {
    for (const p of this.schedule(chunk, Date.now())) {
      this.queue.push(p);
      this.held += p.chunk.length;
      this.lastAt = p.at;
    }
    this.pieces = this.queue.length - this.head;
    this.flush();
  }
  end(): void {
    this.ended = true;
    this.flush();
  }
  leave(): Holding {
    clearTimeout(this.timer);
    this.timer = undefined;
    const chunks = this.queue.slice(this.head).map((p) => p.chunk);
    this.queue = [];
    this.head = 0;
    this.held = 0;
    this.pieces = 0;
    return { chunks, ended: this.ended && !this.endSent };
  }
  /** Sends on what is due now, in order, then the end if it is next; arms the timer for the rest. */
  private flush(): void {
    const now = Date.now();
    while (this.head < this.queue.length && this.queue[this.head]!.at <= now) {
      const { chunk } = this.queue[this.head++]!;
      this.held -= chunk.length;
      this.pieces--;
      this.next.write(chunk);
    }
    // drop what has gone from the front now and then, not on every piece (shift is O(n))
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.head < this.queue.length) {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.flush();
        this.ctx.released();
      }, this.queue[this.head]!.at - now);
    } else if (this.ended && !this.endSent) {
      this.endSent = true;
      this.next.end();
    }
  }
}

/** Each chunk latency ± jitter after it arrived; jitter cannot reorder (see TimedStage). */
class Latency extends TimedStage {
  constructor(
    private readonly spec: Extract<ToxicSpec, { type: 'latency' }>,
    ctx: StageContext,
  ) {
    super(ctx);
  }
  protected schedule(chunk: Buffer, now: number): Piece[] {
    const jitter = this.spec.jitterMs ? (this.ctx.random() * 2 - 1) * this.spec.jitterMs : 0;
    return [{ chunk, at: Math.max(now + Math.max(0, this.spec.latencyMs + jitter), this.lastAt) }];
  }
}

/** Pieces of at most 1/20 s worth, each going on when the rate allows (at the end of its time slot). */
class Bandwidth extends TimedStage {
  constructor(
    private readonly bytesPerSecond: number,
    ctx: StageContext,
  ) {
    super(ctx);
  }
  protected schedule(chunk: Buffer, now: number): Piece[] {
    const size = Math.max(1, Math.floor(this.bytesPerSecond / 20));
    const pieces: Piece[] = [];
    let at = Math.max(this.lastAt, now);
    for (let off = 0; off < chunk.length; off += size) {
      const part = chunk.subarray(off, off + size);
      at += (part.length / this.bytesPerSecond) * 1000;
      pieces.push({ chunk: part, at });
    }
    return pieces;
  }
}

/** Slices of average ± variation bytes, `delay` apart within a chunk. */
class Slicer extends TimedStage {
  constructor(
    private readonly spec: Extract<ToxicSpec, { type: 'slicer' }>,
    ctx: StageContext,
  ) {
    super(ctx);
  }
  protected schedule(chunk: Buffer, now: number): Piece[] {
    const pieces: Piece[] = [];
    let at = Math.max(this.lastAt, now);
    for (let off = 0; off < chunk.length;) {
      const size = Math.max(1, Math.round(this.spec.averageSize + (this.ctx.random() * 2 - 1) * this.spec.sizeVariation));
      if (pieces.length) at += this.spec.delayMs;
      pieces.push({ chunk: chunk.subarray(off, off + size), at });
      off += size;
    }
    return pieces;
  }
}

/** The data at once, the end of stream `delayMs` late. */
class SlowClose extends PassStage {
  constructor(private readonly delayMs: number) {
    super();
  }
  override end(): void {
    if (this.endHeld) return;
    this.endHeld = true;
    this.timer = setTimeout(() => {
      this.endHeld = false;
      this.next.end();
    }, this.delayMs);
  }
}

/** Lets `bytes` through from when it was added, then closes the connection (the relay's close). */
class LimitData extends PassStage {
  private passed = 0;
  constructor(
    private readonly bytes: number,
    private readonly control: ConnectionControl,
  ) {
    super();
  }
  override write(chunk: Buffer): void {
    const room = this.bytes - this.passed;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.passed += part.length;
    this.next.write(part);
    if (this.passed >= this.bytes) this.control.close();
  }
}

/** Resets both sockets `timeMs` after it was added. */
class ResetPeer extends PassStage {
  constructor(timeMs: number, control: ConnectionControl) {
    super();
    this.timer = setTimeout(() => control.reset(), timeMs).unref();
  }
}

/**
 * Drops everything, an end of stream included (the stall hides a FIN too),
 * and closes the connection `timeMs` after it was added; 0: stalls for as
 * long as it is there. Removed, it closes the connection too, as
 * Toxiproxy's does: the bytes it dropped would otherwise leave a hole in a
 * stream that goes on, which no network makes.
 */
class Timeout extends PassStage {
  private expired = false;
  constructor(
    timeMs: number,
    private readonly control: ConnectionControl,
  ) {
    super();
    if (timeMs > 0) {
      this.timer = setTimeout(() => {
        this.expired = true;
        if (this.endHeld) this.next.end();
        this.endHeld = false;
        control.close();
      }, timeMs).unref();
    }
  }
  override write(): void {}
  override end(): void {
    if (this.expired) this.next.end();
    else this.endHeld = true;
  }
  override removed(): void {
    this.control.close();
  }
}

/** The stage for one toxic, starting now (its timers count from this call). */
export function toxicStage(spec: ToxicSpec, ctx: StageContext): Stage {
  switch (spec.type) {
    case 'latency':
      return new Latency(spec, ctx);
    case 'bandwidth':
      return new Bandwidth(spec.bytesPerSecond, ctx);
    case 'slicer':
      return new Slicer(spec, ctx);
    case 'slow_close':
      return new SlowClose(spec.delayMs);
    case 'limit_data':
      return new LimitData(spec.bytes, ctx.control);
    case 'timeout':
      return new Timeout(spec.timeMs, ctx.control);
    case 'reset_peer':
      return new ResetPeer(spec.timeMs, ctx.control);
  }
}
