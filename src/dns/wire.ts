/**
 * DNS messages as graft's DNS server reads and writes them: pure
 * functions over dns-packet, no sockets. A question graft answers itself
 * gets a reply built here; one it forwards travels as the program's own
 * bytes, and only its answer's addresses are read here.
 */
import type * as dnsPacket from 'dns-packet';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { canonicalName } from './pattern.js';

export interface Question {
  readonly id: number;
  /** the question's name as asked (case kept, no trailing dot) */
  readonly asked: string;
  /** the name canonical (dns/pattern.ts), or undefined when it is not a host name */
  readonly name: string | undefined;
  /** 'A', 'AAAA', 'PTR', ... as dns-packet names it (unknown types: 'UNKNOWN_N') */
  readonly type: string;
  /** the query's flags, for the reply: recursion desired, checking disabled */
  readonly flags: number;
  /** the query carried EDNS (an OPT record): the reply does too */
  readonly edns: boolean;
  /** the most a UDP answer may hold: the EDNS payload size it gave, else 512 (RFC 1035 4.2.1, RFC 6891 6.2.3) */
  readonly udpSize: number;
}

const UDP_PLAIN_MAX = 512;

let loaded: typeof dnsPacket | undefined;
/** The dns-packet package, loaded at the first DNS message: most runs answer none, and loading it costs start-up time. */
function packets(): typeof dnsPacket {
  return (loaded ??= createRequire(import.meta.url)('dns-packet') as typeof dnsPacket);
}

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = keyof typeof RCODE;

/** The message's id, when it is long enough to have one (a reply to garbage still needs it). */
export function messageId(buf: Buffer): number | undefined {
  return buf.length >= 12 ? buf.readUInt16BE(0) : undefined;
}

/** A standard query with one question, or undefined (a response, another opcode, several questions, undecodable). */
export function readQuestion(buf: Buffer): Question | undefined {
  let p: dnsPacket.DecodedPacket;
  try {
    p = packets().decode(buf);
  } catch {
    return undefined;
  }
  const flags = p.flags ?? 0;
  // QR set (a response) or an opcode other than QUERY (bits 11-14)
  if (p.type !== 'query' || (flags >> 11) & 0xf || p.questions?.length !== 1) return undefined;
  const q = p.questions[0]!;
  const asked = q.name.replace(/\.$/, '');
  const opt = (p.additionals ?? []).find((a): a is dnsPacket.OptAnswer => a.type === 'OPT');
  return {
    id: p.id ?? 0,
    asked,
    name: canonicalName(asked),
    type: q.type,
    flags: flags & (packets().RECURSION_DESIRED | packets().CHECKING_DISABLED),
    edns: opt !== undefined,
    udpSize: Math.max(UDP_PLAIN_MAX, opt?.udpPayloadSize ?? 0),
  };
}

export interface AddressAnswer {
  readonly type: 'A' | 'AAAA';
  readonly address: string;
}

/** A reply to `q`: `rcode`, with these A/AAAA (or PTR) records under the question's name. */
export function buildReply(q: Question, rcode: Rcode, records: readonly (AddressAnswer | { type: 'PTR'; target: string })[] = [], ttl = 60): Buffer {
  const answers: dnsPacket.Answer[] = records.map((r) =>
    r.type === 'PTR' ? { type: 'PTR', name: q.asked, ttl, class: 'IN', data: r.target } : { type: r.type, name: q.asked, ttl, class: 'IN', data: r.address },
  );
  return packets().encode({
    type: 'response',
    id: q.id,
    flags: q.flags | packets().RECURSION_AVAILABLE | RCODE[rcode],
    questions: [{ type: q.type as dnsPacket.RecordType, name: q.asked, class: 'IN' }],
    answers,
    ...(q.edns
      ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] }
      : {}),
  });
}

/** A reply with only the header and rcode, for a query graft cannot read (FORMERR keeps the program from waiting). */
export function bareReply(id: number, rcode: Rcode): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(0x8000 | packets().RECURSION_AVAILABLE | RCODE[rcode], 2);
  return b;
}

/** The same answer with no records and TC set: the program asks again over TCP (RFC 2181 9). */
export function truncated(q: Question, reply: Buffer): Buffer {
  const header = reply.subarray(0, 4);
  const flags = header.readUInt16BE(2) | packets().TRUNCATED_RESPONSE;
  const bare = buildReply(q, 'NOERROR');
  bare.writeUInt16BE(flags, 2);
  return bare;
}

/** The addresses an answer holds (A and AAAA records, whatever name they are under: a CNAME chain ends in them). */
export function answerAddresses(buf: Buffer): string[] {
  try {
    const p = packets().decode(buf);
    return (p.answers ?? []).flatMap((a) => ((a.type === 'A' || a.type === 'AAAA') && isIP(a.data) ? [a.data] : []));
  } catch {
    return [];
  }
}

/** The address a PTR question asks about ("7.0.18.198.in-addr.arpa" -> "198.18.0.7"), or undefined. */
export function reverseAddress(name: string): string | undefined {
  const lower = name.toLowerCase();
  const v4 = /^((?:\d{1,3}\.){4})in-addr\.arpa$/.exec(lower);
  if (v4) {
    const ip = v4[1]!.slice(0, -1).split('.').reverse().join('.');
    return isIP(ip) === 4 ? ip : undefined;
  }
  const v6 = /^((?:[0-9a-f]\.){32})ip6\.arpa$/.exec(lower);
  if (v6) {
    const nibbles = v6[1]!.replace(/\./g, '').split('').reverse().join('');
    const ip = nibbles.match(/.{4}/g)!.join(':');
    return isIP(ip) === 6 ? ip : undefined;
  }
  return undefined;
}

/** DNS over TCP: each message after its two-byte length (RFC 1035 4.2.2). */
export function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** Splits whole messages off the front of `buf`: the messages and what is left (a partial one). */
export function unframe(buf: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let at = 0;
  while (buf.length - at >= 2) {
    const len = buf.readUInt16BE(at);
    if (buf.length - at - 2 < len) break;
    messages.push(buf.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return { messages, rest: buf.subarray(at) };
}
