/**
 * Fake addresses: what graft answers for a name that goes through a proxy,
 * so the program connects to an address that stands for the name and the
 * proxy can send the name itself to the far side. One name gets one slot:
 * the same offset in the IPv4 range (A) and the IPv6 range (AAAA). Slots
 * are bounded: when every slot is taken, the name used least recently
 * gives up its slot, and a connect to its old address is refused as one to
 * an address graft never gave out.
 */
import { BlockList, isIPv4 } from 'node:net';
import { UsageError } from '../errors.js';
import { isIPv6Text } from '../address.js';

/** The ranges by default: 198.18.0.0/15 is for benchmarking (RFC 2544), never routed; the ULA /64 spells "graft" in its hex. */
export const DEFAULT_FAKE4 = '198.18.0.0/15';
export const DEFAULT_FAKE6 = 'fd67:7261:6674::/64';
/** The most names remembered at once by default: about 10 MB at worst, far more than a program resolves. */
export const DEFAULT_FAKE_SLOTS = 65536;
/** A slot is given to another name only when unused this long: twice the answers' TTL (dns/server.ts). */
export const REUSE_AFTER_MS = 120_000;

export interface FakeRanges {
  readonly v4: string;
  readonly v6: string;
  /** the most names held at once (the smaller range caps it too) */
  readonly slots?: number;
}

export interface FakePair {
  readonly v4: string;
  readonly v6: string;
}

const v4ToInt = (ip: string): number => ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
const intToV4 = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

/** The eight hextets of an IPv6 address, as numbers. */
function hextets(ip: string): number[] {
  const [head = '', tail] = ip.split('::') as [string, string | undefined];
  const parse = (s: string): number[] => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const [h, t] = [parse(head), parse(tail ?? '')];
  return tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

const hex = (n: number): string => n.toString(16);

/** "198.18.0.0/15" -> base and size; refuses what is not a usable range of that family. */
function parseRange(cidr: string, family: 4 | 6, what: string): { base: string; prefix: number } {
  const [base = '', prefixText = ''] = cidr.split('/');
  const prefix = Number(prefixText);
  const ok = family === 4 ? isIPv4(base) : isIPv6Text(base) && !base.includes('.');
  // IPv6: the offset lives in the last 32 bits, so the prefix leaves them free
  const [lo, hi] = family === 4 ? [8, 30] : [64, 96];
  if (!ok || !/^\d+$/.test(prefixText) || prefix < lo || prefix > hi)
    throw new UsageError(`'${cidr}' is not an IPv${family} range for ${what} (a CIDR with a prefix from /${lo} to /${hi})`);
  return { base, prefix };
}

export class FakeAddresses {
  private readonly base4: number;
  private readonly head6: number[];
  private readonly list = new BlockList();
  /** the two ranges, for the rules */
  readonly ranges: readonly { readonly family: 4 | 6; readonly address: string; readonly prefix: number }[];
  /** usable offsets: 1 .. slots (offset 0, the network's own address, is never given out) */
  readonly slots: number;
  /** name -> offset, least recently used first (a Map keeps insertion order: a use re-inserts) */
  private readonly byName = new Map<string, number>();
  private readonly byOffset: (string | undefined)[] = [];
  /** when each slot was last answered or connected to (ms, `now`) */
  private readonly usedAt: number[] = [];

  constructor(
    ranges: FakeRanges,
    private readonly now: () => number = Date.now,
  ) {
    const r4 = parseRange(ranges.v4, 4, 'fake addresses');
    const r6 = parseRange(ranges.v6, 6, 'fake addresses');
    this.ranges = [
      { family: 4, address: r4.base, prefix: r4.prefix },
      { family: 6, address: r6.base, prefix: r6.prefix },
    ];
    this.list.addSubnet(r4.base, r4.prefix, 'ipv4');
    this.list.addSubnet(r6.base, r6.prefix, 'ipv6');
    const size4 = 2 ** (32 - r4.prefix);
    this.base4 = v4ToInt(r4.base) - (v4ToInt(r4.base) % size4);
    // the IPv6 offset lives in the last two hextets; the range's head is the rest
    this.head6 = hextets(r6.base).slice(0, 6);
    const size6 = 2 ** Math.min(32, 128 - r6.prefix);
    // the last IPv4 address is the range's broadcast address: not given out either
    this.slots = Math.min(size4 - 2, size6 - 1, ranges.slots ?? DEFAULT_FAKE_SLOTS);
  }

  /** The ranges as the tracer's table and the rules see them. */
  contains(ip: string): boolean {
    return this.list.check(ip, isIPv6Text(ip) ? 'ipv6' : 'ipv4');
  }

  /**
   * The pair of addresses for `name` (canonical), giving it a slot if it
   * has none; undefined when every slot was used too recently to give one
   * up (a program may still hold the old address: it must not lead to
   * another name).
   */
  addressesFor(name: string): FakePair | undefined {
    let offset = this.byName.get(name);
    if (offset !== undefined) {
      this.byName.delete(name);
    } else if (this.byName.size < this.slots) {
      offset = this.byName.size + 1;
    } else {
      const [oldest, freed] = this.byName.entries().next().value as [string, number];
      if (this.now() - (this.usedAt[freed] ?? 0) < REUSE_AFTER_MS) return undefined;
      this.byName.delete(oldest);
      offset = freed;
    }
    this.byName.set(name, offset);
    this.byOffset[offset] = name;
    this.usedAt[offset] = this.now();
    return this.pairOf(offset);
  }

  /** The name a fake address stands for now, or undefined (not a fake, never given out, or its slot went to another name). */
  nameOf(ip: string): string | undefined {
    const offset = this.offsetOf(ip);
    if (offset === undefined) return undefined;
    const name = this.byOffset[offset];
    if (name === undefined || this.byName.get(name) !== offset) return undefined;
    // a connect is a use too: the name keeps its slot
    this.byName.delete(name);
    this.byName.set(name, offset);
    this.usedAt[offset] = this.now();
    return name;
  }

  /** How many names hold a slot. */
  get size(): number {
    return this.byName.size;
  }

  private pairOf(offset: number): FakePair {
    const v6 = [...this.head6, Math.floor(offset / 65536), offset % 65536].map(hex).join(':');
    return { v4: intToV4(this.base4 + offset), v6 };
  }

  private offsetOf(ip: string): number | undefined {
    const lower = ip.toLowerCase();
    const v4 = lower.startsWith('::ffff:') && isIPv4(lower.slice(7)) ? lower.slice(7) : lower;
    if (!this.contains(v4)) return undefined;
    const offset = isIPv4(v4) ? v4ToInt(v4) - this.base4 : this.offset6(hextets(v4));
    return offset !== undefined && offset >= 1 && offset <= this.slots ? offset : undefined;
  }

  /** Only the last two hextets count; an address of the range differing before them was never given out. */
  private offset6(h: number[]): number | undefined {
    return this.head6.every((x, i) => h[i] === x) ? h[6]! * 65536 + h[7]! : undefined;
  }
}
