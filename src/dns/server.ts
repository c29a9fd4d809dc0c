/**
 * graft's DNS server: the tracer points the program's DNS sockets (UDP to
 * port 53) at it, and the proxy hands it the program's DNS over TCP. Each
 * question is answered as the name's rule says:
 * - a name that goes through a proxy (remote mode) gets a fake address
 *   (dns/fake.ts), and no query for it leaves this machine;
 * - any other name is asked of the server the program meant to ask (the
 *   tracer says which), with the program's own bytes, and the program gets
 *   that server's answer unchanged; graft only reads the addresses in it,
 *   to tell the tracer which name rules they fall under and to name them in
 *   records.
 * DNS faults (nxdomain, servfail, noanswer, a delay) come first.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from 'pino';
import {
  answerAddresses,
  bareReply,
  buildReply,
  frame,
  messageId,
  readQuestion,
  reverseAddress,
  truncated,
  unframe,
  type AddressAnswer,
  type Question,
} from './wire.js';
import type { FakeAddresses } from './fake.js';
import { ANSWERED_MAX, AnsweredNames } from './answered.js';
import { BoundedMap } from './bounded.js';
import type { DnsFaultAction } from '../chaos/dns-faults.js';
import { dialDirect } from '../egress/direct.js';
import { egressSocketOptions, hasEgress, sourceFor } from '../egress/options.js';
import type { Egress } from '../egress/model.js';
import type { NameAnswer } from '../routing.js';

/** How long a forwarded question may wait for the server's answer (glibc's default timeout is 5 s: the program has given up by then). */
const FORWARD_TIMEOUT_MS = 5000;
/** How long a query may wait for the tracer's word on where it was meant to go (it is sent before the query, on another pipe). */
const MEANT_WAIT_MS = 200;
/** The most sockets (and DNS-over-TCP connections) whose meant server graft remembers: the newest, far more than are open at once. */
const MEANT_MAX = 4096;
/** Fake answers' time to live: short, so a program that caches them asks again well before a slot could go to another name. */
export const FAKE_TTL_S = 60;

export interface Endpoint {
  readonly ip: string;
  readonly port: number;
}

export interface DnsServerOptions {
  /** the fake addresses (remote mode); undefined: every name gets its real answer (local mode) */
  readonly fakes: FakeAddresses | undefined;
  /** what the rules say about a name (Routing.answerFor) */
  readonly answerFor: (name: string) => NameAnswer;
  /** the DNS fault for this question, if one is chosen */
  readonly fault: (name: string) => DnsFaultAction | undefined;
  /** where a question goes when the tracer did not say where it was meant (resolv.conf's servers) */
  readonly nameservers: readonly string[];
  /** tells the tracer that connects to `ip` also match these name rules (none: forget ip); called before the program gets the answer */
  readonly tellTracer: (ip: string, rules: readonly number[]) => void;
  readonly logger: Logger;
}

/** Where a query arriving from a program's socket was meant to go (the tracer's Q record). */
interface MeantEntry {
  readonly dst: Endpoint;
  readonly pid: number;
  readonly exe: string;
}

export class DnsServer {
  readonly answered = new AnsweredNames();
  private udp4?: dgram.Socket;
  private udp6: dgram.Socket | undefined;
  private tcp?: net.Server;
  /** "4/PORT" -> where that socket's queries were meant to go (a socket per lookup, for some resolvers: bounded) */
  private readonly meant = new BoundedMap<string, MeantEntry>(MEANT_MAX);
  private readonly meantWaiters = new Map<string, (() => void)[]>();
  /** the proxy's local port of a DNS-over-TCP connection -> the server the program meant */
  private readonly tcpMeant = new BoundedMap<number, Endpoint>(MEANT_MAX);
  private readonly open = new Set<{ close: () => void }>();
  /** the name rules the tracer was last told for an address (as the tracer's own map, bounded alike) */
  private readonly told = new BoundedMap<string, string>(ANSWERED_MAX);
  private closed = false;

  constructor(private readonly opts: DnsServerOptions) {}

