/**
 * The Node side's one encoder and decoder of the lines that cross the
 * boundary with the tracer, generic over the message tables generated from
 * spec/tracer-boundary.json (native/boundary.c is the tracer's). A line is
 * a tag and its fields, each after one space; an absent optional field is
 * '-'; texts are percent-encoded.
 */
import { isIP } from 'node:net';
import { constants } from 'node:os';
import { LINE_MAX, MESSAGES, TEXT_MAX, type Message } from './messages.js';
import type { FieldSpec, MessageSpec } from './spec.js';

export class BoundaryError extends Error {}

const ERRNOS: Readonly<Record<string, number>> = constants.errno;
const SPACE = 0x20;
const PERCENT = 0x25;
const DASH = 0x2d;
const HEX_DIGITS = '0123456789abcdefABCDEF';

const BY_TAG = new Map<string, { kind: Message['kind']; spec: MessageSpec }>(
  (Object.entries(MESSAGES) as [Message['kind'], MessageSpec][]).map(([kind, spec]) => [spec.tag, { kind, spec }]),
);

function mustEscape(byte: number): boolean {
  return byte <= SPACE || byte === 0x7f || byte === PERCENT || byte === DASH;
}

function hex(byte: number): string {
  return '%' + byte.toString(16).toUpperCase().padStart(2, '0');
}

function encodeText(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length === 0 || bytes.length > TEXT_MAX || bytes.includes(0)) throw new BoundaryError(`a text must be 1 to ${TEXT_MAX} bytes without NUL`);
  let out = '';
  for (const b of bytes) out += mustEscape(b) ? hex(b) : String.fromCharCode(b);
  // bytes >= 0x80 went in as latin1 code units: the caller writes the line as latin1
  return out;
}

function validAddr(value: string): boolean {
  const pct = value.indexOf('%');
  if (pct < 0) return isIP(value) !== 0;
  const scope = value.slice(pct + 1);
  return isIP(value.slice(0, pct)) === 6 && scope.length > 0 && [...scope].every((c) => c >= '0' && c <= '9');
}

function isWhole(n: unknown, lo: number, hi: number): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= lo && n <= hi;
}

function encodeValue(f: FieldSpec, v: unknown): string {
  const bad = (): never => {
    throw new BoundaryError(`field ${f.name}: cannot write ${JSON.stringify(v)} as ${f.type}`);
  };
  switch (f.type) {
    case 'int':
      return isWhole(v, -(2 ** 31), 2 ** 31 - 1) ? String(v) : bad();
    case 'uint':
      return isWhole(v, 0, 2 ** 32 - 1) ? String(v) : bad();
    case 'port':
      return isWhole(v, 0, 65535) ? String(v) : bad();
    case 'double':
      return typeof v === 'number' && Number.isFinite(v) ? String(v) : bad();
    case 'bool':
      return typeof v === 'boolean' ? (v ? '1' : '0') : bad();
    case 'addr':
      return typeof v === 'string' && validAddr(v) ? v : bad();
    case 'errno':
      return typeof v === 'string' && v in ERRNOS ? v : bad();
    case 'text':
      return typeof v === 'string' ? encodeText(v) : bad();
    case 'enum':
      return typeof v === 'string' && f.words!.includes(v) ? v : bad();
  }
}

/**
 * One message as its line, newline included. The line is latin1: write it
 * with Buffer.from(line, 'latin1') (texts carry their UTF-8 bytes as is).
 */
export function encodeMessage(msg: Message): string {
  const spec = MESSAGES[msg.kind];
  const values = msg as unknown as Readonly<Record<string, unknown>>;
  const parts = [spec.tag];
  for (const f of spec.fields) {
    const v = values[f.name];
    if (v === undefined) {
      if (!f.optional) throw new BoundaryError(`${msg.kind}: field ${f.name} is required`);
      parts.push('-');
    } else {
      parts.push(encodeValue(f, v));
    }
  }
  const line = parts.join(' ') + '\n';
  if (line.length > LINE_MAX) throw new BoundaryError(`${msg.kind}: line longer than ${LINE_MAX} bytes`);
  return line;
}

