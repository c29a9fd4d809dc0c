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
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Node, Pair } from 'yaml';

/** The yaml package, loaded when a config file is read: most runs have none, and loading it costs start-up time. */
const yaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml') as typeof import('yaml');
import { UsageError } from '../errors.js';
import { LOG_LEVELS, type LogLevel, type ModeChoice } from '../plan.js';
import type { Rule } from '../rules/model.js';
import { parseRule } from '../rules/parse.js';
import { parseDuration, parseMark } from '../units.js';
import { parseProxyUrl, type UpstreamProxy } from '../upstream/url.js';
import { parseToxic, type ScopedToxic } from '../chaos/parse.js';
import { parseConnectFault, type ConnectFault } from '../chaos/connect-faults.js';

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

export function parseConfig(text: string, path: string): ConfigSettings {
  const { isMap, isScalar, isSeq, LineCounter, parseDocument } = yaml();
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const at = (node: Node | Pair | null | undefined): string => {
    const range = node && 'range' in node ? node.range : node && 'key' in node ? (node.key as Node | null)?.range : undefined;
    return range ? `${path}:${lines.linePos(range[0]).line}` : path;
  };
  const bad = (node: Node | Pair | null | undefined, field: string, why: string): never => {
    throw new UsageError(`${at(node)}: ${field}: ${why}`);
  };
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new UsageError(`${path}:${lines.linePos(e.pos[0]).line}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return { path, chains: new Map(), rules: [], sources: [], toxics: [], connectFaults: [] };
  if (!isMap(root)) return bad(root, 'config', 'the file must be a mapping of settings (proxies, rules, ...)');

  const str = (node: unknown, field: string): string => {
    if (!isScalar(node) || (typeof node.value !== 'string' && typeof node.value !== 'number')) return bad(node as Node, field, 'must be a string');
    return String(node.value);
  };
  const urls = (node: unknown, field: string): UpstreamProxy[] => {
    const items = isSeq(node) ? node.items : [node];
    if (!items.length) bad(node as Node, field, 'an empty chain');
    return items.map((n, i) => {
      const where = `${at(n as Node)}: ${field}${isSeq(node) ? `[${i}]` : ''}`;
      return parseProxyUrl(str(n, field), where);
    });
  };

  const chains = new Map<string, readonly UpstreamProxy[]>();
  let proxy: readonly UpstreamProxy[] | undefined;
  let rules: Rule[] = [];
  let toxics: ScopedToxic[] = [];
  let connectFaults: ConnectFault[] = [];
  /** a list of strings, each parsed with its file:line as origin */
  const list = <T>(pair: Pair, value: Node | null, key: string, parse: (text: string, origin: string) => T): T[] => {
    if (!isSeq(value)) bad(pair, key, 'must be a list of strings');
    return (value as { items: unknown[] }).items.map((n, i) => parse(str(n, `${key}[${i}]`), `${at(n as Node)}: ${key}[${i}]`));
  };
  let mark: number | undefined;
  let iface: string | undefined;
  let sources: string[] = [];
  let mode: ModeChoice | undefined;
  let connectTimeoutMs: number | undefined;
  let logFile: string | undefined;
  let logLevel: LogLevel | undefined;
  let proxyNode: Node | undefined;

  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    const value = pair.value as Node | null;
    switch (key) {
      case 'proxies':
        if (!isMap(value)) bad(pair, 'proxies', 'must map names to proxy URLs (or lists of them, for a chain)');
        for (const p of (value as { items: Pair[] }).items) {
          const name = isScalar(p.key) ? String(p.key.value) : '';
          if (!/^[A-Za-z0-9_.-]+$/.test(name)) bad(p, `proxies.${name}`, 'a proxy name is letters, digits, ., _ and -');
          chains.set(name, urls(p.value, `proxies.${name}`));
        }
        break;
      case 'proxy':
        proxyNode = value ?? undefined;
        break;
      case 'rules':
        if (!isSeq(value)) bad(pair, 'rules', "must be a list of 'MATCH ACTION' strings");
        rules = (value as { items: unknown[] }).items.map((n, i) => {
          try {
            return parseRule(str(n, `rules[${i}]`), `${at(n as Node)}: rules[${i}]`);
          } catch (err) {
            throw err instanceof UsageError ? err : new UsageError(`${at(n as Node)}: rules[${i}]: ${String(err)}`);
          }
        });
        break;
      case 'toxics':
        toxics = list(pair, value, 'toxics', parseToxic);
        break;
      case 'faults':
        connectFaults = list(pair, value, 'faults', parseConnectFault);
        break;
      case 'mark': {
        const m = parseMark(str(value, 'mark'));
        if (m === undefined) bad(value, 'mark', 'not a 32-bit mark (decimal or 0x hex)');
        mark = m;
        break;
      }
      case 'interface':
        iface = str(value, 'interface');
        break;
      case 'source':
        sources = (isSeq(value) ? value.items : [value]).map((n) => {
          const s = str(n, 'source');
          if (!isIP(s)) bad(n as Node, 'source', `'${s}' is not an IP address`);
          return s;
        });
        break;
      case 'mode': {
        const m = str(value, 'mode');
        if (!['auto', 'proxy', 'inplace'].includes(m)) bad(value, 'mode', `'${m}' is not auto, proxy or inplace`);
        mode = m as ModeChoice;
        break;
      }
      case 'connect-timeout':
        try {
          connectTimeoutMs = parseDuration(str(value, 'connect-timeout'), 'connect-timeout');
        } catch (err) {
          bad(value, 'connect-timeout', (err as Error).message.replace(/^connect-timeout: /, ''));
        }
        break;
      case 'log':
        if (!isMap(value)) bad(pair, 'log', 'must be a mapping with file and/or level');
        for (const p of (value as { items: Pair[] }).items) {
          const k = isScalar(p.key) ? String(p.key.value) : '';
          if (k === 'file') logFile = str(p.value, 'log.file');
          else if (k === 'level') {
            const l = str(p.value, 'log.level');
            if (!(LOG_LEVELS as readonly string[]).includes(l)) bad(p.value as Node, 'log.level', `'${l}' is not one of ${LOG_LEVELS.join(', ')}`);
            logLevel = l as LogLevel;
          } else bad(p, `log.${k}`, `unknown key (known: ${LOG_KEYS.join(', ')})`);
        }
        break;
      default:
        bad(pair, key, `unknown key (known: ${TOP_KEYS.join(', ')})`);
    }
  }
  if (proxyNode !== undefined) {
    if (isScalar(proxyNode) && typeof proxyNode.value === 'string' && !proxyNode.value.includes('://')) {
      proxy = chains.get(proxyNode.value) ?? bad(proxyNode, 'proxy', `no proxy named '${proxyNode.value}' under proxies`);
    } else {
      proxy = urls(proxyNode, 'proxy');
    }
  }
  return {
    path,
    chains,
    ...(proxy ? { proxy } : {}),
    rules,
    ...(mark !== undefined ? { mark } : {}),
    ...(iface !== undefined ? { interface: iface } : {}),
    sources,
    toxics,
    connectFaults,
    ...(mode !== undefined ? { mode } : {}),
    ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    ...(logFile !== undefined ? { logFile } : {}),
    ...(logLevel !== undefined ? { logLevel } : {}),
  };
}