  /** Where it listens, once listen() resolved. */
  ports: { readonly port4: number; readonly port6: number; readonly tcpPort: number } | undefined;

  /** Listens on 127.0.0.1 and ::1 (UDP, and TCP on 127.0.0.1 for the proxy); resolves with the ports. */
  async listen(): Promise<{ port4: number; port6: number; tcpPort: number }> {
    const bindUdp = (type: 'udp4' | 'udp6', address: string): Promise<dgram.Socket> =>
      new Promise((resolve, reject) => {
        const s = dgram.createSocket(type === 'udp6' ? { type, ipv6Only: true } : { type });
        s.once('error', reject);
        s.bind(0, address, () => {
          s.off('error', reject);
          s.on('error', (err) => this.opts.logger.warn({ err: err.message }, 'dns: socket error'));
          s.on('message', (msg, rinfo) => void this.onDatagram(s, type === 'udp4' ? 4 : 6, msg, rinfo));
          resolve(s);
        });
      });
    this.udp4 = await bindUdp('udp4', '127.0.0.1');
    // a machine without IPv6 on loopback: IPv6 programs' DNS has no server (their sockets could not reach one either)
    this.udp6 = await bindUdp('udp6', '::1').catch(() => undefined);
    this.tcp = net.createServer((s) => this.onTcp(s));
    await new Promise<void>((resolve, reject) => {
      this.tcp!.once('error', reject);
      this.tcp!.listen(0, '127.0.0.1', () => resolve());
    });
    this.ports = { port4: this.udp4.address().port, port6: this.udp6?.address().port ?? 0, tcpPort: (this.tcp.address() as net.AddressInfo).port };
    return this.ports;
  }

  /** The tracer pointed a program's socket at this server: its queries from `port` (on the loopback address of `family`) were meant for `dst`. */
  meantFor(family: 4 | 6, port: number, dst: Endpoint, pid: number, exe: string): void {
    const key = `${family}/${port}`;
    this.meant.set(key, { dst, pid, exe });
    for (const wake of this.meantWaiters.get(key) ?? []) wake();
    this.meantWaiters.delete(key);
  }

  /** The proxy dialed this server for a program's DNS over TCP from its local port `port`, meant for `dst`. */
  tcpMeantFor(port: number, dst: Endpoint): void {
    this.tcpMeant.set(port, dst);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.udp4?.close();
    this.udp6?.close();
    this.tcp?.close();
    for (const o of this.open) o.close();
  }

  private async onDatagram(sock: dgram.Socket, family: 4 | 6, msg: Buffer, rinfo: dgram.RemoteInfo): Promise<void> {
    const meant = await this.meantEntry(family, rinfo.port);
    const reply = await this.safeAnswer(msg, meant?.dst, 'udp');
    if (reply === undefined || this.closed) return;
    // an answer asked over TCP (for the rule's egress) may not fit: the program asks again over TCP
    const q = reply.length > 512 ? readQuestion(msg) : undefined;
    sock.send(q && reply.length > q.udpSize ? truncated(q, reply) : reply, rinfo.port, rinfo.address);
  }

  private onTcp(s: net.Socket): void {
    // the proxy says where it was meant to go once its dial is made, before it relays the program's first byte
    let meant: Endpoint | undefined | null = null;
    const meantNow = (): Endpoint | undefined => {
      if (meant === null) {
        meant = this.tcpMeant.get(s.remotePort ?? -1);
        this.tcpMeant.delete(s.remotePort ?? -1);
      }
      return meant;
    };
    const handle = { close: () => s.destroy() };
    this.open.add(handle);
    s.on('close', () => this.open.delete(handle));
    s.on('error', () => {});
    let pending: Buffer = Buffer.alloc(0);
    // answers go back in the order the questions came (RFC 7766 allows any order; in order is what every client reads)
    let chain = Promise.resolve();
    s.on('data', (data: Buffer) => {
      const { messages, rest } = unframe(Buffer.concat([pending, data]));
      pending = rest;
      for (const m of messages) {
        const answer = this.safeAnswer(m, meantNow(), 'tcp');
        chain = chain.then(async () => {
          const reply = await answer;
          if (reply !== undefined && !s.destroyed) s.write(frame(reply));
        });
      }
    });
    s.on('end', () => void chain.then(() => s.end()));
  }

