/**
 * The runtime control state, as Toxiproxy 2.x defines it: named proxies
 * (listen, upstream, enabled), each with named toxics on its upstream or
 * downstream stream. Pure: no sockets, no timers. Every change is announced
 * as a ControlEvent, so the layers that own live connections (listeners,
 * relays, the tracer's scopes) can apply it without polling the state.
 *
 * Field and attribute names are Toxiproxy's own (snake_case included): they
 * are what its clients send and read back, so the model serialises as is.
 */
import { isIP } from 'node:net';

import { REFUSE_ERRNOS, type RefuseErrno } from '../rules/model.js';

/** Toxiproxy's toxics, which act on the bytes of a connection. */
export const DATA_TOXIC_TYPES = ['latency', 'bandwidth', 'slow_close', 'timeout', 'reset_peer', 'slicer', 'limit_data'] as const;
/**
 * graft's additions: faults on the connect itself (the program's connect
 * fails, or completes later), as its `--fault refuse` and `--fault delay`.
 * Toxiproxy has no such toxic: it cannot fail a connect its client makes.
 */
export const CONNECT_TOXIC_TYPES = ['refuse', 'delay'] as const;
export const TOXIC_TYPES = [...DATA_TOXIC_TYPES, ...CONNECT_TOXIC_TYPES] as const;
export type ToxicType = (typeof TOXIC_TYPES)[number];
export type ConnectToxicType = (typeof CONNECT_TOXIC_TYPES)[number];

export const STREAMS = ['upstream', 'downstream'] as const;
/** upstream: client -> server; downstream: server -> client */
export type Stream = (typeof STREAMS)[number];

/** Each toxic type's attributes, in Toxiproxy's units. */
export interface AttributesOf {
  /** ms; each chunk is held latency ± jitter */
  latency: { readonly latency: number; readonly jitter: number };
  /** KB/s (1000 bytes); 0 means unlimited, as in Toxiproxy */
  bandwidth: { readonly rate: number };
  /** ms the close is held back */
  slow_close: { readonly delay: number };
  /** ms until the connection is closed; 0: data stalls until the toxic goes */
  timeout: { readonly timeout: number };
  /** ms until the connection is reset; 0: at once */
  reset_peer: { readonly timeout: number };
  /** bytes per slice ± variation; delay between slices in µs */
  slicer: { readonly average_size: number; readonly size_variation: number; readonly delay: number };
  /** bytes let through before the connection is closed */
  limit_data: { readonly bytes: number };
  /** graft's: the connect fails with `errno` after `delay` ms */
  refuse: { readonly errno: RefuseErrno; readonly delay: number };
  /** graft's: the connect completes `time` ms later than the destination answered */
  delay: { readonly time: number };
}

/**
 * Marks values that passed this module's checks. It exists only in the
 * types: a Toxic or ProxyConfig is obtained from checkToxic and checkProxy
 * (and frozen there), so an out-of-range attribute or a bad address cannot
 * reach the state or the layers that read it. (A spread copy keeps the
 * mark: only this module makes changed copies, of checked fields.)
 */
declare const checked: unique symbol;
type Checked<T> = T & { readonly [checked]: true };

interface ToxicOf<T extends ToxicType> {
  readonly name: string;
  readonly type: T;
  readonly stream: Stream;
  /** probability, 0 to 1, that the toxic applies to a connection (rolled once per connection) */
  readonly toxicity: number;
  readonly attributes: AttributesOf[T];
}

/** One toxic; `type` decides the shape of `attributes`. */
export type Toxic = Checked<{ [T in ToxicType]: ToxicOf<T> }[ToxicType]>;

export type ProxyConfig = Checked<{
  readonly name: string;
  /** host:port of the listener Toxiproxy opens; port 0 picks one */
  readonly listen: string;
  /** host:port the proxy forwards to; for graft, also the destination it scopes */
  readonly upstream: string;
  readonly enabled: boolean;
}>;

