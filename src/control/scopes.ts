/**
 * graft's meaning of a Toxiproxy proxy: a scope. Its `upstream` selects the
 * connections that go to that destination (the program's, through the
 * tracer and the proxy path, and those its own listener accepts), its
 * toxics act on them, and disabling it refuses new connects and cuts the
 * open ones. This module keeps every relayed connection, works out its
 * scope and toxics, and applies each change of the model to the open ones
 * at once (setToxics is synchronous: the next bytes see it).
 */
import net from 'node:net';
import type { LiveToxic } from '../chaos/live.js';
import type { Random } from '../chaos/random.js';
import type { ToxicSpec } from '../chaos/toxics.js';
import { canonicalName } from '../dns/pattern.js';
import type { RelayToxics, Relaying } from '../proxy/relay.js';
import type { RefuseErrno } from '../rules/model.js';
import { isConnectToxic, splitHostPort, type ControlModel, type ProxyView, type Toxic } from './model.js';

/** Where a program's connection goes, as graft knows it. */
export interface Destination {
  readonly ip: string;
  readonly port: number;
  /** the name graft answered the program's DNS with this address for */
  readonly name?: string;
}

/** What becomes of a new connect in a scope. */
export type Admission =
  | { readonly kind: 'refuse'; readonly errno: RefuseErrno; readonly delayMs: number; readonly scope: string; readonly fault: string }
  /** `delayMs`: the connect completes that much later (delay toxics); `faults`: those that applied, as written */
  | { readonly kind: 'go'; readonly delayMs: number; readonly scope: string | undefined; readonly faults: readonly string[] };

/** A connection the scopes keep toxics on until it is released. */
export interface Tracked {
  /** the toxics now: give them to relay() so nothing flows before they apply */
  toxics(): RelayToxics;
  /** the relay is running: later changes go to it */
  attach(relaying: Relaying): void;
  /** the proxy it is in now, if any */
  scope(): string | undefined;
  /** the connection ended: no more changes; returns what its record says */
  release(): { readonly scope: string | undefined; readonly faults: readonly string[] };
}

/** A toxic of the model as the relay's stage spec; undefined where it does nothing (bandwidth 0: unlimited, as in Toxiproxy). */
export function stageSpec(toxic: Toxic): ToxicSpec | undefined {
  switch (toxic.type) {
    case 'latency':
      return { type: 'latency', latencyMs: toxic.attributes.latency, jitterMs: toxic.attributes.jitter };
    case 'bandwidth':
      return toxic.attributes.rate > 0 ? { type: 'bandwidth', bytesPerSecond: toxic.attributes.rate * 1000 } : undefined;
    case 'slow_close':
      return { type: 'slow_close', delayMs: toxic.attributes.delay };
    case 'timeout':
      return { type: 'timeout', timeMs: toxic.attributes.timeout };
    case 'reset_peer':
      return { type: 'reset_peer', timeMs: toxic.attributes.timeout };
    case 'slicer':
      // Toxiproxy's delay is in microseconds
      return {
        type: 'slicer',
        averageSize: toxic.attributes.average_size,
        sizeVariation: toxic.attributes.size_variation,
        delayMs: toxic.attributes.delay / 1000,
      };
    case 'limit_data':
      return { type: 'limit_data', bytes: toxic.attributes.bytes };
    case 'refuse':
    case 'delay':
      return undefined;
  }
}

/** A toxic as records show it: `proxy/name: type key=value ...`. */
export function toxicText(proxy: string, toxic: Toxic): string {
  const attributes = Object.entries(toxic.attributes).map(([k, v]) => `${k}=${String(v)}`);
  const toxicity = toxic.toxicity < 1 ? [`toxicity=${toxic.toxicity}`] : [];
  const stream = isConnectToxic(toxic) ? [] : [`stream=${toxic.stream}`];
  return [`${proxy}/${toxic.name}:`, toxic.type, ...attributes, ...stream, ...toxicity].join(' ');
}

/** `host:port` of an upstream, the host canonical (an address as Node writes it, a name lower-case). */
function upstreamOf(proxy: ProxyView): { readonly host: string; readonly port: number } {
  const { host, port } = splitHostPort(proxy.upstream);
  return { host: canonicalHost(host), port };
}

function canonicalHost(host: string): string {
  if (net.isIPv6(host)) return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  if (net.isIPv4(host)) return host;
  return canonicalName(host) ?? host.toLowerCase();
}

interface Connection {
  /** the program's destination; undefined for one a proxy's listener accepted */
  readonly destination: Destination | undefined;
  /** a listener's proxy: its scope whatever the destination */
  readonly fixedScope: string | undefined;
  /** toxics of graft's own (--toxic), which stay whatever the scope */
  readonly own: RelayToxics;
  scope: string | undefined;
  relaying?: Relaying;
  /** the dice rolled for each of its scope's toxics (toxicity), once per toxic and value */
  readonly rolls: Map<string, boolean>;
  /** what applied to it, as written, for its record */
  readonly faults: Set<string>;
  /** the last scope it was in, for its record */
  lastScope: string | undefined;
}

const NONE: RelayToxics = { up: [], down: [] };

export class Scopes {
  private readonly connections = new Set<Connection>();
  /** upstreams(), until proxies change */
  private parsed: readonly { readonly name: string; readonly host: string; readonly port: number }[] | undefined;

  constructor(
    private readonly model: ControlModel,
    private readonly random: Random,
  ) {
    model.subscribe((event) => {
      const proxiesMoved = event.kind === 'proxy-updated' || event.kind === 'proxy-created' || event.kind === 'proxy-deleted';
      if (proxiesMoved) this.parsed = undefined;
      this.changed(proxiesMoved);
    });
  }