  /** The tracer's word on where a socket's queries were meant to go, waited for a moment if it is not here yet. */
  private async meantEntry(family: 4 | 6, port: number): Promise<MeantEntry | undefined> {
    const key = `${family}/${port}`;
    const known = this.meant.get(key);
    if (known) {
      this.meant.set(key, known); // a use: a long-lived socket (c-ares keeps one) is not forgotten first
      return known;
    }
    await new Promise<void>((resolve) => {
      const list = this.meantWaiters.get(key) ?? [];
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      // not told in time: forget the waiter, and ask the default server
      const timer = setTimeout(() => {
        const left = (this.meantWaiters.get(key) ?? []).filter((w) => w !== wake);
        if (left.length) this.meantWaiters.set(key, left);
        else this.meantWaiters.delete(key);
        resolve();
      }, MEANT_WAIT_MS);
      list.push(wake);
      this.meantWaiters.set(key, list);
    });
    return this.meant.get(key);
  }

  /** answer(), and SERVFAIL with a log line when graft itself fails: nothing a question brings may end the run. */
  private async safeAnswer(msg: Buffer, meant: Endpoint | undefined, via: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    try {
      return await this.answer(msg, meant, via);
    } catch (err) {
      this.opts.logger.error({ err: (err as Error).message }, 'dns: graft could not answer a question');
      const q = readQuestion(msg);
      return q ? buildReply(q, 'SERVFAIL') : undefined;
    }
  }

  /** The reply to one query (undefined: none, as a server that does not answer). */
  private async answer(msg: Buffer, meant: Endpoint | undefined, via: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    const q = readQuestion(msg);
    if (!q) {
      const id = messageId(msg);
      return id === undefined ? undefined : bareReply(id, 'FORMERR');
    }
    const fault = q.name !== undefined ? this.opts.fault(q.name) : undefined;
    if (fault) {
      this.opts.logger.info({ name: q.asked, type: q.type, fault: fault.text }, 'dns: fault');
      if (fault.delayMs > 0) await sleep(fault.delayMs);
      if (fault.kind === 'noanswer') return undefined;
      if (fault.kind !== 'delay') return buildReply(q, fault.kind === 'nxdomain' ? 'NXDOMAIN' : 'SERVFAIL');
    }
    const own = this.ownAnswer(q);
    if (own) return own;
    // a reverse name (in-addr.arpa) is no destination: its question goes to the server asked, as natively
    const verdict: NameAnswer =
      q.name !== undefined && reverseAddress(q.asked) === undefined ? this.opts.answerFor(q.name) : { kind: 'real', rules: [], egress: {} };
    if (verdict.kind === 'fake') return this.fakeAnswer(q);
    const server = meant ?? this.defaultServer();
    if (!server) return buildReply(q, 'SERVFAIL');
    // over TCP when asked so, or when the rule's egress must go with it (Node's UDP sockets cannot take it)
    const reply = via === 'tcp' || hasEgress(verdict.egress) ? await forwardTcp(msg, server, verdict.egress) : await forwardUdp(msg, server);
    if (reply && q.name !== undefined && (q.type === 'A' || q.type === 'AAAA')) this.learn(q.name, answerAddresses(reply), verdict.rules);
    return reply;
  }

  /** Questions graft answers whatever the rules say: the names of its own fake addresses. */
  private ownAnswer(q: Question): Buffer | undefined {
    if (q.type !== 'PTR' || !this.opts.fakes) return undefined;
    const ip = reverseAddress(q.asked);
    if (ip === undefined || !this.opts.fakes.contains(ip)) return undefined;
    const name = this.opts.fakes.nameOf(ip);
    return name !== undefined ? buildReply(q, 'NOERROR', [{ type: 'PTR', target: name }], FAKE_TTL_S) : buildReply(q, 'NXDOMAIN');
  }