/** A proxy as the API shows it: its config and its toxics, upstream ones first, each stream in order of addition. */
export interface ProxyView extends ProxyConfig {
  readonly toxics: readonly Toxic[];
}

/** What changed; `before`/`after` let a layer see exactly which fields moved. */
export type ControlEvent =
  | { readonly kind: 'proxy-created'; readonly proxy: ProxyConfig }
  /** listen or upstream changed: Toxiproxy restarts the proxy and drops its connections */
  | { readonly kind: 'proxy-updated'; readonly before: ProxyConfig; readonly after: ProxyConfig }
  /** its toxics went with it */
  | { readonly kind: 'proxy-deleted'; readonly proxy: ProxyConfig; readonly toxics: readonly Toxic[] }
  | { readonly kind: 'toxic-added'; readonly proxy: string; readonly toxic: Toxic }
  | { readonly kind: 'toxic-updated'; readonly proxy: string; readonly before: Toxic; readonly after: Toxic }
  | { readonly kind: 'toxic-removed'; readonly proxy: string; readonly toxic: Toxic }
  /** every toxic removed and every proxy enabled, in one step */
  | {
      readonly kind: 'reset';
      readonly enabled: readonly ProxyConfig[];
      readonly removed: readonly { readonly proxy: string; readonly toxic: Toxic }[];
    };

export type ControlListener = (event: ControlEvent) => void;

/** Why a change was refused; api.ts turns each into Toxiproxy's status and message. */
export type Refusal = 'proxy-not-found' | 'proxy-exists' | 'toxic-not-found' | 'toxic-exists';
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly refusal: Refusal };

const ok = <T>(value: T): Outcome<T> => ({ ok: true, value });
const refuse = <T>(refusal: Refusal): Outcome<T> => ({ ok: false, refusal });

// ---- checks -------------------------------------------------------------

/** Node's timers fire at once beyond this many ms, so no duration may exceed it. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

interface Range {
  readonly min: number;
  readonly max: number;
}
/** An attribute that names an errno graft can fail a connect with. */
const ERRNO = 'errno' as const;
type AttributeKind = Range | typeof ERRNO;

/** The tracer holds a connect at most this long (chaos/connect-faults.ts has the same limit for --fault). */
const CONNECT_MS: Range = { min: 0, max: 8000 };
const MS: Range = { min: 0, max: MAX_TIMER_MS };
const COUNT: Range = { min: 0, max: Number.MAX_SAFE_INTEGER };

/** The integer range of every attribute, per type; Toxiproxy's Go fields are all integers. */
const ATTRIBUTE_KINDS: { readonly [T in ToxicType]: { readonly [K in keyof AttributesOf[T]]: AttributesOf[T][K] extends number ? Range : typeof ERRNO } } = {
  latency: { latency: MS, jitter: MS },
  bandwidth: { rate: COUNT },
  slow_close: { delay: MS },
  timeout: { timeout: MS },
  reset_peer: { timeout: MS },
  // average_size 0 would make Toxiproxy's slicer recurse without end
  slicer: { average_size: { min: 1, max: MAX_TIMER_MS }, size_variation: { min: 0, max: MAX_TIMER_MS }, delay: { min: 0, max: MAX_TIMER_MS * 1000 } },
  limit_data: { bytes: COUNT },
  refuse: { errno: ERRNO, delay: CONNECT_MS },
  delay: { time: CONNECT_MS },
};

/** What an absent attribute is: Go's zero value, as Toxiproxy fills one; an errno defaults as --fault refuse does. */
const DEFAULT_ERRNO: RefuseErrno = 'ECONNREFUSED';

export function isToxicType(text: string): text is ToxicType {
  return (TOXIC_TYPES as readonly string[]).includes(text);
}

/** The attribute names of a type, in Toxiproxy's order. */
export function attributeNames(type: ToxicType): readonly string[] {
  return Object.keys(ATTRIBUTE_KINDS[type]);
}

