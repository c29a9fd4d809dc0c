/**
 * Moves bytes both ways between the program's connection and the upstream
 * one, through each direction's toxics (chaos/live.ts), which may change
 * while the connection is open. allowHalfOpen on both sockets lets one
 * side's FIN through while the other direction goes on. A reset on one side
 * is passed on as a reset on the other, not turned into a clean close.
 */
import type net from 'node:net';
import { ToxicChain, type LiveToxic } from '../chaos/live.js';
import type { Random } from '../chaos/random.js';
import type { ConnectionControl } from '../chaos/toxics.js';
import { CUT_AT_EXIT, sideFailed } from './connection-record.js';

export interface RelayResult {
  /** program -> destination */
  readonly bytesUp: number;
  /** destination -> program */
  readonly bytesDown: number;
  readonly error?: string;
}

/** The toxics of each direction, in chain order (index 0 nearest the source). */
export interface RelayToxics {
  /** program -> destination */
  readonly up: readonly LiveToxic[];
  readonly down: readonly LiveToxic[];
}

/** A direction's source stops reading while its stages hold more than this. */
const HELD_LIMIT = 1 << 20;
/** Nor more pieces than this (a slicer of 1-byte slices holds a piece, about 100 bytes of heap, per byte). */
const PIECE_LIMIT = 1 << 14;

/**
 * One direction: reads `src` into its toxic chain, whose end writes to
 * `dst`. With no toxics a chunk goes straight from the 'data' event into
 * dst.write(), as pipe() does, so the plain path costs nothing more.
 */
class Lane {
  readonly chain: ToxicChain;
  /** false once the connection was closed by a fault: later input is dropped */
  private accepting = true;
  private inputEnded = false;
  /** not before start(): resuming a source nobody listens to yet would lose its bytes */
  private started = false;
  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    random: Random,
    control: ConnectionControl,
  ) {
    // a socket already ended or destroyed takes nothing more (a write would raise an error of ours)
    const open = (): boolean => !dst.writableEnded && !dst.destroyed;
    const sink = {
      write: (chunk: Buffer) => void (open() && dst.write(chunk)),
      end: () => void (open() && dst.end()),
    };
    this.chain = new ToxicChain(sink, { random, control, released: () => this.update() });
  }
  /** Starts reading; call once the chain holds its first toxics and any early bytes. */
  start(): void {
    this.started = true;
    this.src.on('data', (chunk: Buffer) => {
      if (!this.accepting) return;
      this.chain.head.write(chunk);
      this.update();
    });
    // a source that ended before the relay began (a server that greets and
    // closes at once, its bytes held as early data) has no 'end' to come
    if (this.src.readableEnded) this.endInput();
    else this.src.once('end', () => this.endInput());
    this.dst.on('drain', () => this.update());
    this.update();
  }
  /** Ends the direction once what its stages hold has gone; what the source sends later is dropped. */
  close(): void {
    this.accepting = false;
    this.endInput();
    this.update(); // keeps reading (to nowhere) so the source's own end and close are seen
  }
  /** Backpressure: the source waits while the stages hold too much or the destination needs a drain. */
  update(): void {
    if (!this.started) return;
    const full = this.accepting && (this.dst.writableNeedDrain || this.chain.held > HELD_LIMIT || this.chain.pieces > PIECE_LIMIT);
    if (full) {
      if (!this.src.isPaused()) this.src.pause();
    } else if (this.src.isPaused()) this.src.resume();
  }
  private endInput(): void {
    if (this.inputEnded) return;
    this.inputEnded = true;
    this.chain.head.end();
  }
}

/** A relay under way. */
export interface Relaying {
  readonly done: Promise<RelayResult>;
  /**
   * The program has exited: nothing more can reach it. Once its side has
   * ended (the kernel closed it with the program) and what it sent has been
   * handed to the upstream socket, both sockets are closed, without waiting
   * for the destination's answer; the kernel still delivers the queued bytes
   * and the FIN. After `limitMs` they are cut whatever is left.
   */
  windDown(limitMs: number): void;
  /** Reconciles both directions to these lists, in order (index 0 is nearest the source). Synchronous. */
  setToxics(toxics: RelayToxics): void;
  /** Closes both sockets now (socket.destroy(): a FIN, or an RST where unread data remains, as close(2) does); the result's error is `reason` unless an error came first. */
  cut(reason: string): void;
}

/**
 * `early`: bytes the upstream received before the relay began, delivered
 * first. `toxics`: each direction's at the start. `random`: for the
 * toxics' jitter and slice sizes.
 */
export function relay(program: net.Socket, upstream: net.Socket, early: readonly Buffer[], toxics: RelayToxics | undefined, random: Random): Relaying {
  // what went up before the relay: an upstream proxy's handshake, which is
  // not the program's
  const handshakeBytes = upstream.bytesWritten;
  let firstError: string | undefined;
  let finished = false;
  let cutTimer: NodeJS.Timeout | undefined;
  const control: ConnectionControl = {
    // later, not inside the stage that asks: a stage is never re-entered
    close: () => queueMicrotask(() => [up, down].forEach((l) => l.close())),
    reset() {
      firstError ??= 'reset by a fault';
      if (!program.destroyed) program.resetAndDestroy();
      if (!upstream.destroyed) upstream.resetAndDestroy();
    },
  };
  const up = new Lane(program, upstream, random, control);
  const down = new Lane(upstream, program, random, control);
  const setToxics = (t: RelayToxics): void => {
    if (finished) return;
    up.chain.set(t.up);
    down.chain.set(t.down);
  };
  const cut = (reason: string): void => {
    firstError ??= reason;
    program.destroy();
    upstream.destroy();
  };

  const done = new Promise<RelayResult>((resolve) => {
    let closed = 0;
    const onError = (side: 'program' | 'upstream', other: net.Socket) => (err: NodeJS.ErrnoException) => {
      firstError ??= sideFailed(side, err.code ?? err.message);
      if (!other.destroyed) other.resetAndDestroy();
    };
    const onClose = (): void => {
      if (++closed < 2) return;
      finished = true;
      clearTimeout(cutTimer);
      up.chain.dispose(); // their timers
      down.chain.dispose();
      resolve({
        bytesUp: upstream.bytesWritten - handshakeBytes,
        bytesDown: program.bytesWritten,
        ...(firstError !== undefined ? { error: firstError } : {}),
      });
    };
    program.on('error', onError('program', upstream));
    upstream.on('error', onError('upstream', program));
    program.once('close', onClose);
    upstream.once('close', onClose);
  });

  if (toxics) setToxics(toxics);
  for (const chunk of early) down.chain.head.write(chunk);
  // When both directions have ended, the sockets close themselves (Node
  // destroys a half-open socket once its writable side has finished too).
  up.start();
  down.start();

  let windingDown = false;
  const windDown = (limitMs: number): void => {
    if (windingDown) return;
    windingDown = true;
    const programDone = (): boolean => program.destroyed || program.readableEnded;
    const upstreamDone = (): boolean => upstream.destroyed || upstream.writableFinished;
    const check = (): void => {
      if (!programDone() || !upstreamDone()) return;
      program.destroy();
      upstream.destroy();
    };
    for (const ev of ['end', 'close']) program.once(ev, check);
    for (const ev of ['finish', 'close']) upstream.once(ev, check);
    cutTimer = setTimeout(() => {
      firstError ??= CUT_AT_EXIT;
      program.destroy();
      upstream.destroy();
    }, limitMs);
    check();
  };
  return { done, windDown, setToxics, cut };
}
