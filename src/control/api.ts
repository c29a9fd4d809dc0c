/**
 * Toxiproxy 2.x's HTTP API as a pure function of one request: no sockets,
 * so every path, status and body can be tested without a server, and the
 * server (server.ts) only moves bytes. Paths, methods, status codes and
 * messages follow Toxiproxy's api.go (gorilla/mux routes, ApiError values);
 * where graft differs, the comment at the spot says so and why.
 *
 * graft's additions, on paths Toxiproxy does not have: GET /records (the
 * record stream, ndjson, open until the client goes) and GET /rules (the
 * rules in force); and the connect toxics `refuse` and `delay` (model.ts).
 */
import { decodeNewProxy, decodeNewToxic, decodePopulate, decodeProxyUpdate, decodeToxicUpdate, checkNewToxic, parseJson } from './decode.js';
import { MESSAGES, refusalError, type ApiError, type Result } from './errors.js';
import type { ControlModel, Outcome, ProxyConfig, ProxyView } from './model.js';

export type RequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface ApiResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /**
   * A response that goes on after `body` (graft's record stream): called
   * once with a writer for each further chunk and a function that ends the
   * response; returns the function that stops it when the client leaves.
   */
  readonly follow?: Follow;
}

export type Follow = (write: (chunk: string) => void, end: () => void) => () => void;

/**
 * Requests are answered one at a time, in arrival order: a change that
 * opens a listener is awaited before the next request sees the state.
 */
export type ApiHandler = (method: string, path: string, headers: RequestHeaders, body: Buffer | string) => Promise<ApiResponse>;

/**
 * Toxiproxy reads bodies without a limit; graft caps them, since a control
 * request is a few hundred bytes and the server shares a process with the
 * connections it controls. Beyond it: 413.
 */
export const MAX_BODY_BYTES = 1 << 20;

/** The Toxiproxy release whose API this one follows; clients may compare it. */
export const TOXIPROXY_VERSION = '2.12.0';

/** The rules in force, as GET /rules shows them. */
export interface RulesView {
  /** who answers the program's DNS: remote, local or off */
  readonly dns: string;
  /** first match wins; graft's own rules (DNS, fake addresses) included */
  readonly rules: readonly { readonly index: number; readonly text: string; readonly origin: string; readonly action: string }[];
}

/**
 * The real listeners of proxies (Toxiproxy's own job), kept apart so the
 * API stays testable without sockets.
 */
export interface ListenerLayer {
  /**
   * Makes proxy `after`'s listener (none when undefined or disabled)
   * replace `before`'s. Resolves with the address it listens on (a port 0
   * made concrete), or the error to answer: Toxiproxy answers a listen
   * that fails with 500 and leaves the state as it was.
   */
  change(before: ProxyConfig | undefined, after: ProxyConfig | undefined): Promise<Result<string | undefined>>;
}

export interface ApiOptions {
  /** what GET /version reports; Toxiproxy's by default */
  readonly version?: string;
  readonly listeners?: ListenerLayer;
  /** GET /records: subscribes a writer of records (each one JSON object) and the stream's end, returns the unsubscribe */
  readonly records?: (write: (record: object) => void, end: () => void) => () => void;
  /** GET /rules */
  readonly rules?: () => RulesView;
}

/** Without a listener layer (the API alone, in tests): nothing listens, `listen` stays as given. */
const NO_LISTENERS: ListenerLayer = { change: (_, after) => Promise.resolve({ ok: true, value: after?.listen }) };

// ---- responses ------------------------------------------------------------

const JSON_TYPE = 'application/json';

const json = (status: number, value: unknown): ApiResponse => ({ status, headers: { 'content-type': JSON_TYPE }, body: JSON.stringify(value) });

