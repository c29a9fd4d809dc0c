/**
 * What Toxiproxy itself does with a proxy: listen on its `listen` address
 * and forward each client to `upstream`, through the proxy's toxics. With
 * these, `graft serve` is a Toxiproxy server, and under `graft -- program`
 * a proxy's address is also there for clients that are configured to use it.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { formatEndpoint } from '../address.js';
import type { Random } from '../chaos/random.js';
import { relay, type Relaying } from '../proxy/relay.js';
import type { ConnectionLog } from '../records.js';
import type { ListenerLayer } from './api.js';
import { failure, success, type Result } from './errors.js';
import { splitHostPort, type ProxyConfig } from './model.js';
import type { Scopes } from './scopes.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Running {
  readonly config: ProxyConfig;
  readonly server: net.Server;
  /** every socket of its connections, the clients' and the upstream ones */
  readonly sockets: Set<net.Socket>;
  readonly relays: Set<Relaying>;
  /** each client being served, until its record is written */
  readonly serving: Set<Promise<void>>;
  /** set when it stops: a client still dialing or delayed gives up */
  stopped: boolean;
}

export interface ListenerOptions {
  readonly scopes: Scopes;
  readonly connections: ConnectionLog;
  readonly random: Random;
  readonly logger: Logger;
}

export class Listeners implements ListenerLayer {
  private readonly running = new Map<string, Running>();
  private closed = false;

  constructor(private readonly opts: ListenerOptions) {}

  async change(before: ProxyConfig | undefined, after: ProxyConfig | undefined): Promise<Result<string | undefined>> {
    if (this.closed) return failure(503, 'graft is shutting down');
    const same = before && after && before.enabled === after.enabled && before.listen === after.listen && before.upstream === after.upstream;
    if (same) return success(this.running.get(after.name)?.config.listen ?? after.listen);
    // Toxiproxy stops the old listener (and its connections) before it starts the new one
    if (before) await this.stop(before.name);
    if (!after?.enabled) return success(after?.listen);
    try {
      return success(await this.start(after));
    } catch (err) {
      // as Toxiproxy answers a listen that fails: 500, the state left as it was
      if (before?.enabled) await this.start(before).catch(() => undefined);
      return failure(500, `listen tcp ${after.listen}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }

  /** Stops every listener and ends every connection (graft exits). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.running.keys()].map((name) => this.stop(name)));
  }

  private start(config: ProxyConfig): Promise<string> {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
    const { host, port } = splitHostPort(config.listen);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, ...(host !== '' ? { host } : {}) }, () => {
        server.off('error', reject);
        if (this.closed) {
          // graft stopped while this listen was under way: nobody would close it
          server.close();
          reject(new Error('graft is shutting down'));
          return;
        }
        const bound = server.address() as net.AddressInfo;
        const listen = formatEndpoint(host === '' ? '' : bound.address, bound.port);
        const running: Running = { config: { ...config, listen }, server, sockets: new Set(), relays: new Set(), serving: new Set(), stopped: false };
        this.running.set(config.name, running);
        server.on('connection', (client) => {
          const serving = this.serve(running, client);
          running.serving.add(serving);
          void serving.finally(() => running.serving.delete(serving));
        });
        server.on('error', (err) => this.opts.logger.warn({ err, proxy: config.name }, 'control: listener failed'));
        this.opts.logger.info({ proxy: config.name, listen, upstream: config.upstream }, `control: proxy ${config.name} listens on ${listen}`);
        resolve(listen);
      });
    });
  }

  /** Stops listening and ends its connections; resolves once each has its record. */
  private async stop(name: string): Promise<void> {
    const running = this.running.get(name);
    if (!running) return;
    this.running.delete(name);
    running.stopped = true;
    for (const r of running.relays) r.cut(`cut: proxy ${name} stopped listening`);
    for (const s of running.sockets) s.destroy();
    await Promise.all([new Promise<void>((resolve) => running.server.close(() => resolve())), ...running.serving]);
  }

  /** One client: the proxy's connect toxics, the dial to upstream, then the relay through its toxics. */
  private async serve(running: Running, client: net.Socket): Promise<void> {
    const { config, sockets } = running;
    const keep = (s: net.Socket): void => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {}); // reported through the relay's result
    };
    keep(client);
    const started = Date.now();
    const clientEnd = formatEndpoint(client.remoteAddress ?? '', client.remotePort ?? 0);
    const base = { event: 'connection', action: 'listener', proxy: config.name, client: clientEnd, dst: config.upstream } as const;
    /** the record of a client that was never relayed */
    const unserved = (error: string, faults?: readonly string[]): void =>
      this.opts.connections.record({ ...base, ...(faults ? { faults } : {}), bytesUp: 0, bytesDown: 0, durationMs: Date.now() - started, error });
    const admission = this.opts.scopes.admitListener(config.name);
    if (admission.delayMs > 0) await sleep(admission.delayMs);
    if (running.stopped || client.destroyed) {
      client.destroy();
      return unserved('the proxy stopped before the upstream was dialed');
    }
    if (admission.kind === 'refuse') {
      // a client that already connected cannot be refused: the nearest is a reset
      client.resetAndDestroy();
      return unserved(`reset: ${admission.fault}`, [admission.fault]);
    }
    const upstream = net.connect({ ...splitHostPort(config.upstream), allowHalfOpen: true });
    keep(upstream);
    const dialed = await new Promise<string | undefined>((resolve) => {
      upstream.once('connect', () => resolve(undefined));
      upstream.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      // destroyed while connecting (the proxy stopped): neither of the above comes
      upstream.once('close', () => resolve('the proxy stopped while the upstream was dialed'));
    });
    if (dialed !== undefined || client.destroyed || running.stopped) {
      // Toxiproxy closes the client when the upstream cannot be reached
      client.destroy();
      upstream.destroy();
      return unserved(`upstream: ${dialed ?? 'the client left'}`);
    }
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    const tracked = this.opts.scopes.track(undefined, undefined, config.name);
    const relaying = relay(client, upstream, [], tracked.toxics(), this.opts.random);
    tracked.attach(relaying);
    running.relays.add(relaying);
    client.resume();
    this.opts.connections.opened({ event: 'open', action: 'listener', dst: config.upstream, proxy: config.name, client: clientEnd });
    const result = await relaying.done;
    running.relays.delete(relaying);
    const { faults } = tracked.release();
    const applied = [...admission.faults, ...faults];
    this.opts.connections.record({
      ...base,
      ...(applied.length ? { faults: applied } : {}),
      bytesUp: result.bytesUp,
      bytesDown: result.bytesDown,
      durationMs: Date.now() - started,
      ...(result.error !== undefined ? { error: result.error } : {}),
    });
  }
}
