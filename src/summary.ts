/**
 * What graft lost in a run for lack of its own resources, counted as it
 * happens and said once at exit:
 * - connections it could not serve (out of file descriptors): each one's
 *   connect failed, and each has its record at error level;
 * - log records it could not write (a full disk, a closed pipe): the run
 *   goes on, relaying included; the first loss is said at once.
 * The CLI prints summaryLine() on stderr at exit, also with -q: -q silences
 * graft's commentary, and a run whose connections or log are incomplete
 * must not pass for a complete one (a script running graft -q reads its
 * stderr for that). The programmatic API returns `lost` instead.
 */
import { readFileSync } from 'node:fs';

export interface LostCounts {
  /** connects graft failed because it was out of file descriptors */
  readonly connections: number;
  /** log records (log file) graft could not write */
  readonly records: number;
}

/** Why records are being lost: the file and the errno name. */
export interface RecordLoss {
  readonly file: string;
  readonly code: string;
}

export class Losses {
  constructor() {
    openFilesLimit(); // read now: once descriptors run out, /proc cannot be opened
  }

  private connectionCount = 0;
  private recordCount = 0;
  private recordLoss: RecordLoss | undefined;

  /** A connect graft could not serve for lack of file descriptors. */
  connectionLost(): void {
    this.connectionCount++;
  }

  /** A record that could not be written; true the first time (to say it at once). */
  recordLost(loss: RecordLoss): boolean {
    this.recordCount++;
    if (this.recordLoss) return false;
    this.recordLoss = loss;
    return true;
  }

  get lost(): LostCounts {
    return { connections: this.connectionCount, records: this.recordCount };
  }

  /** The one line said at exit, or undefined when nothing was lost. */
  summaryLine(): string | undefined {
    const parts: string[] = [];
    if (this.connectionCount > 0) {
      parts.push(
        `${plural(this.connectionCount, 'connection')} could not be served: out of file descriptors (limit ${openFilesLimit()}); raise it with ulimit -n`,
      );
    }
    if (this.recordLoss) {
      parts.push(`${plural(this.recordCount, 'log record')} could not be written to ${this.recordLoss.file} (${this.recordLoss.code})`);
    }
    return parts.length ? `graft: ${parts.join('; ')}` : undefined;
  }
}

/** The first loss of records, said once while the run goes on. */
export function recordLossWarning(loss: RecordLoss): string {
  return `graft: cannot write log records to ${loss.file} (${loss.code}): records are being lost; the program runs on, the count is given at exit`;
}

const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? '' : 's'}`;

let nofile: string | undefined;

/**
 * graft's own soft RLIMIT_NOFILE (Node raised it to the hard limit at its
 * start), as /proc/self/limits says: Node has no getrlimit.
 */
export function openFilesLimit(): string {
  if (nofile === undefined) {
    try {
      const line = readFileSync('/proc/self/limits', 'utf8')
        .split('\n')
        .find((l) => l.startsWith('Max open files'));
      nofile = line?.split(/\s{2,}/)[1] ?? '?';
    } catch {
      nofile = '?';
    }
  }
  return nofile;
}

/** Whether an errno name means graft (or the machine) is out of file descriptors. */
export const outOfDescriptors = (code: string | undefined): boolean => code === 'EMFILE' || code === 'ENFILE';

/** The error text of a connection graft could not serve for lack of file descriptors. */
export function descriptorShortage(code: string): string {
  return code === 'ENFILE'
    ? `the system is out of file descriptors (ENFILE; graft's limit ${openFilesLimit()})`
    : `graft is out of file descriptors (limit ${openFilesLimit()})`;
}