/** Go's http.Error, which Toxiproxy answers errors with, ends the body with a newline. */
const errorResponse = (error: ApiError, extra: Record<string, string> = {}): ApiResponse => ({
  status: error.status,
  headers: { 'content-type': JSON_TYPE, ...extra },
  body: `${JSON.stringify({ error: error.error, status: error.status })}\n`,
});

const noContent: ApiResponse = { status: 204, headers: {}, body: '' };

export const tooLarge = (): ApiResponse => errorResponse({ error: `request body larger than ${MAX_BODY_BYTES} bytes`, status: 413 });

/** A model refusal as its ApiError; `then` continues with the value. */
function outcome<T>(result: Outcome<T>, then: (value: T) => ApiResponse): ApiResponse {
  return result.ok ? then(result.value) : errorResponse(refusalError(result.refusal));
}

/** GET /records: one JSON object per line from now on, for as long as the client stays (without a source: none ever come). */
function recordStream(source: ApiOptions['records']): ApiResponse {
  return {
    status: 200,
    headers: { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' },
    body: '',
    follow: (write, end) => (source ? source((record) => write(`${JSON.stringify(record)}\n`), end) : () => {}),
  };
}

// ---- requests -------------------------------------------------------------

function header(headers: RequestHeaders, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return typeof value === 'string' ? value : value?.[0];
  }
  return undefined;
}

/**
 * A web page could otherwise drive the API from a browser on the same
 * machine. Toxiproxy refuses a `Mozilla/` User-Agent; graft also refuses
 * any request with an Origin header, which browsers send on cross-site
 * requests and command-line clients do not.
 */
function fromBrowser(headers: RequestHeaders): boolean {
  return (header(headers, 'user-agent') ?? '').startsWith('Mozilla/') || header(headers, 'origin') !== undefined;
}

/**
 * The path's segments, percent-decoded as Go decodes URL.Path before
 * gorilla/mux matches it (so "a%2Fb" becomes two segments, as there).
 * Undefined for a malformed escape.
 */
