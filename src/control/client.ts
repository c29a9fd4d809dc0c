/**
 * A typed client of the control API (Toxiproxy 2.x's, plus graft's
 * additions), over either transport: HTTP to a running graft (TCP or unix
 * socket), or the handler itself in the same process (tests, embedding).
 * `graft ctl` (ctl.ts) is its command-line face.
 */
import type { IncomingMessage } from 'node:http';
import { iterate } from '../record-stream.js';
import type { ApiHandler, RulesView } from './api.js';
import type { Stream } from './model.js';
import { formatControlAddress, loadHttp, type ControlAddress } from './server.js';

export { formatControlAddress } from './server.js';

/**
 * A toxic as the API's JSON shows it: model.ts's Toxic without its brand
 * (nothing this side checked it), and open to graft's extra types, whose
 * attributes may be strings (an errno name).
 */
export interface Toxic {
  readonly name: string;
  readonly type: string;
  readonly stream: Stream;
  readonly toxicity: number;
  readonly attributes: Readonly<Record<string, number | string>>;
}

/** A proxy as the API's JSON shows it (model.ts's ProxyView, unbranded). */
export interface ProxyView {
  readonly name: string;
  readonly listen: string;
  readonly upstream: string;
  readonly enabled: boolean;
  readonly toxics: readonly Toxic[];
}

/** GET /rules (graft's): the rules in force, in order, and how names are answered. */
export type { RulesView } from './api.js';

/** One line of GET /records (graft's): `{"event":"open",...}`, `{"event":"connection",...}`, `{"event":"refused",...}` */
export type ControlRecord = Readonly<Record<string, unknown>> & { readonly event: string };

export interface NewProxy {
  readonly name: string;
  readonly upstream: string;
  readonly listen?: string;
  readonly enabled?: boolean;
}

export interface ProxyChange {
  readonly upstream?: string;
  readonly listen?: string;
  readonly enabled?: boolean;
}

export interface NewToxic {
  readonly type: string;
  readonly name?: string;
  readonly stream?: Stream;
  readonly toxicity?: number;
  readonly attributes?: Readonly<Record<string, number | string>>;
}

export interface ToxicChange {
  readonly toxicity?: number;
  readonly attributes?: Readonly<Record<string, number | string>>;
}

export interface Transport {
  request(method: string, path: string, body?: string): Promise<{ status: number; body: string }>;
  /** a response that goes on (GET /records): its body's chunks as they come; ends when the server ends it */
  follow(path: string): AsyncIterable<string>;
}

/** The API refused: its status and Toxiproxy's error text (`{"error": …, "status": …}`). */
export class ControlError extends Error {
  override readonly name = 'ControlError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Nothing answers at the address (refused, no socket file, unreachable). */
export class ControlUnreachable extends Error {
  override readonly name = 'ControlUnreachable';
  constructor(
    /** the address as `--control` takes it: `HOST:PORT` or `unix:PATH` */
    readonly address: string,
    readonly code: string,
  ) {
    super(`nothing answers at ${address} (${code})`);
  }
}

/** The error an answer of `status` carries; undefined for a 2xx. */
function refusal(status: number, body: string): ControlError | undefined {
  if (status >= 200 && status < 300) return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string') return new ControlError(status, parsed.error);
  } catch {
    // not Toxiproxy's shape: the text itself
  }
  return new ControlError(status, body.trim() || `HTTP ${status}`);
}

/** Errors of a connect that found nobody, rather than one that broke off. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ETIMEDOUT', 'ENOTSOCK']);

/**
 * node:http to the address. It sends no User-Agent and no Origin (the API
 * refuses what looks like a browser), and a new connection per request.
 */
export function httpTransport(address: ControlAddress): Transport {
  const target = address.kind === 'unix' ? { socketPath: address.path } : { host: address.host, port: address.port };
  const text = formatControlAddress(address);

  const open = (method: string, path: string, body: string | undefined): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = { accept: 'application/json' };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const req = loadHttp().request({ ...target, method, path, headers, agent: false }, resolve);
      req.once('error', (err: NodeJS.ErrnoException) => reject(err.code && UNREACHABLE.has(err.code) ? new ControlUnreachable(text, err.code) : err));
      req.end(body);
    });

  const readAll = async (res: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };

  return {
    async request(method, path, body) {
      const res = await open(method, path, body);
      return { status: res.statusCode ?? 0, body: await readAll(res) };
    },
    async *follow(path) {
      const res = await open('GET', path, undefined);
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) throw refusal(status, await readAll(res))!;
      res.setEncoding('utf8');
      try {
        for await (const chunk of res) yield chunk as string;
      } catch (err) {
        // the server went (graft ended, closing its connections): the stream's end, not a failure
        if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET') throw err;
      } finally {
        // the consumer left early: end the connection (the server stops following)
        res.destroy();
      }
    },
  };
}

