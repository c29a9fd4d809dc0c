/**
 * graft's config file (YAML): named proxies, rules, egress options, mode,
 * connect timeout and log settings. Every problem is a UsageError naming the
 * file, the line and the field; unknown keys are errors, so a typo never
 * silently changes routing.
 *
 *   proxies:                 # named upstream proxies: a URL or a chain
 *     corp: socks5://user:pass@proxy.example:1080
 *     twohop: [http://a.example:3128, socks5://b.example:1080]
 *   proxy: corp              # the default chain: a name, a URL or a list
 *   rules:                   # first match wins, after any --rule
 *     - 10.0.0.0/8 interface eth1
 *     - all proxy corp
 *   mark: 0x10               # egress options, as --mark/--interface/--source
 *   interface: wg0
 *   source: [192.0.2.10, 2001:db8::10]
 *   mode: auto
 *   connect-timeout: 5s
 *   log: { file: /var/log/graft.ndjson, level: info }
 *   toxics:                  # data faults, as --toxic
 *     - latency latency=200ms on 198.51.100.0/24
 *   faults:                  # connect faults, as --fault
 *     - refuse errno=ETIMEDOUT probability=0.1
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { LineCounter, Node, Pair, ParsedNode } from 'yaml';
import { UsageError } from '../errors.js';
import { LOG_LEVELS, type LogLevel, type ModeChoice } from '../plan.js';
import type { Rule } from '../rules/model.js';
import { parseRule } from '../rules/parse.js';
import { parseDuration, parseMark } from '../units.js';
import { parseProxyUrl, type UpstreamProxy } from '../upstream/url.js';
import { parseToxic, type ScopedToxic } from '../chaos/parse.js';
import { parseConnectFault, type ConnectFault } from '../chaos/connect-faults.js';

/** The yaml package, loaded when a config file is read: most runs have none, and loading it costs start-up time. */
const loadYaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml') as typeof import('yaml');

export interface ConfigSettings {
  readonly path: string;
  readonly chains: ReadonlyMap<string, readonly UpstreamProxy[]>;
  /** the default chain, resolved */
  readonly proxy?: readonly UpstreamProxy[];
  readonly rules: readonly Rule[];
  readonly mark?: number;
  readonly interface?: string;
  readonly sources: readonly string[];
  readonly mode?: ModeChoice;
  readonly connectTimeoutMs?: number;
  readonly logFile?: string;
  readonly logLevel?: LogLevel;
  readonly toxics: readonly ScopedToxic[];
  readonly connectFaults: readonly ConnectFault[];
}

const TOP_KEYS = ['proxies', 'proxy', 'rules', 'toxics', 'faults', 'mark', 'interface', 'source', 'mode', 'connect-timeout', 'log'] as const;
const LOG_KEYS = ['file', 'level'] as const;

/** --config, else $GRAFT_CONFIG, else the XDG location if it exists. */
export function findConfig(explicit: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (explicit !== undefined) return explicit;
  if (env.GRAFT_CONFIG) return env.GRAFT_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  const path = join(base, 'graft', 'config.yaml');
  return existsSync(path) ? path : undefined;
}

