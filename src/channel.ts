/**
 * Decodes the records the tracer writes on its channel (see the header of
 * native/records.h for the format). One line per record.
 */
import { StringDecoder } from 'node:string_decoder';
import { normalizeIp } from './address.js';

export interface ProcessRef {
  readonly pid: number;
  readonly tid: number;
  readonly exe: string;
}

/** A connect the tracer pointed at the proxy. */
export interface RedirectRecord extends ProcessRef {
  readonly kind: 'redirect';
  readonly dstIp: string;
  readonly dstPort: number;
  /** The program-side address the proxy sees on accept. */
  readonly peerIp: string;
  readonly peerPort: number;
  /** index of the rule that decided (see Routing) */
  readonly rule: number;
}

/** A connect the tracer let go on in place, with the egress options set. */
export interface InplaceRecord extends ProcessRef {
  readonly kind: 'inplace';
  readonly dstIp: string;
  readonly dstPort: number;
  readonly rule: number;
}

/** A connect the tracer failed rather than let it out another way. */
export interface FailedRecord extends ProcessRef {
  readonly kind: 'failed';
  readonly dstIp: string;
  readonly dstPort: number;
  readonly errno: string;
  /** -1 when no rule is the reason */
  readonly rule: number;
  readonly reason: string;
}

export interface DiagnosticRecord {
  readonly kind: 'diagnostic';
  readonly pid: number;
  readonly tid: number;
  readonly message: string;
}

/** A connect a delay fault held in the tracer before it went on. */
export interface DelayedRecord extends ProcessRef {
  readonly kind: 'delayed';
  readonly dstIp: string;
  readonly dstPort: number;
  /** index into the run's connect faults */
  readonly fault: number;
}

/**
 * A non-blocking connect a delay fault holds in graft's black hole (see
 * native/later.h): the proxy completes its handshake after `delayMs`, from
 * the black hole's address, and relays it like a redirected connect.
 */
export interface LateHandshakeRecord extends Omit<RedirectRecord, 'kind'> {
  readonly kind: 'late-handshake';
  /** the black hole's port, on the peer's loopback address */
  readonly holePort: number;
  readonly delayMs: number;
  /** index into the run's connect faults */
  readonly fault: number;
}

export type TracerRecord = RedirectRecord | LateHandshakeRecord | InplaceRecord | FailedRecord | DelayedRecord | DiagnosticRecord;

function int(field: string | undefined, line: string): number {
  const n = Number(field);
  if (field === undefined || !Number.isInteger(n)) throw new Error(`bad tracer record: ${line}`);
  return n;
}

function text(field: string | undefined, line: string): string {
  if (field === undefined) throw new Error(`bad tracer record: ${line}`);
  return field;
}

function decodeExe(field: string | undefined): string {
  if (field === undefined) return '?';
  try {
    return decodeURIComponent(field);
  } catch {
    return field;
  }
}

export function decodeRecord(line: string): TracerRecord {
  const f = line.split(' ');
  // the fields most records start with: who, and where to
  const who = (): { pid: number; tid: number } => ({ pid: int(f[1], line), tid: int(f[2], line) });
  const dst = (): { dstIp: string; dstPort: number } => ({ dstIp: normalizeIp(text(f[3], line)), dstPort: int(f[4], line) });
  const peer = (): { peerIp: string; peerPort: number; rule: number } => ({ peerIp: normalizeIp(text(f[5], line)), peerPort: int(f[6], line), rule: int(f[7], line) });
  switch (f[0]) {
    case 'C':
      return { kind: 'redirect', ...who(), ...dst(), ...peer(), exe: decodeExe(f[8]) };
    case 'W':
      return { kind: 'late-handshake', ...who(), ...dst(), ...peer(), holePort: int(f[8], line), fault: int(f[9], line), delayMs: int(f[10], line), exe: decodeExe(f[11]) };
    case 'I':
      return { kind: 'inplace', ...who(), ...dst(), rule: int(f[5], line), exe: decodeExe(f[6]) };
    case 'F':
      return { kind: 'failed', ...who(), ...dst(), errno: text(f[5], line), rule: int(f[6], line), exe: decodeExe(f[7]), reason: f.slice(8).join(' ') };
    case 'H':
      return { kind: 'delayed', ...who(), ...dst(), fault: int(f[5], line), exe: decodeExe(f[6]) };
    case 'D':
      return { kind: 'diagnostic', ...who(), message: f.slice(3).join(' ') };
    default:
      throw new Error(`unknown tracer record: ${line}`);
  }
}

/** Splits a byte stream into records; `onRecord` sees each complete line. */
export class RecordDecoder {
  private partial = '';
  private readonly utf8 = new StringDecoder('utf8');

  constructor(
    private readonly onRecord: (r: TracerRecord) => void,
    private readonly onBadLine: (err: Error) => void,
  ) {}

  push(chunk: Buffer): void {
    const data = this.partial + this.utf8.write(chunk);
    const lines = data.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      if (!line) continue;
      try {
        this.onRecord(decodeRecord(line));
      } catch (err) {
        this.onBadLine(err as Error);
      }
    }
  }
}
