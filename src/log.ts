/**
 * Structured logging with pino. The program under graft owns the terminal,
 * so graft is quiet there by default: errors only, one human line per
 * connection with -v, nothing with -q. The ndjson file gets every record.
 */
import { mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger, type StreamEntry, type DestinationStream } from 'pino';
import type { LogPlan, LogLevel } from './plan.js';
import { humanLine } from './log-format.js';
import { Losses, recordLossWarning } from './summary.js';

export type { Logger } from 'pino';

export interface GraftLogger {
  readonly logger: Logger;
  /** Writes out anything buffered; call before exiting. */
  readonly flush: () => void;
}

/** Writes records to stderr as short human lines (a stderr that cannot be written to loses them: nobody is there to tell). */
function terminalStream(): DestinationStream {
  return {
    write(line: string): void {
      const text = humanLine(line);
      try {
        if (text) writeSync(2, `${text}\n`);
      } catch {
        // EPIPE, EBADF...: the terminal's lines are commentary, not records
      }
    },
  };
}

/** How often a write that would block (a non-blocking pipe) is tried again before its record counts as lost. */
const WRITE_AGAIN_TRIES = 1000;

/** Writes all of `data` to `fd`; throws the write's error. */
function writeAll(fd: number, data: Buffer): void {
  for (let done = 0, again = 0; done < data.length;) {
    try {
      done += writeSync(fd, data, done);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || ++again > WRITE_AGAIN_TRIES) throw err;
    }
  }
}

/**
 * The log file's stream: each record written synchronously (a record must
 * survive graft exiting right after the program does, and one write per
 * connection costs little). A record that cannot be written (ENOSPC, EIO,
 * EPIPE, EBADF...) is counted as lost, and the first loss is said through
 * `warn`: a full disk must not stop the program nor its relaying (a
 * write error would otherwise end graft, and the program with it).
 * Opening the file fails at once, before the program starts.
 */
export function logFileStream(path: string, losses: Losses, warn: (line: string) => void = () => {}): DestinationStream {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'a');
  return {
    write(line: string): void {
      try {
        writeAll(fd, Buffer.from(line));
      } catch (err) {
        const loss = { file: path, code: (err as NodeJS.ErrnoException).code ?? (err as Error).message };
        if (losses.recordLost(loss)) warn(recordLossWarning(loss));
      }
    },
  };
}

function terminalLevel(plan: LogPlan): LogLevel {
  switch (plan.terminal) {
    case 'quiet':
      return 'silent';
    case 'verbose':
      return pino.levels.values[plan.level]! < pino.levels.values.info! ? plan.level : 'info';
    case 'normal':
      return 'error';
  }
}

/**
 * The logger for a run. `losses` counts the records the log file could
 * not take; `warn` says the first such loss (the CLI: on stderr).
 */
export function createLogger(plan: LogPlan, losses: Losses = new Losses(), warn?: (line: string) => void): GraftLogger {
  const streams: StreamEntry[] = [];
  const tty = terminalLevel(plan);
  if (tty !== 'silent') streams.push({ level: tty, stream: terminalStream() });
  if (plan.file !== undefined && plan.level !== 'silent') streams.push({ level: plan.level, stream: logFileStream(plan.file, losses, warn) });
  const levels = streams.map((s) => pino.levels.values[s.level as string]!);
  const level = levels.length ? (pino.levels.labels[Math.min(...levels)] as LogLevel) : 'silent';
  const logger = pino({ level, base: { graft: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.multistream(streams));
  return {
    logger,
    flush: () => {}, // every write is synchronous
  };
}