export function loadConfig(path: string): ConfigSettings {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`config ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return parseConfig(text, path);
}

type Yaml = typeof import('yaml');
type Where = Node | Pair | null | undefined;

/** A config file's nodes: reads scalars and lists out of them, and names their file:line in every error. */
class ConfigNodes {
  constructor(
    readonly yaml: Yaml,
    private readonly path: string,
    private readonly lines: LineCounter,
  ) {}

  /** "file:line" of a node (a pair: of its key), or the file alone */
  at(node: Where): string {
    const range = node && 'range' in node ? node.range : node && 'key' in node ? (node.key as Node | null)?.range : undefined;
    return range ? `${this.path}:${this.lines.linePos(range[0]).line}` : this.path;
  }

  bad(node: Where, field: string, why: string): never {
    throw new UsageError(`${this.at(node)}: ${field}: ${why}`);
  }

  str(node: unknown, field: string): string {
    const { isScalar } = this.yaml;
    if (!isScalar(node) || (typeof node.value !== 'string' && typeof node.value !== 'number')) return this.bad(node as Node, field, 'must be a string');
    return String(node.value);
  }

  /** one proxy URL, or a list of them (a chain) */
  urls(node: unknown, field: string): UpstreamProxy[] {
    const { isSeq } = this.yaml;
    const items = isSeq(node) ? node.items : [node];
    if (!items.length) this.bad(node as Node, field, 'an empty chain');
    return items.map((n, i) => {
      const where = `${this.at(n as Node)}: ${field}${isSeq(node) ? `[${i}]` : ''}`;
      return parseProxyUrl(this.str(n, field), where);
    });
  }

  /** a list of strings, each parsed with its file:line as origin */
  list<T>(pair: Pair, value: Node | null, key: string, parse: (text: string, origin: string) => T): T[] {
    if (!this.yaml.isSeq(value)) return this.bad(pair, key, 'must be a list of strings');
    return value.items.map((n, i) => parse(this.str(n, `${key}[${i}]`), `${this.at(n as Node)}: ${key}[${i}]`));
  }

  /** the pairs of a mapping, or an error naming what it must map */
  pairs(pair: Pair, value: Node | null, key: string, must: string): Pair[] {
    if (!this.yaml.isMap(value)) return this.bad(pair, key, must);
    return value.items;
  }

  keyOf(pair: Pair): string {
    return this.yaml.isScalar(pair.key) ? String(pair.key.value) : '';
  }
}

/** The settings as they are read, before the default proxy is resolved. */
interface Draft {
  chains: Map<string, readonly UpstreamProxy[]>;
  proxyNode?: Node;
  rules: readonly Rule[];
  mark?: number;
  interface?: string;
  sources: readonly string[];
  mode?: ModeChoice;
  connectTimeoutMs?: number;
  logFile?: string;
  logLevel?: LogLevel;
  toxics: readonly ScopedToxic[];
  connectFaults: readonly ConnectFault[];
}

type TopKey = (typeof TOP_KEYS)[number];

/** How each top-level key is read into the draft. */
const SECTIONS: Record<TopKey, (c: ConfigNodes, pair: Pair, value: Node | null, draft: Draft) => void> = {
  proxies(c, pair, value, draft) {
    for (const p of c.pairs(pair, value, 'proxies', 'must map names to proxy URLs (or lists of them, for a chain)')) {
      const name = c.keyOf(p);
      if (!/^[A-Za-z0-9_.-]+$/.test(name)) c.bad(p, `proxies.${name}`, 'a proxy name is letters, digits, ., _ and -');
      draft.chains.set(name, c.urls(p.value, `proxies.${name}`));
    }
  },
  proxy(_c, _pair, value, draft) {
    // resolved once every named proxy is known
    if (value) draft.proxyNode = value;
  },
  rules(c, pair, value, draft) {
    if (!c.yaml.isSeq(value)) return c.bad(pair, 'rules', "must be a list of 'MATCH ACTION' strings");
    draft.rules = value.items.map((n, i) => {
      try {
        return parseRule(c.str(n, `rules[${i}]`), `${c.at(n as Node)}: rules[${i}]`);
      } catch (err) {
        throw err instanceof UsageError ? err : new UsageError(`${c.at(n as Node)}: rules[${i}]: ${String(err)}`);
      }
    });
  },
  toxics(c, pair, value, draft) {
    draft.toxics = c.list(pair, value, 'toxics', parseToxic);
  },
  faults(c, pair, value, draft) {
    draft.connectFaults = c.list(pair, value, 'faults', parseConnectFault);
  },
  mark(c, _pair, value, draft) {
    const m = parseMark(c.str(value, 'mark'));
    if (m === undefined) return c.bad(value, 'mark', 'not a 32-bit mark (decimal or 0x hex)');
    draft.mark = m;
  },
  interface(c, _pair, value, draft) {
    draft.interface = c.str(value, 'interface');
  },
  source(c, _pair, value, draft) {
    draft.sources = (c.yaml.isSeq(value) ? value.items : [value]).map((n) => {
      const s = c.str(n, 'source');
      if (!isIP(s)) c.bad(n as Node, 'source', `'${s}' is not an IP address`);
      return s;
    });
  },
  mode(c, _pair, value, draft) {
    const m = c.str(value, 'mode');
    if (!['auto', 'proxy', 'inplace'].includes(m)) c.bad(value, 'mode', `'${m}' is not auto, proxy or inplace`);
    draft.mode = m as ModeChoice;
  },
  'connect-timeout'(c, _pair, value, draft) {
    try {
      draft.connectTimeoutMs = parseDuration(c.str(value, 'connect-timeout'), 'connect-timeout');
    } catch (err) {
      c.bad(value, 'connect-timeout', (err as Error).message.replace(/^connect-timeout: /, ''));
    }
  },
  log(c, pair, value, draft) {
    for (const p of c.pairs(pair, value, 'log', 'must be a mapping with file and/or level')) {
      const k = c.keyOf(p);
      if (k === 'file') draft.logFile = c.str(p.value, 'log.file');
      else if (k === 'level') draft.logLevel = logLevel(c, p);
      else c.bad(p, `log.${k}`, `unknown key (known: ${LOG_KEYS.join(', ')})`);
    }
  },
};

function logLevel(c: ConfigNodes, p: Pair): LogLevel {
  const l = c.str(p.value, 'log.level');
  if (!(LOG_LEVELS as readonly string[]).includes(l)) c.bad(p.value as Node, 'log.level', `'${l}' is not one of ${LOG_LEVELS.join(', ')}`);
  return l as LogLevel;
}

const isTopKey = (key: string): key is TopKey => (TOP_KEYS as readonly string[]).includes(key);

/** The default chain: a name under proxies, or URLs. */
function defaultProxy(c: ConfigNodes, node: Node, chains: ReadonlyMap<string, readonly UpstreamProxy[]>): readonly UpstreamProxy[] {
  if (c.yaml.isScalar(node) && typeof node.value === 'string' && !node.value.includes('://')) {
    return chains.get(node.value) ?? c.bad(node, 'proxy', `no proxy named '${node.value}' under proxies`);
  }
  return c.urls(node, 'proxy');
}

/** Parses the YAML, failing on its first syntax error. */
function parseYaml(text: string, path: string): { c: ConfigNodes; root: ParsedNode | null } {
  const yaml = loadYaml();
  const lines = new yaml.LineCounter();
  const doc = yaml.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new UsageError(`${path}:${lines.linePos(e.pos[0]).line}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  return { c: new ConfigNodes(yaml, path, lines), root: doc.contents };
}