/** The handler called in this process, as a server would call it; follow-on responses through ApiResponse.follow. */
export function handlerTransport(handler: ApiHandler): Transport {
  return {
    async request(method, path, body) {
      const response = await handler(method, path, {}, body ?? '');
      // a follow-on response asked for with request(): its first part only
      if (response.follow)
        response.follow(
          () => {},
          () => {},
        )();
      return { status: response.status, body: response.body };
    },
    async *follow(path) {
      const response = await handler('GET', path, {}, '');
      const error = refusal(response.status, response.body);
      if (error) throw error;
      if (response.body) yield response.body;
      const follow = response.follow;
      if (!follow) return;
      let ended: () => void = () => {};
      const end = new Promise<void>((resolve) => (ended = resolve));
      yield* iterate<string>({ subscribe: (push) => follow(push, ended), ended: end });
    },
  };
}

/** Splits a stream of text chunks into lines, however the chunks cut them; a last line without a newline is kept. */
export async function* lines(chunks: AsyncIterable<string>): AsyncIterable<string> {
  let partial = '';
  for await (const chunk of chunks) {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    for (const line of parts) yield line.endsWith('\r') ? line.slice(0, -1) : line;
  }
  if (partial) yield partial;
}

const segment = encodeURIComponent;

export class ControlClient {
  constructor(private readonly transport: Transport) {}

  /** The answer's JSON; a refusal as ControlError. */
  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const reply = await this.transport.request(method, path, body === undefined ? undefined : JSON.stringify(body));
    const error = refusal(reply.status, reply.body);
    if (error) throw error;
    return (reply.body.trim() === '' ? undefined : JSON.parse(reply.body)) as T;
  }

  async version(): Promise<string> {
    return (await this.call<{ version: string }>('GET', '/version')).version;
  }

  /** Every proxy, sorted by name (the API answers an object keyed by name). */
  async proxies(): Promise<ProxyView[]> {
    const all = await this.call<Record<string, ProxyView>>('GET', '/proxies');
    return Object.values(all).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  proxy(name: string): Promise<ProxyView> {
    return this.call('GET', `/proxies/${segment(name)}`);
  }

  createProxy(p: NewProxy): Promise<ProxyView> {
    return this.call('POST', '/proxies', p);
  }

  updateProxy(name: string, p: ProxyChange): Promise<ProxyView> {
    return this.call('POST', `/proxies/${segment(name)}`, p);
  }

  setEnabled(name: string, enabled: boolean): Promise<ProxyView> {
    return this.updateProxy(name, { enabled });
  }

  async deleteProxy(name: string): Promise<void> {
    await this.call('DELETE', `/proxies/${segment(name)}`);
  }

  /** Creates or replaces every proxy of the list, or (a bad entry) none. */
  async populate(list: readonly NewProxy[]): Promise<ProxyView[]> {
    return (await this.call<{ proxies: ProxyView[] }>('POST', '/populate', list)).proxies;
  }

  toxics(proxy: string): Promise<Toxic[]> {
    return this.call('GET', `/proxies/${segment(proxy)}/toxics`);
  }

  addToxic(proxy: string, t: NewToxic): Promise<Toxic> {
    return this.call('POST', `/proxies/${segment(proxy)}/toxics`, t);
  }

  updateToxic(proxy: string, name: string, t: ToxicChange): Promise<Toxic> {
    return this.call('POST', `/proxies/${segment(proxy)}/toxics/${segment(name)}`, t);
  }

  async removeToxic(proxy: string, name: string): Promise<void> {
    await this.call('DELETE', `/proxies/${segment(proxy)}/toxics/${segment(name)}`);
  }

  /** Every toxic removed, every proxy enabled. */
  async reset(): Promise<void> {
    await this.call('POST', '/reset');
  }

  rules(): Promise<RulesView> {
    return this.call('GET', '/rules');
  }

  /** The record stream's lines as the server sent them (ndjson), split however the chunks came. */
  recordLines(): AsyncIterable<string> {
    return lines(this.transport.follow('/records'));
  }

  /** The record stream, one record per ndjson line, until the server ends it or the caller stops iterating. */
  async *records(): AsyncIterable<ControlRecord> {
    for await (const line of this.recordLines()) {
      if (line.trim() !== '') yield JSON.parse(line) as ControlRecord;
    }
  }
}
