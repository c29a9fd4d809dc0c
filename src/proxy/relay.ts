/**
 * Moves bytes both ways between the program's connection and the upstream
 * one. pipe() gives backpressure; allowHalfOpen on both sockets lets one
 * side's FIN through while the other direction goes on. A reset on one side
 * is passed on as a reset on the other, not turned into a clean close.
 */
import type net from 'node:net';

export interface RelayResult {
  /** program -> destination */
  readonly bytesUp: number;
  /** destination -> program */
  readonly bytesDown: number;
  readonly error?: string;
}

/** `early`: bytes the upstream received before the relay began, delivered first. */
export function relay(program: net.Socket, upstream: net.Socket, early: readonly Buffer[] = []): Promise<RelayResult> {
  return new Promise((resolve) => {
    let firstError: string | undefined;
    let closed = 0;
    const onError = (side: 'program' | 'upstream', other: net.Socket) => (err: NodeJS.ErrnoException) => {
      firstError ??= `${side}: ${err.code ?? err.message}`;
      if (!other.destroyed) other.resetAndDestroy();
    };
    const onClose = (): void => {
      if (++closed < 2) return;
      resolve({
        bytesUp: upstream.bytesWritten,
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
    for (const chunk of early) program.write(chunk);
    program.pipe(upstream);
    upstream.pipe(program);
  });
}