export function parseConfig(text: string, path: string): ConfigSettings {
  const { c, root } = parseYaml(text, path);
  const draft: Draft = { chains: new Map(), rules: [], sources: [], toxics: [], connectFaults: [] };
  if (root === null || (c.yaml.isScalar(root) && root.value === null)) return settingsOf(c, path, draft);
  if (!c.yaml.isMap(root)) return c.bad(root, 'config', 'the file must be a mapping of settings (proxies, rules, ...)');
  for (const pair of root.items) {
    const key = c.keyOf(pair);
    if (!isTopKey(key)) return c.bad(pair, key, `unknown key (known: ${TOP_KEYS.join(', ')})`);
    SECTIONS[key](c, pair, pair.value, draft);
  }
  return settingsOf(c, path, draft);
}

function settingsOf(c: ConfigNodes, path: string, d: Draft): ConfigSettings {
  const proxy = d.proxyNode !== undefined ? defaultProxy(c, d.proxyNode, d.chains) : undefined;
  return {
    path,
    chains: d.chains,
    ...(proxy ? { proxy } : {}),
    rules: d.rules,
    ...(d.mark !== undefined ? { mark: d.mark } : {}),
    ...(d.interface !== undefined ? { interface: d.interface } : {}),
    sources: d.sources,
    toxics: d.toxics,
    connectFaults: d.connectFaults,
    ...(d.mode !== undefined ? { mode: d.mode } : {}),
    ...(d.connectTimeoutMs !== undefined ? { connectTimeoutMs: d.connectTimeoutMs } : {}),
    ...(d.logFile !== undefined ? { logFile: d.logFile } : {}),
    ...(d.logLevel !== undefined ? { logLevel: d.logLevel } : {}),
  };
}
