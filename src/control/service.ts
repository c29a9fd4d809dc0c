/**
 * The control API put together: the model, the scopes that act on relayed
 * connections, the proxies' own listeners, the request handler and, when an
 * address is given, the HTTP server. One per run of graft (or `graft serve`).
 */
import type { Logger } from 'pino';
import type { Random } from '../chaos/random.js';
import type { ConnectionLog } from '../records.js';
import { createApiHandler, type ApiHandler, type RulesView } from './api.js';
import { Listeners } from './listeners.js';
import { ControlModel } from './model.js';
import { Scopes } from './scopes.js';
import { formatControlAddress, startControlServer, type ControlAddress, type ControlServer } from './server.js';
import { UsageError } from '../errors.js';

export interface ControlOptions {
  /** where the API listens; absent: only this process calls it (runGraft's handle) */
  readonly address?: ControlAddress;
  readonly connections: ConnectionLog;
  readonly random: Random;
  readonly logger: Logger;
  /** the rules in force, for GET /rules; absent: none (graft serve) */
  readonly rules?: () => RulesView;
}

export interface Control {
  readonly scopes: Scopes;
  /** the API, callable in this process */
  readonly handler: ApiHandler;
  /** where the API listens (`HOST:PORT` with the port bound, or `unix:PATH`), when it does */
  readonly address: string | undefined;
  /** stops the API and the listeners, ends the record streams and every listener's connection */
  close(): Promise<void>;
}

/** The API's server; an address it cannot listen on is the user's to fix (a UsageError: exit 2). */
async function listen(address: ControlAddress, handler: ApiHandler): Promise<ControlServer> {
  try {
    return await startControlServer(address, handler);
  } catch (err) {
    throw new UsageError(`--control ${formatControlAddress(address)}: cannot listen: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export async function startControl(opts: ControlOptions): Promise<Control> {
  const model = new ControlModel();
  const scopes = new Scopes(model, opts.random);
  const listeners = new Listeners({ scopes, connections: opts.connections, random: opts.random, logger: opts.logger });
  /** the record streams' ends, called when graft stops */
  const streams = new Set<() => void>();
  const handler = createApiHandler(model, {
    listeners,
    records: (write, end) => {
      const unfollow = opts.connections.follow(write);
      const stop = (): void => {
        unfollow();
        streams.delete(finish);
      };
      // ended by graft: nothing is written after the end
      const finish = (): void => {
        stop();
        end();
      };
      streams.add(finish);
      return stop;
    },
    ...(opts.rules ? { rules: opts.rules } : {}),
  });
  const server = opts.address ? await listen(opts.address, handler) : undefined;
  let closing: Promise<void> | undefined;
  return {
    scopes,
    handler,
    address: server?.address,
    close: () =>
      (closing ??= (async () => {
        // the listeners' connections get their records first, and the streams carry them
        await listeners.close();
        for (const end of [...streams]) end();
        await server?.close();
      })()),
  };
}