  /** The proxy whose upstream is this destination: the first by name when several are. */
  scopeOf(destination: Destination): ProxyView | undefined {
    const ip = canonicalHost(destination.ip);
    const name = destination.name !== undefined ? canonicalName(destination.name) : undefined;
    const found = this.upstreams().find((u) => u.port === destination.port && (u.host === ip || (name !== undefined && u.host === name)));
    return found && this.model.proxy(found.name);
  }

  /**
   * Every proxy's upstream, parsed and canonical, by name: worked out once
   * after proxies change, not on every connect (each is matched against
   * them up to three times).
   */
  private upstreams(): readonly { readonly name: string; readonly host: string; readonly port: number }[] {
    this.parsed ??= this.model.proxies().map((p) => ({ name: p.name, ...upstreamOf(p) }));
    return this.parsed;
  }

  /** A new connect of the program: refused by a disabled scope or a refuse toxic, delayed by delay toxics, or let through. */
  admit(destination: Destination): Admission {
    return this.admitTo(this.scopeOf(destination));
  }

  /**
   * The disabled proxy this destination is in now, if it is: a connect let
   * through before its proxy was disabled, and still dialing then, is
   * refused as it completes (the program's connect has not succeeded yet).
   */
  disabledFor(destination: Destination): string | undefined {
    const proxy = this.scopeOf(destination);
    return proxy && !proxy.enabled ? proxy.name : undefined;
  }

  /** A connection the listener of proxy `name` accepted, as admit() decides a program's connect. */
  admitListener(name: string): Admission {
    return this.admitTo(this.model.proxy(name));
  }

  private admitTo(proxy: ProxyView | undefined): Admission {
    if (!proxy) return { kind: 'go', delayMs: 0, scope: undefined, faults: [] };
    if (!proxy.enabled) return { kind: 'refuse', errno: 'ECONNREFUSED', delayMs: 0, scope: proxy.name, fault: `${proxy.name}: disabled` };
    let delayMs = 0;
    const faults: string[] = [];
    for (const toxic of proxy.toxics) {
      if (!isConnectToxic(toxic) || !this.roll(toxic.toxicity)) continue;
      if (toxic.type === 'refuse') {
        return { kind: 'refuse', errno: toxic.attributes.errno, delayMs: toxic.attributes.delay, scope: proxy.name, fault: toxicText(proxy.name, toxic) };
      }
      delayMs += toxic.attributes.time;
      faults.push(toxicText(proxy.name, toxic));
    }
    return { kind: 'go', delayMs, scope: proxy.name, faults };
  }

  /**
   * Keeps a connection from now until released. `own`: graft's start-time
   * toxics for it; `listener`: the proxy whose listener accepted it.
   */
  track(destination: Destination | undefined, own: RelayToxics = NONE, listener?: string): Tracked {
    const c: Connection = { destination, fixedScope: listener, own, scope: undefined, rolls: new Map(), faults: new Set(), lastScope: undefined };
    this.rescope(c);
    this.connections.add(c);
    return {
      toxics: () => this.toxicsOf(c),
      scope: () => c.scope,
      attach: (relaying) => {
        c.relaying = relaying;
      },
      release: () => {
        this.connections.delete(c);
        delete c.relaying;
        return { scope: c.lastScope, faults: [...c.faults] };
      },
    };
  }

  /** How many connections are relayed now (the bench and tests read it). */
  get size(): number {
    return this.connections.size;
  }

  /**
   * After any change: every open connection's scope (when proxies came,
   * went or moved) and toxics set anew; those in a disabled scope cut.
   */
  private changed(proxiesMoved: boolean): void {
    for (const c of this.connections) {
      if (proxiesMoved) this.rescope(c);
      const proxy = c.scope !== undefined ? this.model.proxy(c.scope) : undefined;
      if (c.fixedScope !== undefined && !proxy) {
        // Toxiproxy stops a deleted proxy's connections with it
        c.relaying?.cut(`cut: proxy ${c.fixedScope} was deleted`);
        continue;
      }
      if (proxy && !proxy.enabled) {
        c.relaying?.cut(`cut: proxy ${proxy.name} was disabled`);
        continue;
      }
      c.relaying?.setToxics(this.toxicsOf(c));
    }
  }

  private rescope(c: Connection): void {
    c.scope = c.fixedScope ?? (c.destination ? this.scopeOf(c.destination)?.name : undefined);
    if (c.scope !== undefined) c.lastScope = c.scope;
  }

  /** graft's own toxics, then the scope's, per stream in the order they were added. */
  private toxicsOf(c: Connection): RelayToxics {
    const proxy = c.scope !== undefined ? this.model.proxy(c.scope) : undefined;
    if (!proxy) return c.own;
    const up = [...c.own.up];
    const down = [...c.own.down];
    for (const toxic of proxy.toxics) {
      const spec = stageSpec(toxic);
      if (!spec || !this.rolled(c, proxy.name, toxic)) continue;
      const live: LiveToxic = { key: `api:${proxy.name}/${toxic.name}`, spec };
      (toxic.stream === 'upstream' ? up : down).push(live);
      c.faults.add(toxicText(proxy.name, toxic));
    }
    return { up, down };
  }

  /** Toxiproxy rolls toxicity once per connection; a changed toxic is rolled anew. */
  private rolled(c: Connection, proxy: string, toxic: Toxic): boolean {
    const key = `${proxy}/${toxic.name}/${toxic.toxicity}/${JSON.stringify(toxic.attributes)}`;
    let applies = c.rolls.get(key);
    if (applies === undefined) {
      applies = this.roll(toxic.toxicity);
      c.rolls.set(key, applies);
    }
    return applies;
  }

  private roll(toxicity: number): boolean {
    return toxicity >= 1 || (toxicity > 0 && this.random() < toxicity);
  }
}
