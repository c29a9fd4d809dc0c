/**
 * Structured logging with pino. The program under graft owns the terminal,
 * so graft is quiet there by default: errors only, one human line per
 * connection with -v, nothing with -q. The ndjson file gets every record.
 */
import { writeSync } from 'node:fs';
import pino, { type Logger, type StreamEntry, type DestinationStream } from 'pino';
import type { LogPlan, LogLevel } from './plan.js';
import { humanLine } from './log-format.js';

export type { Logger } from 'pino';

export interface GraftLogger {
  readonly logger: Logger;
  /** Writes out anything buffered; call before exiting. */
  readonly flush: () => void;
}

/** Writes records to stderr as short human lines. */
function terminalStream(): DestinationStream {
  return {
    write(line: string): void {
      const text = humanLine(line);
      if (text) writeSync(2, `${text}\n`);
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

export function createLogger(plan: LogPlan): GraftLogger {
  const streams: StreamEntry[] = [];
  const tty = terminalLevel(plan);
  if (tty !== 'silent') streams.push({ level: tty, stream: terminalStream() });
  let file: ReturnType<typeof pino.destination> | undefined;
  if (plan.file !== undefined && plan.level !== 'silent') {
    // Synchronous: a record must survive graft exiting right after the
    // program does, and one write per connection costs little.
    file = pino.destination({ dest: plan.file, sync: true, mkdir: true });
    streams.push({ level: plan.level, stream: file });
  }
  const levels = streams.map((s) => pino.levels.values[s.level as string]!);
  const level = levels.length ? (pino.levels.labels[Math.min(...levels)] as LogLevel) : 'silent';
  const logger = pino({ level, base: { graft: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.multistream(streams));
  return {
    logger,
    flush: () => file?.flushSync(),
  };
}
