/**
 * Moves bytes both ways between the program's connection and the upstream
 * one. pipe() gives backpressure; allowHalfOpen on both sockets lets one
 * side's FIN through while the other direction goes on. A reset on one side
 * is passed on as a reset on the other, not turned into a clean close.
 */
import type net from 'node:net';
import type { Transform } from 'node:stream';

export interface RelayResult {
  /** program -> destination */
  readonly bytesUp: number;
  /** destination -> program */
  readonly bytesDown: number;
  readonly error?: string;
}

/** Fault stages in each direction (see chaos/), built with the relay's control. */
export interface RelayFaults {
  readonly up: readonly Transform[];
  readonly down: readonly Transform[];
}

/** What a fault may do to the whole connection. */
export interface RelayControl {
  close(): void;
  reset(): void;
}

/** Pipes `from` through each stage in turn into `to`. */
function pipeThrough(from: NodeJS.ReadableStream, through: readonly Transform[], to: net.Socket): void {
  let src = from;
  for (const t of through) src = src.pipe(t);
  src.pipe(to);
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
}

/**
 * `early`: bytes the upstream received before the relay began, delivered
 * first. `faults`: called with the relay's control, returns the stages.
 */
export function relay(program: net.Socket, upstream: net.Socket, early: readonly Buffer[] = [], faults?: (control: RelayControl) => RelayFaults): Relaying {
  // what went up before the relay: an upstream proxy's handshake, which is
  // not the program's
  const handshakeBytes = upstream.bytesWritten;
  let windDown: (limitMs: number) => void = () => {};
  const done = new Promise<RelayResult>((resolve) => {
    let firstError: string | undefined;
    let closed = 0;
    const onError = (side: 'program' | 'upstream', other: net.Socket) => (err: NodeJS.ErrnoException) => {
      firstError ??= `${side}: ${err.code ?? err.message}`;
      if (!other.destroyed) other.resetAndDestroy();
    };
    let cutTimer: NodeJS.Timeout | undefined;
    const onClose = (): void => {
      if (++closed < 2) return;
      clearTimeout(cutTimer);
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
    // When both directions have ended, the sockets close themselves (Node
    // destroys a half-open socket once its writable side has finished too).
    const control: RelayControl = {
      // end both directions once what is queued has gone through
      close() {
        for (const [src, first] of [
          [program, up[0] ?? upstream],
          [upstream, down[0] ?? program],
        ] as const) {
          src.unpipe();
          src.pause();
          first.end();
        }
      },
      reset() {
        firstError ??= 'reset by a fault';
        if (!program.destroyed) program.resetAndDestroy();
        if (!upstream.destroyed) upstream.resetAndDestroy();
      },
    };
    const stages = faults?.(control);
    const up = stages?.up ?? [];
    const down = stages?.down ?? [];
    for (const chunk of early) (down[0] ?? program).write(chunk);
    pipeThrough(program, up, upstream);
    pipeThrough(upstream, down, program);
    windDown = (limitMs) => {
      windDown = () => {}; // once
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
        firstError ??= 'cut at exit with bytes still queued for the destination';
        program.destroy();
        upstream.destroy();
      }, limitMs);
      check();
    };
  });
  return { done, windDown: (limitMs) => windDown(limitMs) };
}
