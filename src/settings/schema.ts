/**
 * Every setting graft takes, defined once: its config-file key, its
 * command-line flag, and how its value is checked and read. The command
 * line (src/cli.ts) and the config file (src/config/file.ts) both hand
 * their raw values to `readSettings`, so the two cannot disagree about
 * what is valid. A problem comes back as one UsageError line naming where
 * the value came from (`--connect-timeout` or `config.yaml:7:
 * connect-timeout`), the value, and what would be accepted.
 *
 * The schema is valibot's: a small library (its import costs ~5 ms where
 * zod's costs ~60 ms, and start-up is measured) that checks the shape of
 * whatever the YAML holds (mappings, lists, scalars, unknown keys) and
 * names the path of each problem. The values themselves are read by
 * graft's own parsers (rules, toxics, faults, proxy URLs, durations).
 */
import * as v from 'valibot';
import { UsageError } from '../errors.js';
import { addressFamily, notAnAddress } from '../address.js';
import { DNS_MODES, LOG_LEVELS, type LogLevel, type ModeChoice } from '../plan.js';
import { parseRule } from '../rules/parse.js';
import { latencyShorthand, parseToxic } from '../chaos/parse.js';
import { parseConnectFault, refuseShorthand } from '../chaos/connect-faults.js';
import { parseControlAddress } from '../control/server.js';
import { isDnsFaultRule, isDnsFaultText, parseDnsFault, parseDnsFaultRule } from '../chaos/dns-faults.js';
import { parseProxyUrl, type UpstreamProxy } from '../upstream/url.js';
import { INTERFACE_HINT, isInterfaceName, MAX_DURATION_TEXT, parseDuration, parseMark } from '../units.js';

/** Where a value sits: top-level key, then nested keys or list indexes. */
export type SettingPath = readonly (string | number)[];
/** Names a place for messages and origins: "--rule 2", "config.yaml:7: rules[1]". */
export type Locate = (path: SettingPath) => string;

/** A command-line flag and the setting it sets. */
export interface FlagSpec {
  readonly path: SettingPath;
  readonly flag: string;
  readonly arg: string;
  readonly help: string;
  /** given once per value (a list), numbered in messages: "--rule 2" */
  readonly repeat?: true;
  /** only for running a program (not for `graft rules explain`) */
  readonly runOnly?: true;
}

export const MODES: readonly ModeChoice[] = ['auto', 'proxy', 'inplace'];
export const MAX_SEED = 0xffffffff;