function segments(path: string): string[] | undefined {
  const bare = path.split(/[?#]/, 1)[0]!;
  try {
    return decodeURIComponent(bare).split('/').slice(1);
  } catch {
    return undefined;
  }
}

// ---- routes ---------------------------------------------------------------

interface Params {
  readonly proxy: string;
  readonly toxic: string;
}
type Action = (params: Params, body: string) => ApiResponse | Promise<ApiResponse>;

interface Route {
  /** literal segments, or ":proxy" / ":toxic" for one non-empty segment */
  readonly pattern: readonly string[];
  readonly methods: Readonly<Record<string, Action>>;
}

function match(pattern: readonly string[], parts: readonly string[]): Params | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params = { proxy: '', toxic: '' };
  for (const [i, want] of pattern.entries()) {
    const part = parts[i]!;
    if (want === ':proxy' || want === ':toxic') {
      if (part === '') return undefined;
      params[want === ':proxy' ? 'proxy' : 'toxic'] = part;
    } else if (want !== part) return undefined;
  }
  return params;
}

/** The body parsed and decoded; a failure of either is the 400 to answer. */
function decodeBody<T>(body: string, decode: (value: unknown) => Result<T>): Result<T> {
  const parsed = parseJson(body);
  return parsed.ok ? decode(parsed.value) : parsed;
}

/** Makes a decoded change to the model and answers its result with `status`; or answers why not. */
function apply<T, U>(decoded: Result<T>, change: (value: T) => Outcome<U>, status: number): ApiResponse {
  return decoded.ok ? outcome(change(decoded.value), (value) => json(status, value)) : errorResponse(decoded.error);
}

function routes(model: ControlModel, options: ApiOptions): Route[] {
  const listeners = options.listeners ?? NO_LISTENERS;
  /**
   * Moves the listener from `before` to `after`, then makes the change and
   * records where it listens (a port 0 made concrete). A listen that fails
   * changes nothing: its error is returned, to answer.
   */
  const moveListener = async (
    before: ProxyConfig | undefined,
    after: ProxyConfig | undefined,
    change: () => Outcome<unknown>,
  ): Promise<ApiError | undefined> => {
    const listening = await listeners.change(before, after);
    if (!listening.ok) return listening.error;
    const changed = change();
    if (!changed.ok) return refusalError(changed.refusal);
    if (after && listening.value !== undefined && listening.value !== after.listen) model.recordListen(after.name, listening.value);
    return undefined;
  };
  /** The proxy as it now is, or the error the move gave. */
  const answerMoved = (error: ApiError | undefined, name: string, status: number): ApiResponse =>
    error ? errorResponse(error) : json(status, model.proxy(name));
  // Toxiproxy looks the proxy (and toxic) up before it reads a body: 404 wins over 400
  const withProxy = (name: string, then: (proxy: ProxyView) => ApiResponse | Promise<ApiResponse>): ApiResponse | Promise<ApiResponse> => {
    const proxy = model.proxy(name);
    return proxy ? then(proxy) : errorResponse(refusalError('proxy-not-found'));
  };

  const updateProxy: Action = ({ proxy }, body) =>
    withProxy(proxy, (current) => {
      const decoded = decodeBody(body, (value) => decodeProxyUpdate(current, value));
      if (!decoded.ok) return errorResponse(decoded.error);
      return moveListener(current, decoded.value, () => model.updateProxy(decoded.value)).then((error) => answerMoved(error, proxy, 200));
    });

  const createProxy: Action = (_, body) => {
    const decoded = decodeBody(body, decodeNewProxy);
    if (!decoded.ok) return errorResponse(decoded.error);
    if (model.proxy(decoded.value.name)) return errorResponse(refusalError('proxy-exists'));
    const config = decoded.value;
    return moveListener(undefined, config, () => model.createProxy(config)).then((error) => answerMoved(error, config.name, 201));
  };

  const deleteProxy: Action = ({ proxy }) =>
    withProxy(proxy, (current) => moveListener(current, undefined, () => model.deleteProxy(proxy)).then((error) => (error ? errorResponse(error) : noContent)));

  /** Each entry as model.populate treats it (kept when the same, else replaced), its listener moved first. */
  const populate: Action = async (_, body) => {
    const decoded = decodeBody(body, decodePopulate);
    if (!decoded.ok) return errorResponse(decoded.error);
    for (const config of decoded.value) {
      const current = model.proxy(config.name);
      if (current && current.listen === config.listen && current.upstream === config.upstream) continue;
      const error = await moveListener(current, config, () => ({ ok: true, value: model.populate([config]) }));
      if (error) return errorResponse(error);
    }
    return json(201, { proxies: decoded.value.map((c) => model.proxy(c.name)) });
  };

  /**
   * Every proxy enabled (its listener opened) and every toxic removed. A
   * listen that fails answers 500 and stops there; the proxies enabled
   * before it stay enabled, so the state says what listens.
   */
  const reset: Action = async () => {
    for (const current of model.proxies().filter((p) => !p.enabled)) {
      const enabled = { ...current, enabled: true };
      const error = await moveListener(current, enabled, () => model.updateProxy(enabled));
      if (error) return errorResponse(error);
    }
    model.reset();
    return noContent;
  };

  const createToxic: Action = ({ proxy }, body) =>
    withProxy(proxy, () => {
      const input = decodeBody(body, decodeNewToxic);
      // ... and a duplicate name (409) wins over bad attributes
      if (input.ok && model.toxic(proxy, input.value.name).ok) return errorResponse(refusalError('toxic-exists'));
      // Toxiproxy answers a new toxic with 200, not 201
      return apply(input.ok ? checkNewToxic(input.value) : input, (toxic) => model.addToxic(proxy, toxic), 200);
    });

  const updateToxic: Action = ({ proxy, toxic }, body) =>
    outcome(model.toxic(proxy, toxic), (current) =>
      apply(
        decodeBody(body, (value) => decodeToxicUpdate(current, value)),
        (next) => model.updateToxic(proxy, next),
        200,
      ),
    );

  return [
    // Go formats this one by hand: a space after the colon and a newline
    {
      pattern: ['version'],
      methods: {
        GET: () => ({
          status: 200,
          headers: { 'content-type': `${JSON_TYPE};charset=utf-8` },
          body: `{"version": ${JSON.stringify(options.version ?? TOXIPROXY_VERSION)}}\n`,
        }),
      },
    },
    { pattern: ['reset'], methods: { POST: reset } },
    {
      pattern: ['proxies'],
      methods: {
        GET: () => json(200, Object.fromEntries(model.proxies().map((p) => [p.name, p]))),
        POST: createProxy,
      },
    },
    // a bad list was refused whole while decoding
    { pattern: ['populate'], methods: { POST: populate } },
    // graft's additions
    {
      pattern: ['rules'],
      methods: { GET: () => (options.rules ? json(200, options.rules()) : json(200, { dns: 'off', rules: [] } satisfies RulesView)) },
    },
    { pattern: ['records'], methods: { GET: () => recordStream(options.records) } },
    {
      pattern: ['proxies', ':proxy'],
      methods: {
        GET: ({ proxy }) => withProxy(proxy, (view) => json(200, view)),
        // Toxiproxy takes POST (deprecated there) and PATCH alike
        POST: updateProxy,
        PATCH: updateProxy,
        DELETE: deleteProxy,
      },
    },
    {
      pattern: ['proxies', ':proxy', 'toxics'],
      methods: {
        GET: ({ proxy }) => withProxy(proxy, (view) => json(200, view.toxics)),
        POST: createToxic,
      },
    },
    {
      pattern: ['proxies', ':proxy', 'toxics', ':toxic'],
      methods: {
        GET: ({ proxy, toxic }) => outcome(model.toxic(proxy, toxic), (found) => json(200, found)),
        POST: updateToxic,
        PATCH: updateToxic,
        DELETE: ({ proxy, toxic }) => outcome(model.removeToxic(proxy, toxic), () => noContent),
      },
    },
  ];
}

function dispatch(table: readonly Route[], method: string, path: string, body: string): ApiResponse | Promise<ApiResponse> {
  const parts = segments(path);
  if (!parts) return errorResponse({ error: `malformed path: ${path}`, status: 400 });
  for (const route of table) {
    const params = match(route.pattern, parts);
    if (!params) continue;
    const action = route.methods[method];
    // gorilla/mux answers a known path with another method 405
    if (!action) return errorResponse({ error: `method ${method} not allowed`, status: 405 }, { allow: Object.keys(route.methods).join(', ') });
    return action(params, body);
  }
  return errorResponse({ error: `no such path: ${path}`, status: 404 });
}

/**
 * The handler. It never throws: the only failure left once input is
 * checked is a layer's listener failing on a change, which is answered
 * 500, as Toxiproxy answers errors that carry no status.
 */
export function createApiHandler(model: ControlModel, options: ApiOptions = {}): ApiHandler {
  const table = routes(model, options);
  let previous: Promise<unknown> = Promise.resolve();
  const answer = async (method: string, path: string, headers: RequestHeaders, body: Buffer | string): Promise<ApiResponse> => {
    try {
      // Toxiproxy's stopBrowsersMiddleware runs before routing: any path
      if (fromBrowser(headers)) return errorResponse({ error: MESSAGES.browser, status: 403 });
      const size = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
      if (size > MAX_BODY_BYTES) return tooLarge();
      return await dispatch(table, method, path, typeof body === 'string' ? body : body.toString('utf8'));
    } catch (err) {
      return errorResponse({ error: err instanceof Error ? err.message : String(err), status: 500 });
    }
  };
  return (...request) => {
    const response = previous.then(() => answer(...request));
    previous = response;
    return response;
  };
}
