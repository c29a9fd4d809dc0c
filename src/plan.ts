/** Everything one run of graft needs, resolved from argv (and later config). */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** What graft tells the terminal: errors only, one line per connection, or nothing. */
export type TerminalVerbosity = 'normal' | 'verbose' | 'quiet';

export interface LogPlan {
  readonly terminal: TerminalVerbosity;
  /** Threshold for the log file and, when verbose, for the terminal. */
  readonly level: LogLevel;
  /** ndjson log file, one record per connection. */
  readonly file?: string;
}

export interface Plan {
  readonly program: string;
  readonly args: readonly string[];
  readonly connectTimeoutMs: number;
  /** How long an accepted connection may wait for the tracer's record. */
  readonly registrationWaitMs: number;
  readonly log: LogPlan;
}