/** The flags, in --help order; each names its config key by `path`. */
export const FLAGS: readonly FlagSpec[] = [
  {
    path: ['proxy'],
    flag: '--proxy',
    arg: '<url>',
    repeat: true,
    help: 'send connections through this upstream proxy: socks5://[user:pass@]host:port, socks4://, socks4a://, http:// (CONNECT), or a name under proxies: in the config; repeat for a chain',
  },
  {
    path: ['rules'],
    flag: '--rule',
    arg: '<rule>',
    repeat: true,
    help: "'MATCH ACTION': how matching destinations go (repeatable, first match wins; see README)",
  },
  { path: ['mark'], flag: '--mark', arg: '<value>', help: 'set SO_MARK on every outgoing connection (decimal or 0x hex)' },
  { path: ['interface'], flag: '--interface', arg: '<name>', help: 'send every outgoing connection out of this interface (SO_BINDTODEVICE)' },
  { path: ['source'], flag: '--source', arg: '<address>', repeat: true, help: 'leave from this local address (once per family: IPv4 and/or IPv6)' },
  {
    path: ['mode'],
    flag: '--mode',
    arg: '<mode>',
    help: "auto|proxy|inplace: where egress options act: on the program's own sockets (inplace) or on graft's proxy (proxy); auto (default): inplace when nothing needs the proxy",
  },
  {
    path: ['dns'],
    flag: '--dns',
    arg: '<mode>',
    help: "remote|local|off: graft answers the program's DNS, with fake addresses for names that go through a proxy (remote) or every name's real answer (local); default: remote when the default route is a proxy or a rule names a host, else off",
  },
  {
    path: ['fake-range'],
    flag: '--fake-range',
    arg: '<cidr>',
    repeat: true,
    help: 'the fake addresses --dns remote answers with (one IPv4 and one IPv6 range; default 198.18.0.0/15 and fd67:7261:6674::/64)',
  },
  { path: ['latency'], flag: '--latency', arg: '<delay>', help: 'fault: delay data from destinations by this much, e.g. 200ms or 200ms±50ms' },
  { path: ['bandwidth'], flag: '--bandwidth', arg: '<rate>', help: 'fault: limit data from destinations to this rate, e.g. 1MB/s, 512KiB/s, 8Mbit/s' },
  { path: ['reset-after'], flag: '--reset-after', arg: '<duration>', help: 'fault: reset every connection after this long (the program sees ECONNRESET)' },
  { path: ['toxics'], flag: '--toxic', arg: '<toxic>', repeat: true, help: "fault, full form: 'TYPE key=value... [on MATCH]' (repeatable; see README)" },
  {
    path: ['refuse'],
    flag: '--refuse',
    arg: '<errno[@p]>',
    help: 'fault: connects fail with this errno (ECONNREFUSED, ETIMEDOUT, ...), with probability p if given',
  },
  {
    path: ['faults'],
    flag: '--fault',
    arg: '<fault>',
    repeat: true,
    help: "connect fault, full form: 'refuse errno=E [delay=D] [probability=P|first=N|every=N|after=N] [on MATCH]' or 'delay time=D ...'; DNS fault: 'nxdomain|servfail|noanswer|dnsdelay time=D ... [on NAME]'",
  },
  { path: ['seed'], flag: '--seed', arg: '<n>', help: `seed for probabilistic faults (0-${MAX_SEED}): the same seed gives the same faults` },
  {
    path: ['connect-timeout'],
    flag: '--connect-timeout',
    arg: '<duration>',
    help: "fail a proxied connect with ETIMEDOUT after this long (default: as the network would, e.g. the kernel's SYN retries; e.g. 500ms, 5s)",
  },
  {
    path: ['control'],
    flag: '--control',
    arg: '<addr>',
    help: 'serve the Toxiproxy-compatible control API on PORT (loopback), HOST:PORT or unix:PATH; every direct connection is then relayed, so faults can be changed while the program runs (see docs/control-api.md)',
  },
  { path: ['log', 'file'], flag: '--log-file', arg: '<path>', runOnly: true, help: 'write one JSON record per connection (ndjson) to this file' },
  {
    path: ['log', 'level'],
    flag: '--log-level',
    arg: '<level>',
    runOnly: true,
    help: `${LOG_LEVELS.join('|')}: threshold for the log file and -v (default info)`,
  },
];

/** The message of a UsageError from one of graft's parsers; anything else is a bug and goes on up. */
function usageMessage(err: unknown): string {
  if (err instanceof UsageError) return err.message;
  throw err;
}

/** A scalar: the command line's text, or the YAML's (read with the failsafe schema, every scalar is a string). */
const TEXT = v.string('must be a single value (a string)');

/** Reads a scalar with `parse`, which gets the value's origin and throws UsageError on bad input. */
function scalar<T>(locate: Locate, path: SettingPath, parse: (text: string, origin: string) => T) {
  return v.pipe(
    TEXT,
    v.rawTransform<string, T>(({ dataset, addIssue, NEVER }) => {
      try {
        return parse(dataset.value, locate(path));
      } catch (err) {
        addIssue({ message: usageMessage(err) });
        return NEVER;
      }
    }),
  );
}

/** A list (one value alone counts as a list of one), each item read with `parse` and its own origin. */
function list<T>(locate: Locate, path: SettingPath, noun: string, parse: (text: string, origin: string, index: number | undefined) => T) {
  return v.pipe(
    v.union([TEXT, v.array(TEXT)], `must be a list of ${noun}`),
    v.rawTransform<string | string[], T[]>(({ dataset, addIssue, NEVER }) => {
      // a key with no value (`rules:`) is an empty list; one value alone, a list of one
      const single = typeof dataset.value === 'string';
      const items: string[] = typeof dataset.value !== 'string' ? dataset.value : dataset.value === '' ? [] : [dataset.value];
      const out: T[] = [];
      items.forEach((text, i) => {
        try {
          out.push(parse(text, locate(single ? path : [...path, i]), single ? undefined : i));
        } catch (err) {
          addIssue({ message: usageMessage(err), ...(single ? {} : { path: [{ type: 'array', origin: 'value', input: items, key: i, value: text }] }) });
        }
      });
      return out.length === items.length ? out : NEVER;
    }),
  );
}

/** Throws a UsageError with this message: for checks written as plain functions. */
const refuse = (message: string): never => {
  throw new UsageError(message);
};

/** A name under `proxies`: what --proxy or proxy: may give instead of URLs. */
const PROXY_NAME = /^[A-Za-z0-9_.-]+$/;

