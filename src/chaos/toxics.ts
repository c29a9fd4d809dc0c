/**
 * Data faults on the proxy path, per connection and direction, in the
 * spirit of Toxiproxy's toxics: each is a Transform placed between the two
 * sockets of a relayed connection (upstream: program -> destination;
 * downstream: destination -> program). Order and content of the bytes are
 * kept by every toxic except those whose point is to cut the connection.
 */
import { Transform, type TransformCallback } from 'node:stream';
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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs chunks through `step` one at a time, in order; the callback waits: backpressure. */
abstract class OrderedTransform extends Transform {
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.step(chunk).then(() => done(), done);
  }
  protected abstract step(chunk: Buffer): Promise<void>;
}

/**
 * Holds each chunk latency ± jitter, never releasing one before the chunk
 * ahead of it: one queue in arrival order and one timer for its head, so
 * jitter cannot reorder bytes.
 */
class Latency extends Transform {
  private readonly queue: { at: number; chunk: Buffer }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private held = 0;
  private waiting: (() => void) | undefined;
  private flushed?: () => void;
  constructor(
    private readonly spec: Extract<ToxicSpec, { type: 'latency' }>,
    private readonly random: Random,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const jitter = this.spec.jitterMs ? (this.random() * 2 - 1) * this.spec.jitterMs : 0;
    const last = this.queue[this.queue.length - 1]?.at ?? 0;
    this.queue.push({ at: Math.max(Date.now() + Math.max(0, this.spec.latencyMs + jitter), last), chunk });
    this.held += chunk.length;
    this.arm();
    // many chunks may be in flight, but not without bound
    if (this.held < 1 << 20) done();
    else this.waiting = () => done();
  }
  private arm(): void {
    if (this.timer || !this.queue.length) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const now = Date.now();
        while (this.queue.length && this.queue[0]!.at <= now) {
          const { chunk } = this.queue.shift()!;
          this.held -= chunk.length;
          this.push(chunk);
        }
        if (this.held < 1 << 20 && this.waiting) {
          const w = this.waiting;
          this.waiting = undefined;
          w();
        }
        if (!this.queue.length) this.flushed?.();
        this.arm();
      },
      Math.max(0, this.queue[0]!.at - Date.now()),
    );
  }
  override _flush(done: TransformCallback): void {
    if (!this.queue.length) return done();
    this.flushed = () => done();
  }
}

class Bandwidth extends OrderedTransform {
  private nextAt = 0;
  constructor(private readonly bytesPerSecond: number) {
    super();
  }
  protected async step(chunk: Buffer): Promise<void> {
    // pieces of at most 1/20 s worth, each released when the rate allows
    const piece = Math.max(1, Math.floor(this.bytesPerSecond / 20));
    for (let off = 0; off < chunk.length; off += piece) {
      const part = chunk.subarray(off, off + piece);
      this.nextAt = Math.max(this.nextAt, Date.now()) + (part.length / this.bytesPerSecond) * 1000;
      const wait = this.nextAt - Date.now();
      if (wait > 0) await sleep(wait);
      this.push(part);
    }
  }
}

class Slicer extends OrderedTransform {
  constructor(
    private readonly spec: Extract<ToxicSpec, { type: 'slicer' }>,
    private readonly random: Random,
  ) {
    super();
  }
  protected async step(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const size = Math.max(1, Math.round(this.spec.averageSize + (this.random() * 2 - 1) * this.spec.sizeVariation));
      this.push(chunk.subarray(off, off + size));
      off += size;
      if (off < chunk.length && this.spec.delayMs) await sleep(this.spec.delayMs);
    }
  }
}

class SlowClose extends Transform {
  constructor(private readonly delayMs: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    setTimeout(() => done(), this.delayMs);
  }
}

class LimitData extends Transform {
  private passed = 0;
  constructor(
    private readonly bytes: number,
    private readonly control: ConnectionControl,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    const room = this.bytes - this.passed;
    if (room <= 0) return done();
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.passed += part.length;
    this.push(part);
    if (this.passed >= this.bytes) this.control.close();
    done();
  }
}

/**
 * Drops everything, an end of stream included (the stall hides a FIN too),
 * and closes the connection after timeMs; 0: stalls for as long as the
 * connection lives.
 */
class Timeout extends Transform {
  private expired = false;
  private pendingFlush: TransformCallback | undefined;
  constructor(timeMs: number, control: ConnectionControl) {
    super();
    if (timeMs > 0) {
      setTimeout(() => {
        this.expired = true;
        this.pendingFlush?.();
        control.close();
      }, timeMs).unref();
    }
  }
  override _transform(_chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    done();
  }
  override _flush(done: TransformCallback): void {
    if (this.expired) done();
    else this.pendingFlush = done; // the stall hides the FIN until it expires
  }
}

/** One stage of a direction's pipeline; reset_peer needs none (a timer). */
export function toxicStage(spec: ToxicSpec, random: Random, control: ConnectionControl): Transform | undefined {
  switch (spec.type) {
    case 'latency':
      return new Latency(spec, random);
    case 'bandwidth':
      return new Bandwidth(spec.bytesPerSecond);
    case 'slicer':
      return new Slicer(spec, random);
    case 'slow_close':
      return new SlowClose(spec.delayMs);
    case 'limit_data':
      return new LimitData(spec.bytes, control);
    case 'timeout':
      return new Timeout(spec.timeMs, control);
    case 'reset_peer':
      setTimeout(() => control.reset(), spec.timeMs).unref();
      return undefined;
  }
}

export function describeToxic(t: Toxic): string {
  return t.text;
}
