/**
 * Reads the tracer's records from its channel: a byte stream of boundary
 * lines (spec/tracer-boundary.json), decoded by the one decoder.
 * Addresses come out v4-mapped as plain IPv4 ("::ffff:127.0.0.1" and
 * "127.0.0.1" name the same peer), which is how the proxy keys peers and
 * how records show destinations.
 */
import { normalizeIp } from '../address.js';
import { decodeMessage } from './codec.js';
import { MESSAGES, type Message, type RecordMessage } from './messages.js';

export type {
  DelayedMessage as DelayedRecord,
  DiagnosticMessage as DiagnosticRecord,
  DnsSocketMessage as DnsSocketRecord,
  FailedMessage as FailedRecord,
  InplaceMessage as InplaceRecord,
  OpenedMessage as OpenedRecord,
  RecordMessage as TracerRecord,
  RedirectMessage as RedirectRecord,
  RelayedMessage as RelayedRecord,
} from './messages.js';

const NEWLINE = 0x0a;
const EMPTY = Buffer.alloc(0);

/** The address fields of each message kind. */
const ADDRESS_FIELDS = Object.fromEntries(
  Object.entries(MESSAGES).map(([kind, spec]) => [kind, spec.fields.filter((f) => f.type === 'addr').map((f) => f.name)]),
) as unknown as Readonly<Record<Message['kind'], readonly string[]>>;

/** Keys v4-mapped addresses as IPv4, in the message decodeMessage just made. */
function normalize(msg: Message): Message {
  const out = msg as unknown as Record<string, unknown>;
  for (const f of ADDRESS_FIELDS[msg.kind]) if (typeof out[f] === 'string') out[f] = normalizeIp(out[f]);
  return msg;
}

/** Splits a byte stream into records; `onRecord` sees each complete line. */
export class RecordDecoder {
  private partial: Buffer = EMPTY;

  constructor(
    private readonly onRecord: (r: RecordMessage) => void,
    private readonly onBadLine: (err: Error) => void,
  ) {}

  push(chunk: Buffer): void {
    let data = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    for (let nl = data.indexOf(NEWLINE); nl >= 0; nl = data.indexOf(NEWLINE)) {
      const line = data.subarray(0, nl);
      data = data.subarray(nl + 1);
      if (line.length) this.deliver(line);
    }
    // a copy: the chunk's memory is the stream's (nothing left over, the usual case: no copy)
    this.partial = data.length ? Buffer.from(data) : EMPTY;
  }

  private deliver(line: Buffer): void {
    let msg: Message;
    try {
      msg = decodeMessage(line);
      if (MESSAGES[msg.kind].direction !== 'records') throw new Error(`a ${msg.kind} message is not a record`);
    } catch (err) {
      this.onBadLine(err as Error);
      return;
    }
    this.onRecord(normalize(msg) as RecordMessage);
  }
}
