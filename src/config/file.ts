/**
 * graft's config file (YAML): named proxies, rules, egress options, mode,
 * connect timeout, faults and log settings. Every problem is a UsageError
 * naming the file, the line and the field; unknown keys are errors, so a
 * typo never silently changes routing.
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
 *   latency: 50ms            # and every other option's shorthand: seed, refuse, ...
 *
 * This file reads the YAML and says where each value sits; what the values
 * may be is src/settings/schema.ts, the same for the command line.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { Document, Node } from 'yaml';
import { UsageError } from '../errors.js';
import { readSettings, type SettingPath, type SettingsSource } from '../settings/schema.js';
import { readCappedFile } from '../settings/files.js';

/** The yaml package, loaded when a config file is read: most runs have none, and loading it costs start-up time. */
const loadYaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml') as typeof import('yaml');

/** A config file longer than this is refused: it is not one (or it is /dev/zero). */
export const CONFIG_MAX_BYTES = 1 << 20;
/** Alias expansions allowed when reading the YAML: enough for any real file, not for a "billion laughs". */
const MAX_ALIAS_COUNT = 100;

/** --config, else $GRAFT_CONFIG, else the XDG location if it exists. */
export function findConfig(explicit: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (explicit !== undefined) return explicit;
  if (env.GRAFT_CONFIG) return env.GRAFT_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  const path = join(base, 'graft', 'config.yaml');
  return existsSync(path) ? path : undefined;
}

/** Reads and checks a config file (a regular file or a pipe, at most CONFIG_MAX_BYTES). */
export function loadConfig(path: string): SettingsSource {
  return parseConfig(readCappedFile(path, CONFIG_MAX_BYTES, 'config'), path);
}

/** Checks a config file's text; `path` names it in messages. */
export function parseConfig(text: string, path: string): SettingsSource {
  const yaml = loadYaml();
  const lines = new yaml.LineCounter();
  // failsafe: every scalar stays the text the user wrote (0x10, 1e3, yes), read by graft's own parsers
  const doc = yaml.parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, schema: 'failsafe' });
  const lineOf = (offset: number): number => lines.linePos(offset).line;
  // warnings too: an unknown tag (!custom) would otherwise be dropped silently
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length) {
    const e = problems[0]!;
    // the parser recurses per level: a file nested deeper than its stack says so in V8's words
    const why = /Maximum call stack size exceeded/.test(e.message) ? 'nested too deeply for a config file' : e.message.split('\n')[0];
    throw new UsageError(`${path}:${lineOf(e.pos[0])}: not valid YAML: ${why}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // the yaml package throws on alias bombs and on aliases it cannot resolve
    throw new UsageError(`${path}: not a usable YAML document: ${(err as Error).message.split('\n')[0]}`);
  }
  return readSettings(raw ?? {}, locator(path, doc, lineOf));
}

/** Names a place in the file: "config.yaml:7: rules[1]", by the line its key (or item) is on. */
function locator(path: string, doc: Document, lineOf: (offset: number) => number): (at: SettingPath) => string {
  const yaml = loadYaml();
  return (at) => {
    let node: unknown = doc.contents;
    let offset = doc.contents?.range?.[0];
    for (const key of at) {
      if (yaml.isMap(node)) {
        const pair = node.items.find((p) => (yaml.isScalar(p.key) ? String(p.key.value) : undefined) === String(key));
        offset = (pair?.key as Node | undefined)?.range?.[0] ?? offset;
        node = pair?.value;
      } else if (yaml.isSeq(node) && typeof key === 'number') {
        node = node.items[key];
        offset = (node as Node | undefined)?.range?.[0] ?? offset;
      } else break;
    }
    const field = at.map((k, i) => (typeof k === 'number' ? `[${k}]` : i ? `.${k}` : k)).join('');
    return `${path}${offset !== undefined ? `:${lineOf(offset)}` : ''}${field ? `: ${field}` : ''}`;
  };
}