/** The default chain: proxy URLs in order, or the name of one under `proxies`. */
export type ChainChoice =
  { readonly kind: 'urls'; readonly chain: readonly UpstreamProxy[] } | { readonly kind: 'name'; readonly name: string; readonly origin: string };

/** A chain: one URL or a list of them; with `named`, a single word without :// names a chain under proxies. */
function chain(locate: Locate, path: SettingPath, named: boolean) {
  return v.pipe(
    // index: the item's place when the source gave a list (as the command line always does), for the message
    list(locate, path, 'proxy URLs', (text, origin, index) => ({ text, origin, index })),
    v.rawTransform<{ text: string; origin: string; index: number | undefined }[], ChainChoice>(({ dataset, addIssue, NEVER }) => {
      const items = dataset.value;
      if (!items.length) {
        addIssue({ message: 'an empty chain (give one proxy URL or more)' });
        return NEVER;
      }
      const only = items[0]!;
      if (named && items.length === 1 && PROXY_NAME.test(only.text)) return { kind: 'name', name: only.text, origin: only.origin };
      const urls: UpstreamProxy[] = [];
      items.forEach(({ text, index }) => {
        try {
          urls.push(parseProxyUrl(text));
        } catch (err) {
          addIssue({
            message: usageMessage(err),
            ...(index !== undefined ? { path: [{ type: 'array', origin: 'value', input: items, key: index, value: text }] } : {}),
          });
        }
      });
      return urls.length === items.length ? { kind: 'urls', chain: urls } : NEVER;
    }),
  );
}

function duration(locate: Locate, path: SettingPath) {
  return scalar(locate, path, (text) => {
    const ms = parseDuration(text);
    return ms > 0 ? ms : refuse(`'${text}' must be more than 0 (up to ${MAX_DURATION_TEXT})`);
  });
}

/** One of `choices`, named in the message when it is not. */
function oneOf<T extends string>(locate: Locate, path: SettingPath, choices: readonly T[]) {
  return scalar(locate, path, (text) =>
    (choices as readonly string[]).includes(text) ? (text as T) : refuse(`'${text}' is not one of ${choices.join(', ')}`),
  );
}

/** A YAML mapping as read: a plain object (not a list, nor a set or binary a YAML tag made). */
const isMapping = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && [Object.prototype, null].includes(Object.getPrototypeOf(x) as object | null);

/** A mapping of these entries and no other keys; `what` names it in the message when the value is not a mapping at all. */
function mapping<E extends v.ObjectEntries>(what: string, entries: E) {
  const keys = Object.keys(entries).join(', ');
  return v.pipe(v.custom<Record<string, unknown>>(isMapping, `${what}must be a mapping (of ${keys})`), v.strictObject(entries, `unknown key (known: ${keys})`));
}

/** The addresses of --source / source: one per family. */
function sources(locate: Locate) {
  return v.pipe(
    list(locate, ['source'], 'addresses', (text) => (addressFamily(text) ? text : refuse(notAnAddress(text)))),
    v.check(
      (all) => all.filter((a) => addressFamily(a) === 4).length <= 1 && all.filter((a) => addressFamily(a) === 6).length <= 1,
      (issue) => `give at most one IPv4 and one IPv6 address (got ${issue.input.join(', ')})`,
    ),
  );
}

/** The fake address ranges: at most one CIDR per family. */
function fakeRanges(locate: Locate) {
  return v.pipe(
    list(locate, ['fake-range'], 'CIDR ranges', (text) => {
      const family = addressFamily(text.split('/')[0] ?? '');
      // FakeAddresses checks the prefix; here only the family, to keep one per family
      return family ? { text, family } : refuse(`'${text}' is not a CIDR range (e.g. 198.18.0.0/15 or fd00:1::/64)`);
    }),
    v.check(
      (all) => all.filter((r) => r.family === 4).length <= 1 && all.filter((r) => r.family === 6).length <= 1,
      'give at most one IPv4 and one IPv6 range',
    ),
  );
}

