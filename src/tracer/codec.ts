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
    case 'count':
      return isWhole(v, 0, Number.MAX_SAFE_INTEGER) ? String(v) : bad();
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

const bad = (f: FieldSpec, token: string): BoundaryError => new BoundaryError(`field ${f.name}: '${token}' is not a valid ${f.type}`);

function hexDigit(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}

/**
 * A text field from its latin1 token (each char one byte of the line).
 * Most texts (executables, reasons) have no escape and no byte above
 * 0x7f: those are taken as they are, without a copy.
 */
function decodeText(token: string): string {
  let plain = true;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c === PERCENT || c >= 0x80) plain = false;
    else if (mustEscape(c)) throw new BoundaryError('unescaped byte in a text');
  }
  if (plain) {
    if (token.length === 0 || token.length > TEXT_MAX) throw new BoundaryError(`a text must be 1 to ${TEXT_MAX} bytes`);
    return token;
  }
  const out = Buffer.allocUnsafe(token.length);
  let o = 0;
  for (let i = 0; i < token.length; i++) {
    let b = token.charCodeAt(i);
    if (b === PERCENT) {
      const hi = hexDigit(token.charCodeAt(i + 1));
      const lo = hexDigit(token.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) throw new BoundaryError('bad percent escape');
      b = hi * 16 + lo;
      i += 2;
      if (b === 0) throw new BoundaryError('NUL in a text');
    }
    out[o++] = b;
  }
  if (o > TEXT_MAX) throw new BoundaryError(`a text must be 1 to ${TEXT_MAX} bytes`);
  return out.toString('utf8', 0, o);
}

/** A decimal whole number in [lo, hi] (a sign only where lo < 0). */
function decimal(f: FieldSpec, token: string, lo: number, hi: number): number {
  const start = lo < 0 && token.charCodeAt(0) === 0x2d ? 1 : 0;
  const digits = token.length - start;
  if (digits < 1 || digits > 16) throw bad(f, token);
  for (let i = start; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c < 0x30 || c > 0x39) throw bad(f, token);
  }
  const n = Number(token);
  if (n < lo || n > hi) throw bad(f, token);
  return n;
}

function decodeDouble(f: FieldSpec, token: string): number {
  for (let i = 0; i < token.length; i++) if (!'0123456789.eE+-'.includes(token[i]!)) throw bad(f, token);
  const n = Number(token);
  if (token.length === 0 || !Number.isFinite(n)) throw bad(f, token);
  return n;
}

function decodeValue(f: FieldSpec, token: string): unknown {
  const valid = <T>(ok: boolean, v: T): T => {
    if (!ok) throw bad(f, token);
    return v;
  };
  switch (f.type) {
    case 'int':
      return decimal(f, token, -(2 ** 31), 2 ** 31 - 1);
    case 'uint':
      return decimal(f, token, 0, 2 ** 32 - 1);
    case 'count':
      return decimal(f, token, 0, Number.MAX_SAFE_INTEGER);
    case 'port':
      return decimal(f, token, 0, 65535);
    case 'double':
      return decodeDouble(f, token);
    case 'bool':
      return valid(token === '0' || token === '1', token === '1');
    case 'addr':
      return valid(validAddr(token), token);
    case 'errno':
      return valid(token in ERRNOS, token);
    case 'text':
      return decodeText(token);
    case 'enum':
      return valid(f.words!.includes(token), token);
  }
}

/** Decodes one line (its bytes, without or with the newline). */
export function decodeMessage(raw: Buffer): Message {
  const end = raw.length && raw[raw.length - 1] === 0x0a ? raw.length - 1 : raw.length;
  if (end + 1 > LINE_MAX) throw new BoundaryError('line too long');
  // latin1: one char per byte, so a text's bytes survive until decodeText
  const [tag, ...fields] = raw.toString('latin1', 0, end).split(' ');
  const found = BY_TAG.get(tag!);
  if (!found) throw new BoundaryError(`unknown message '${tag}'`);
  const { kind, spec } = found;
  if (fields.length !== spec.fields.length) throw new BoundaryError(`${kind}: ${fields.length} fields, not ${spec.fields.length}`);
  const out: Record<string, unknown> = { kind };
  for (let i = 0; i < fields.length; i++) {
    const f = spec.fields[i]!;
    const token = fields[i]!;
    if (token === '-') {
      if (!f.optional) throw new BoundaryError(`${kind}: field ${f.name} is required`);
      continue;
    }
    out[f.name] = decodeValue(f, token);
  }
  return out as unknown as Message;
}