/** Whether attribute `name` of `type` is text (an errno name) rather than a number. */
export function isTextAttribute(type: ToxicType, name: string): boolean {
  return (ATTRIBUTE_KINDS[type] as Readonly<Record<string, AttributeKind>>)[name] === ERRNO;
}

export function isConnectToxic(toxic: Toxic): toxic is Toxic & { readonly type: ConnectToxicType } {
  return (CONNECT_TOXIC_TYPES as readonly string[]).includes(toxic.type);
}

/** Problems are reported as `field: reason`, ready to follow Toxiproxy's "bad request body: ". */
export type Check<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

function checkInteger(field: string, value: number, range: Range): string | undefined {
  if (Number.isInteger(value) && value >= range.min && value <= range.max) return undefined;
  return `${field}: ${value} is not a whole number from ${range.min} to ${range.max}`;
}

/**
 * Attributes for `type`, each from `given` or else 0 (Go's zero value, as
 * Toxiproxy fills a missing attribute), checked against its range.
 */
export function checkAttributes<T extends ToxicType>(type: T, given: Readonly<Record<string, number | string>>): Check<AttributesOf[T]> {
  const kinds: Readonly<Record<string, AttributeKind>> = ATTRIBUTE_KINDS[type];
  const values: Record<string, number | string> = {};
  for (const [name, kind] of Object.entries(kinds)) {
    if (kind === ERRNO) {
      const errno = String(given[name] ?? DEFAULT_ERRNO).toUpperCase();
      if (!(REFUSE_ERRNOS as readonly string[]).includes(errno)) {
        return { ok: false, problem: `attributes.${name}: '${given[name]}' is not an errno graft can fail a connect with (${REFUSE_ERRNOS.join(', ')})` };
      }
      values[name] = errno;
      continue;
    }
    const value = given[name] ?? 0;
    const problem = typeof value === 'number' ? checkInteger(`attributes.${name}`, value, kind) : `attributes.${name}: a number, not '${value}'`;
    if (problem) return { ok: false, problem };
    values[name] = value;
  }
  // Toxiproxy's README: the variation "should be smaller than average_size"; beyond it the slices' bounds go negative
  if (type === 'slicer' && values.size_variation! >= values.average_size!) {
    return { ok: false, problem: 'attributes.size_variation: must be smaller than average_size' };
  }
  return { ok: true, value: values as unknown as AttributesOf[T] };
}

export interface ToxicInput {
  readonly name: string;
  readonly type: ToxicType;
  readonly stream: Stream;
  readonly toxicity: number;
  readonly attributes: Readonly<Record<string, number | string>>;
}

export function checkToxic(input: ToxicInput): Check<Toxic> {
  if (!(input.toxicity >= 0 && input.toxicity <= 1)) return { ok: false, problem: `toxicity: ${input.toxicity} is not from 0 to 1` };
  if (input.name === '') return { ok: false, problem: 'name: empty' };
  const attributes = checkAttributes(input.type, input.attributes);
  if (!attributes.ok) return attributes;
  // in the order Toxiproxy's JSON has them, for clients that compare text
  const toxic = { attributes: Object.freeze(attributes.value), name: input.name, type: input.type, stream: input.stream, toxicity: input.toxicity };
  return { ok: true, value: Object.freeze(toxic) as Toxic };
}

/**
 * `host:port`: host a name, an IPv4 address or a bracketed IPv6 one, and
 * empty only where `emptyHost` (a listener on every address, as Go's
 * net.Listen reads ":8080"). Ports from `minPort` to 65535; no service
 * names ("db:http"), which Go would look up and graft does not.
 */
function checkHostPort(field: string, text: string, minPort: number, emptyHost: boolean): string | undefined {
  const m = /^(?:\[([^\]]*)\]|([\w.-]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < minPort || port > 65535) return `${field}: '${text}' is not host:port (port ${minPort} to 65535)`;
  if (m[1] !== undefined && isIP(m[1]) !== 6) return `${field}: '${m[1]}' in brackets is not an IPv6 address`;
  if (m[2] === '' && !emptyHost) return `${field}: '${text}' has no host`;
  return undefined;
}