/** The schema of every setting; `locate` names places for messages and for the origins rules and faults carry. */
export function settingsSchema(locate: Locate) {
  const log = { file: v.optional(scalar(locate, ['log', 'file'], logFilePath)), level: v.optional(oneOf<LogLevel>(locate, ['log', 'level'], LOG_LEVELS)) };
  const entries = {
    proxies: v.optional(
      v.pipe(
        v.custom<Record<string, unknown>>(isMapping, 'must map names to proxy URLs (or lists of them, for a chain)'),
        v.record(v.pipe(v.string(), v.regex(PROXY_NAME, 'a proxy name is letters, digits, ., _ and -')), v.unknown()),
        v.rawTransform<Record<string, unknown>, Map<string, readonly UpstreamProxy[]>>(({ dataset, addIssue, NEVER }) => {
          const named = new Map<string, readonly UpstreamProxy[]>();
          for (const [name, value] of Object.entries(dataset.value)) {
            const result = v.safeParse(chain(locate, ['proxies', name], false), value);
            if (result.success) named.set(name, (result.output as Extract<ChainChoice, { kind: 'urls' }>).chain);
            else
              for (const issue of result.issues)
                addIssue({
                  message: issue.message,
                  path: [{ type: 'object', origin: 'value', input: dataset.value, key: name, value }, ...(issue.path ?? [])],
                });
          }
          return named.size === Object.keys(dataset.value).length ? named : NEVER;
        }),
      ),
    ),
    proxy: v.optional(chain(locate, ['proxy'], true)),
    // a rule may also answer names with a DNS fault (NAME nxdomain): kept apart from the routing rules in resolve.ts
    rules: v.optional(
      list(locate, ['rules'], "'MATCH ACTION' strings", (text, origin) => (isDnsFaultRule(text) ? parseDnsFaultRule(text, origin) : parseRule(text, origin))),
    ),
    toxics: v.optional(list(locate, ['toxics'], "'TYPE key=value... [on MATCH]' strings", parseToxic)),
    faults: v.optional(
      list(locate, ['faults'], "'refuse ...', 'delay ...', 'nxdomain ...' (DNS faults) strings", (text, origin) =>
        isDnsFaultText(text) ? parseDnsFault(text, origin) : parseConnectFault(text, origin),
      ),
    ),
    latency: v.optional(scalar(locate, ['latency'], (text, origin) => parseToxic(latencyShorthand(text), origin))),
    bandwidth: v.optional(scalar(locate, ['bandwidth'], (text, origin) => parseToxic(`bandwidth rate=${text}`, origin))),
    'reset-after': v.optional(scalar(locate, ['reset-after'], (text, origin) => parseToxic(`reset_peer time=${text}`, origin))),
    refuse: v.optional(scalar(locate, ['refuse'], (text, origin) => parseConnectFault(refuseShorthand(text), origin))),
    seed: v.optional(
      scalar(locate, ['seed'], (text) =>
        /^\d{1,10}$/.test(text) && Number(text) <= MAX_SEED ? Number(text) : refuse(`'${text}' is not a whole number from 0 to ${MAX_SEED}`),
      ),
    ),
    mark: v.optional(scalar(locate, ['mark'], (text) => parseMark(text) ?? refuse(`'${text}' is not a 32-bit mark (decimal or 0x hex, e.g. 16 or 0x10)`))),
    interface: v.optional(scalar(locate, ['interface'], (text) => (isInterfaceName(text) ? text : refuse(`'${text}' is ${INTERFACE_HINT}`)))),
    source: v.optional(sources(locate)),
    mode: v.optional(oneOf(locate, ['mode'], MODES)),
    dns: v.optional(oneOf(locate, ['dns'], DNS_MODES)),
    'fake-range': v.optional(fakeRanges(locate)),
    'connect-timeout': v.optional(duration(locate, ['connect-timeout'])),
    control: v.optional(scalar(locate, ['control'], (text) => parseControlAddress(text))),
    log: v.optional(mapping('', log)),
  };
  return mapping('the file ', entries);
}

/** A log file's path: a name at all, and no NUL (the kernel would cut it there). */
function logFilePath(text: string): string {
  if (text === '') return refuse("'' is not a file name (leave the setting out to write no log file)");
  if (text.includes('\0')) return refuse('a file name cannot contain a NUL byte');
  return text;
}

export type Settings = v.InferOutput<ReturnType<typeof settingsSchema>>;

/** What one source (the command line, or a config file) set, with how to name its places. */
export interface SettingsSource {
  readonly settings: Settings;
  readonly locate: Locate;
}

/** The settings in `raw` (what the source holds, as plain data), or a UsageError naming the first problem. */
export function readSettings(raw: unknown, locate: Locate): SettingsSource {
  const result = v.safeParse(settingsSchema(locate), raw);
  if (result.success) return { settings: result.output, locate };
  const issue = result.issues[0];
  const path = (issue.path ?? []).map((p) => p.key as string | number);
  throw new UsageError(`${locate(path)}: ${issue.message}`);
}