  /**
   * A name that goes through a proxy: A and AAAA get its fake addresses;
   * any other type an empty answer (NOERROR, no records: the name exists,
   * graft knows no such record), since asking a server here would send the
   * name out of this machine.
   */
  private fakeAnswer(q: Question): Buffer {
    const pair = this.opts.fakes!.addressesFor(q.name!);
    if (!pair) {
      this.opts.logger.warn(
        { name: q.asked, slots: this.opts.fakes!.slots },
        'dns: every fake address was used in the last two minutes: SERVFAIL (--fake-range gives more)',
      );
      return buildReply(q, 'SERVFAIL');
    }
    const records: AddressAnswer[] = q.type === 'A' ? [{ type: 'A', address: pair.v4 }] : q.type === 'AAAA' ? [{ type: 'AAAA', address: pair.v6 }] : [];
    this.opts.logger.debug({ name: q.asked, type: q.type, fake: records[0]?.address }, 'dns: fake answer');
    return buildReply(q, 'NOERROR', records, FAKE_TTL_S);
  }

  private defaultServer(): Endpoint | undefined {
    const ip = this.opts.nameservers[0];
    return ip !== undefined ? { ip, port: 53 } : undefined;
  }

  /**
   * Remembers which name the addresses were answered for, and first tells
   * the tracer their name rules when they changed (none: it forgets an
   * address a name with rules had before, a CDN's shared one).
   */
  private learn(name: string, addresses: readonly string[], rules: readonly number[]): void {
    const now = rules.join(',');
    for (const ip of addresses) {
      const before = this.told.get(ip) ?? '';
      if (before !== now) {
        this.opts.tellTracer(ip, rules);
        if (now) this.told.set(ip, now);
        else this.told.delete(ip);
      }
      this.answered.remember(ip, name);
    }
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The first reply `listen` hands to its callback, or undefined after
 * FORWARD_TIMEOUT_MS; `close` ends the socket either way.
 */
function firstReply(close: () => void, listen: (done: (reply: Buffer | undefined) => void) => void): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    // once: an error or an end may follow the reply, and a dgram socket closes only once
    const done = (reply: Buffer | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      close();
      resolve(reply);
    };
    const timer = setTimeout(() => done(undefined), FORWARD_TIMEOUT_MS);
    listen(done);
  });
}

function forwardUdp(msg: Buffer, server: Endpoint): Promise<Buffer | undefined> {
  const s = dgram.createSocket(net.isIPv6(server.ip) ? 'udp6' : 'udp4');
  return firstReply(
    () => s.close(),
    (done) => {
      s.on('error', () => done(undefined));
      s.on('message', (reply, rinfo) => {
        // only the server's answer to this very query
        // a link-local server's zone is written as an index in one place and a name in the other
        const from = rinfo.address.replace(/%.*$/, '');
        if (from === server.ip.replace(/%.*$/, '') && rinfo.port === server.port && reply.length >= 2 && reply.readUInt16BE(0) === msg.readUInt16BE(0))
          done(reply);
      });
      s.send(msg, server.port, server.ip);
    },
  );
}

/** Asks `server` the program's query over TCP, from a socket with the name rule's egress. */
async function forwardTcp(msg: Buffer, server: Endpoint, egress: Egress): Promise<Buffer | undefined> {
  const source = sourceFor(egress, server.ip);
  // never from another address than asked: no answer, as a server that cannot be reached
  if (source.kind === 'missing') return undefined;
  let socket: net.Socket;
  try {
    const target = { ip: server.ip, port: server.port, ...(source.kind === 'address' ? { localAddress: source.address } : {}) };
    socket = await dialDirect(target, egressSocketOptions(egress), FORWARD_TIMEOUT_MS);
  } catch {
    return undefined;
  }
  return firstReply(
    () => socket.destroy(),
    (done) => {
      let got: Buffer = Buffer.alloc(0);
      socket.on('error', () => done(undefined));
      socket.on('end', () => done(undefined));
      socket.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        const { messages } = unframe(got);
        if (messages[0]) done(Buffer.from(messages[0]));
      });
      socket.write(frame(msg));
    },
  );
}