/**
 * A checked `host:port` (listen or upstream) in its parts, the brackets of
 * an IPv6 host taken off; the host is '' for a listener on every address.
 */
export function splitHostPort(text: string): { readonly host: string; readonly port: number } {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(at + 1)) };
}

export interface ProxyInput {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  readonly enabled: boolean;
}

export function checkProxy(input: ProxyInput): Check<ProxyConfig> {
  if (input.name === '') return { ok: false, problem: 'name: empty' };
  const problem = checkHostPort('listen', input.listen, 0, true) ?? checkHostPort('upstream', input.upstream, 1, false);
  if (problem) return { ok: false, problem };
  const { name, listen, upstream, enabled } = input;
  return { ok: true, value: Object.freeze({ name, listen, upstream, enabled }) as ProxyConfig };
}

// ---- state --------------------------------------------------------------

interface ProxyEntry {
  config: ProxyConfig;
  /** per stream, in order of addition: Toxiproxy keeps one chain per direction */
  readonly toxics: Record<Stream, Toxic[]>;
}

const emptyChains = (): Record<Stream, Toxic[]> => ({ upstream: [], downstream: [] });
const allToxics = (entry: ProxyEntry): Toxic[] => [...entry.toxics.upstream, ...entry.toxics.downstream];
const view = (entry: ProxyEntry): ProxyView => ({ ...entry.config, toxics: allToxics(entry) });

/** Whether replacing `a` by `b` changes where it listens or forwards (Toxiproxy's Proxy.Differs). */
const differs = (a: ProxyConfig, b: ProxyConfig): boolean => a.listen !== b.listen || a.upstream !== b.upstream;

export class ControlModel {
  private readonly entries = new Map<string, ProxyEntry>();
  private readonly listeners = new Set<ControlListener>();