/** Encodes messages as the bytes to write. */
export function encodeMessages(msgs: readonly Message[]): Buffer {
  return Buffer.from(msgs.map(encodeMessage).join(''), 'latin1');
}

function decodeText(token: Buffer): string {
  const out = Buffer.alloc(token.length);
  let o = 0;
  for (let i = 0; i < token.length; i++) {
    let b = token[i]!;
    if (b === PERCENT) {
      const pair = token.subarray(i + 1, i + 3).toString('latin1');
      if (pair.length !== 2 || ![...pair].every((c) => HEX_DIGITS.includes(c))) throw new BoundaryError('bad percent escape');
      b = parseInt(pair, 16);
      i += 2;
    } else if (mustEscape(b)) {
      throw new BoundaryError('unescaped byte in a text');
    }
    if (b === 0) throw new BoundaryError('NUL in a text');
    out[o++] = b;
  }
  if (o === 0 || o > TEXT_MAX) throw new BoundaryError(`a text must be 1 to ${TEXT_MAX} bytes`);
  return out.subarray(0, o).toString('utf8');
}

function decimal(token: string, signed: boolean): number {
  const digits = signed && token.startsWith('-') ? token.slice(1) : token;
  if (digits.length === 0 || digits.length > 10 || ![...digits].every((c) => c >= '0' && c <= '9')) throw new BoundaryError(`'${token}' is not a whole number`);
  return Number(token);
}

function decodeValue(f: FieldSpec, token: Buffer): unknown {
  const s = token.toString('latin1');
  const check = <T>(ok: boolean, v: T): T => {
    if (!ok) throw new BoundaryError(`field ${f.name}: '${s}' is not a valid ${f.type}`);
    return v;
  };
  switch (f.type) {
    case 'int': {
      const n = decimal(s, true);
      return check(isWhole(n, -(2 ** 31), 2 ** 31 - 1), n);
    }
    case 'uint': {
      const n = decimal(s, false);
      return check(isWhole(n, 0, 2 ** 32 - 1), n);
    }
    case 'port': {
      const n = decimal(s, false);
      return check(isWhole(n, 0, 65535), n);
    }
    case 'double': {
      const n = Number(s);
      return check(s.length > 0 && [...s].every((c) => '0123456789.eE+-'.includes(c)) && Number.isFinite(n), n);
    }
    case 'bool':
      return check(s === '0' || s === '1', s === '1');
    case 'addr':
      return check(validAddr(s), s);
    case 'errno':
      return check(s in ERRNOS, s);
    case 'text':
      return decodeText(token);
    case 'enum':
      return check(f.words!.includes(s), s);
  }
}

/** Splits a buffer at single spaces. */
function tokens(line: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= line.length; i++) {
    if (i === line.length || line[i] === SPACE) {
      out.push(line.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

/** Decodes one line (its bytes, without or with the newline). */
export function decodeMessage(raw: Buffer): Message {
  const line = raw.length && raw[raw.length - 1] === 0x0a ? raw.subarray(0, raw.length - 1) : raw;
  if (line.length + 1 > LINE_MAX) throw new BoundaryError('line too long');
  const [tag, ...fields] = tokens(line);
  const found = BY_TAG.get(tag!.toString('latin1'));
  if (!found) throw new BoundaryError(`unknown message '${tag!.toString('latin1')}'`);
  const { kind, spec } = found;
  if (fields.length !== spec.fields.length) throw new BoundaryError(`${kind}: ${fields.length} fields, not ${spec.fields.length}`);
  const out: Record<string, unknown> = { kind };
  spec.fields.forEach((f, i) => {
    const token = fields[i]!;
    if (token.length === 1 && token[0] === DASH) {
      if (!f.optional) throw new BoundaryError(`${kind}: field ${f.name} is required`);
      return;
    }
    out[f.name] = decodeValue(f, token);
  });
  return out as unknown as Message;
}