  /** Calls `listener` after each change, state already updated; returns the unsubscribe. */
  subscribe(listener: ControlListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** All proxies, by name. */
  proxies(): ProxyView[] {
    return [...this.entries.keys()].sort().map((name) => view(this.entries.get(name)!));
  }

  proxy(name: string): ProxyView | undefined {
    const entry = this.entries.get(name);
    return entry && view(entry);
  }

  createProxy(config: ProxyConfig): Outcome<ProxyView> {
    if (this.entries.has(config.name)) return refuse('proxy-exists');
    return ok(this.insert(config));
  }

  /**
   * Gives proxy `config.name` its new listen, upstream and enabled; its
   * toxics stay. A proxy cannot be renamed (Toxiproxy ignores a name in
   * an update body), so the name is also the key.
   */
  updateProxy(config: ProxyConfig): Outcome<ProxyView> {
    const entry = this.entries.get(config.name);
    if (!entry) return refuse('proxy-not-found');
    const before = entry.config;
    entry.config = config;
    this.emit({ kind: 'proxy-updated', before, after: config });
    return ok(view(entry));
  }

  deleteProxy(name: string): Outcome<void> {
    const entry = this.entries.get(name);
    if (!entry) return refuse('proxy-not-found');
    this.entries.delete(name);
    this.emit({ kind: 'proxy-deleted', proxy: entry.config, toxics: allToxics(entry) });
    return ok(undefined);
  }

  /**
   * Toxiproxy's /populate: each proxy is created, or replaces one of its
   * name whose listen or upstream differ (toxics and connections dropped),
   * or leaves an identical one untouched, its toxics and enabled included.
   */
  populate(configs: readonly ProxyConfig[]): ProxyView[] {
    return configs.map((config) => {
      const existing = this.entries.get(config.name);
      if (existing && !differs(existing.config, config)) return view(existing);
      if (existing) this.deleteProxy(config.name);
      return this.insert(config);
    });
  }

  /** Toxic names are unique per proxy across both streams, as in Toxiproxy. */
  addToxic(proxy: string, toxic: Toxic): Outcome<Toxic> {
    const entry = this.entries.get(proxy);
    if (!entry) return refuse('proxy-not-found');
    if (this.find(entry, toxic.name)) return refuse('toxic-exists');
    entry.toxics[toxic.stream].push(toxic);
    this.emit({ kind: 'toxic-added', proxy, toxic });
    return ok(toxic);
  }

  toxic(proxy: string, name: string): Outcome<Toxic> {
    const entry = this.entries.get(proxy);
    if (!entry) return refuse('proxy-not-found');
    const found = this.find(entry, name);
    return found ? ok(found.toxic) : refuse('toxic-not-found');
  }

  /**
   * Replaces the toxic named `toxic.name` (the API changes only toxicity
   * and attributes). It keeps its place in its chain; one moved to the
   * other stream goes to the end of that chain, as if added anew.
   */
  updateToxic(proxy: string, toxic: Toxic): Outcome<Toxic> {
    const entry = this.entries.get(proxy);
    if (!entry) return refuse('proxy-not-found');
    const found = this.find(entry, toxic.name);
    if (!found) return refuse('toxic-not-found');
    if (found.toxic.stream === toxic.stream) found.chain[found.index] = toxic;
    else {
      found.chain.splice(found.index, 1);
      entry.toxics[toxic.stream].push(toxic);
    }
    this.emit({ kind: 'toxic-updated', proxy, before: found.toxic, after: toxic });
    return ok(toxic);
  }

  removeToxic(proxy: string, name: string): Outcome<void> {
    const entry = this.entries.get(proxy);
    if (!entry) return refuse('proxy-not-found');
    const found = this.find(entry, name);
    if (!found) return refuse('toxic-not-found');
    found.chain.splice(found.index, 1);
    this.emit({ kind: 'toxic-removed', proxy, toxic: found.toxic });
    return ok(undefined);
  }

  /** Toxiproxy's /reset: every proxy enabled, every toxic removed. */
  reset(): void {
    const enabled: ProxyConfig[] = [];
    const removed: { proxy: string; toxic: Toxic }[] = [];
    for (const [name, entry] of this.entries) {
      if (!entry.config.enabled) {
        entry.config = Object.freeze({ ...entry.config, enabled: true });
        enabled.push(entry.config);
      }
      for (const toxic of allToxics(entry)) removed.push({ proxy: name, toxic });
      entry.toxics.upstream = [];
      entry.toxics.downstream = [];
    }
    this.emit({ kind: 'reset', enabled, removed });
  }

  /**
   * Records the address a listener actually bound (port 0 made concrete),
   * as Toxiproxy rewrites `listen` once started. No event: the listener
   * layer is the one reporting it.
   */
  recordListen(name: string, listen: string): void {
    const entry = this.entries.get(name);
    if (entry) entry.config = Object.freeze({ ...entry.config, listen });
  }

  private insert(config: ProxyConfig): ProxyView {
    const entry = { config, toxics: emptyChains() };
    this.entries.set(config.name, entry);
    this.emit({ kind: 'proxy-created', proxy: config });
    return view(entry);
  }

  private find(entry: ProxyEntry, name: string): { chain: Toxic[]; index: number; toxic: Toxic } | undefined {
    for (const stream of STREAMS) {
      const chain = entry.toxics[stream];
      const index = chain.findIndex((t) => t.name === name);
      if (index >= 0) return { chain, index, toxic: chain[index]! };
    }
    return undefined;
  }

  /**
   * Every listener hears every event, even when one throws: the state has
   * already changed, and a layer that missed it would drift. The failures
   * are thrown together afterwards, for the caller to report.
   */
  private emit(event: ControlEvent): void {
    const failures: unknown[] = [];
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length) throw new AggregateError(failures, `a control listener failed on ${event.kind}`);
  }
}
