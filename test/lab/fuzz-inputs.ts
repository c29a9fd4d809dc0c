/**
 * Generated input for the command line and the config file
 * (test/unit/input-fuzz.test.ts): unstructured (random strings and bytes)
 * and structured (the real flags, keys, rules, toxics, faults, proxy URLs,
 * durations, sizes, rates and marks, with odd values mixed in), so inputs
 * reach deep into the parsers as well as their first checks.
 */
import fc from 'fast-check';

const { constantFrom, oneof, tuple, array, string, integer, bigInt, double, nat, option } = fc;
type Arb<T> = fc.Arbitrary<T>;

const join =
  (sep = '') =>
  (parts: readonly string[]): string =>
    parts.join(sep);

/** Strings nobody types on purpose: unicode, controls, newlines, empty. */
export const oddString: Arb<string> = oneof(
  { arbitrary: string({ maxLength: 12 }), weight: 3 },
  { arbitrary: string({ unit: 'grapheme', maxLength: 8 }), weight: 2 },
  { arbitrary: string({ unit: 'binary', maxLength: 8 }), weight: 2 },
  {
    arbitrary: constantFrom(
      '',
      ' ',
      '\t',
      '\n',
      'a\nb',
      'a\r\nb',
      '\u2028',
      '\u0000',
      '\u202e',
      '\ufeff',
      '\ud800',
      '%',
      '%zz',
      '%E0%A4%A',
      '🙂',
      'e\u0301',
      '\u00a0',
      '１２３',
      '٣',
      '--',
      '-',
      '=',
      '@',
      ':',
      '[',
      ']',
      '/',
      '±',
      '__proto__',
      'constructor',
      'toString',
    ),
    weight: 2,
  },
);

/** Long strings, some of them shaped to make backtracking regular expressions slow. */
export const hugeString: Arb<string> = tuple(
  integer({ min: 1_000, max: 60_000 }),
  constantFrom(' ', '1', 'a', '1 ', ':', '//:', '[', '%', '\t', '=', '0x', '9', '.', '\n'),
  constantFrom('', 'x', 's', 'ms', ' ', '\n'),
  constantFrom('', '1', '0.', 'latency latency='),
).map(([n, unit, tail, head]) => head + unit.repeat(Math.ceil(n / unit.length)) + tail);

const digits: Arb<string> = oneof(
  nat({ max: 100_000 }).map(String),
  bigInt({ min: 0n, max: 10n ** 40n }).map(String),
  double({ noNaN: true, min: 0, max: 1e12 }).map(String),
  constantFrom('0', '1', '99999999999', '2147483647', '2147483648', '4294967295', '4294967296', '1e3', '1.5', '.5', '5.', '-1', '+1', '00', '9'.repeat(400)),
);

const withUnit = (units: readonly string[]): Arb<string> =>
  tuple(digits, constantFrom(...units), constantFrom('', '', '', ' ', '  ')).map(([n, u, sp]) => `${n}${sp}${u}`);

export const duration: Arb<string> = oneof(
  { arbitrary: withUnit(['ms', 's', 'm', 'h', '', 'd', 'us', 'S', 'MS']), weight: 6 },
  {
    arbitrary: constantFrom(
      '99999999999h',
      '1e400ms',
      '0',
      '0ms',
      '0.0001ms',
      '0.4ms',
      '2147483648ms',
      '24.9d',
      '596h',
      '597h',
      'Infinity',
      'NaN',
      '-5s',
      ' 5s ',
    ),
    weight: 3,
  },
  { arbitrary: oddString, weight: 1 },
  { arbitrary: hugeString, weight: 1 },
  {
    // a number, a long run of blanks, then something else: slow for a pattern like /\d+\s*(unit)?\s*$/
    arbitrary: tuple(
      constantFrom('1', '1.5', '10'),
      integer({ min: 1_000, max: 80_000 }),
      constantFrom(' ', '\t', ' \t'),
      constantFrom('x', 'sx', '\n', 'ms x', '1'),
    ).map(([n, len, blank, tail]) => n + blank.repeat(Math.ceil(len / blank.length)) + tail),
    weight: 1,
  },
);

export const size: Arb<string> = oneof(
  { arbitrary: withUnit(['', 'b', 'B', 'k', 'KB', 'kb', 'm', 'MB', 'g', 'GB', 'KiB', 'MiB', 'GiB', 'TB', 'x']), weight: 6 },
  { arbitrary: oddString, weight: 1 },
);

export const rate: Arb<string> = oneof(
  {
    arbitrary: tuple(
      digits,
      constantFrom('', 'k', 'K', 'm', 'M', 'g', 'G', 't'),
      constantFrom('B', 'b', 'iB', 'ib', 'bit', 'Bit', 'bps'),
      constantFrom('/s', '/s', '/m', '', 'ps'),
    ).map(join()),
    weight: 6,
  },
  { arbitrary: oddString, weight: 1 },
);

export const mark: Arb<string> = oneof(
  integer({ min: -1, max: 0xffffffff }).map(String),
  bigInt({ min: 0n, max: 2n ** 80n }).map((n) => `0x${n.toString(16)}`),
  constantFrom('0x', '0X10', '0x100000000', '4294967296', '-0', '1e3', '0b1', '0o7', ' 16', '16 ', '0x-1', ''),
  oddString,
);

export const probability: Arb<string> = oneof(
  double({ noNaN: false }).map(String),
  constantFrom('0', '1', '0.5', '1.0000001', '-0', 'NaN', 'Infinity', '', '1e-400', '0x1', ' 0.5'),
  oddString,
);

export const count: Arb<string> = oneof(integer({ min: -5, max: 1000 }).map(String), digits, oddString);

export const errno: Arb<string> = oneof(
  constantFrom('ECONNREFUSED', 'ETIMEDOUT', 'ENETUNREACH', 'EHOSTUNREACH', 'ECONNRESET', 'EACCES', 'EPERM', 'econnrefused', 'ENOENT', 'EINTR', ''),
  oddString,
);

const ipv6Zoned: Arb<string> = tuple(
  constantFrom('fe80::1', 'fe80::abcd:1', 'ff02::1', '::1', '2001:db8::1'),
  constantFrom('%eth0', '%1', '%', '%25eth0', '%lo', '%a b', '%🙂'),
).map(join());

export const address: Arb<string> = oneof(
  { arbitrary: fc.ipV4(), weight: 3 },
  { arbitrary: fc.ipV6(), weight: 3 },
  { arbitrary: fc.ipV4Extended(), weight: 1 },
  { arbitrary: ipv6Zoned, weight: 2 },
  { arbitrary: constantFrom('127.0.0.1', '0.0.0.0', '::', '::ffff:10.0.0.1', '256.1.1.1', '1.2.3', '01.02.03.04', 'localhost', '[::1]', '::1::'), weight: 1 },
  { arbitrary: oddString, weight: 1 },
);

export const ports: Arb<string> = oneof(
  integer({ min: 0, max: 70_000 }).map(String),
  tuple(integer({ min: 0, max: 70_000 }), integer({ min: 0, max: 70_000 })).map(([a, b]) => `${a}-${b}`),
  constantFrom('', '-', '1-', '-1', '99999', '443', '8000-8999', '00443', '1e3'),
  oddString,
);

const prefix: Arb<string> = oneof(
  integer({ min: -1, max: 140 }).map((n) => `/${n}`),
  constantFrom('', '', '/', '/08', '/x', '/1/2'),
);

export const match: Arb<string> = oneof(
  { arbitrary: constantFrom('all', 'all'), weight: 1 },
  { arbitrary: ports.map((p) => `port ${p}`), weight: 2 },
  {
    arbitrary: tuple(address, prefix, option(ports)).map(([a, p, po]) => {
      const net = `${a}${p}`;
      if (po === null) return net;
      return a.includes(':') ? `[${net}]:${po}` : `${net}:${po}`;
    }),
    weight: 5,
  },
  {
    // host names and wildcards, some of them near misses (a digit-only last label, empty labels, a bare *)
    arbitrary: tuple(
      constantFrom('', '*.', '*', '**.', '-'),
      array(constantFrom('corp', 'example', 'a', 'x-y', '_srv', '-bad', 'UPPER', '300', '0', '', 'a'.repeat(64)), { minLength: 1, maxLength: 5 }),
      option(ports),
    ).map(([head, labels, po]) => `${head}${labels.join('.')}${po === null ? '' : `:${po}`}`),
    weight: 3,
  },
  { arbitrary: oddString, weight: 1 },
);

export const ifname: Arb<string> = oneof(constantFrom('eth0', 'wg0', 'lo', 'a'.repeat(15), 'a'.repeat(16), 'e/0', 'e:0', 'e 0', ''), oddString);

const routeWords: Arb<string> = array(
  oneof(
    mark.map((m) => `mark ${m}`),
    ifname.map((i) => `interface ${i}`),
    address.map((a) => `source ${a}`),
    constantFrom('mark', 'interface', 'source', 'direct'),
  ),
  { minLength: 1, maxLength: 4 },
).map(join(' '));

export const action: Arb<string> = oneof(
  constantFrom('proxy', 'direct', 'pass', 'refuse', 'proxy corp', 'proxy twohop', 'proxy nosuch', 'proxy a b', 'direct x', 'pass pass', 'drop', ''),
  errno.map((e) => `refuse ${e}`),
  routeWords,
  oddString,
);

const spaces: Arb<string> = constantFrom(' ', ' ', ' ', '  ', '\t', ' \u00a0', '\n');

export const rule: Arb<string> = oneof({ arbitrary: tuple(match, spaces, action).map(join()), weight: 8 }, { arbitrary: oddString, weight: 1 });

const scope: Arb<string> = option(match, { nil: '' }).map((m) => (m === '' ? '' : ` on ${m}`));

const kv = (key: Arb<string>, value: Arb<string>): Arb<string> => tuple(key, value).map(([k, v]) => `${k}=${v}`);

const TOXIC_KEYS: Record<string, Arb<string>> = {
  latency: duration,
  jitter: duration,
  rate,
  delay: duration,
  time: duration,
  average_size: size,
  size_variation: size,
  bytes: size,
  direction: oneof(constantFrom('upstream', 'downstream', 'both', 'up', 'down', 'sideways', ''), oddString),
  toxicity: probability,
};

const anyKv = (keys: Record<string, Arb<string>>): Arb<string> =>
  oneof(
    { arbitrary: oneof(...Object.entries(keys).map(([k, v]) => kv(fc.constant(k), v))), weight: 8 },
    { arbitrary: kv(oneof(constantFrom('', 'on', '=', 'x'), oddString), oddString), weight: 1 },
    { arbitrary: oddString, weight: 1 },
  );

export const toxic: Arb<string> = oneof(
  {
    arbitrary: tuple(
      constantFrom('latency', 'bandwidth', 'slicer', 'limit_data', 'timeout', 'reset_peer', 'slow_close', 'LATENCY', 'noise', ''),
      array(anyKv(TOXIC_KEYS), { maxLength: 5 }),
      scope,
    ).map(([t, kvs, s]) => [t, ...kvs].join(' ') + s),
    weight: 8,
  },
  { arbitrary: oddString, weight: 1 },
);

const FAULT_KEYS: Record<string, Arb<string>> = {
  errno,
  delay: duration,
  time: duration,
  probability,
  first: count,
  every: count,
  after: count,
};

export const connectFault: Arb<string> = oneof(
  {
    arbitrary: tuple(
      constantFrom('refuse', 'delay', 'refuse', 'delay', 'drop', '', 'nxdomain', 'servfail', 'noanswer', 'dnsdelay'),
      array(anyKv(FAULT_KEYS), { maxLength: 4 }),
      scope,
    ).map(([t, kvs, s]) => [t, ...kvs].join(' ') + s),
    weight: 8,
  },
  { arbitrary: oddString, weight: 1 },
);

export const refuseShort: Arb<string> = oneof(
  tuple(errno, option(probability)).map(([e, p]) => (p === null ? e : `${e}@${p}`)),
  constantFrom('@', 'ECONNREFUSED@', '@0.5', 'ECONNREFUSED@0.5@1'),
  oddString,
);

export const latencyShort: Arb<string> = oneof(
  tuple(duration, option(tuple(constantFrom('±', '+-', '±±', '+', '-'), duration))).map(([d, j]) => (j === null ? d : `${d}${j[0]}${j[1]}`)),
  oddString,
);

const userinfoPart: Arb<string> = oneof(
  constantFrom('u', 'alice', 'p%40ss', '%zz', '%E0%A4%A', '%', '%%', '%00', '%41', '%C3%A9', '%F0%9F%99%82', '%ED%A0%80', '%FF', 'a%2', ''),
  string({ unit: 'grapheme-ascii', maxLength: 6 }),
  oddString,
);

const urlHost: Arb<string> = oneof(
  fc.ipV4(),
  fc.ipV6().map((a) => `[${a}]`),
  constantFrom(
    '[fe80::1%25eth0]',
    '[fe80::1%eth0]',
    'fe80::1%eth0',
    '[::1]',
    'proxy.example',
    'h',
    'localhost',
    '',
    '[',
    'a b',
    'xn--nxasmq6b',
    'ünicode.example',
    '%41',
  ),
  fc.domain(),
);

export const proxyUrl: Arb<string> = oneof(
  {
    arbitrary: tuple(
      constantFrom('socks5', 'socks5h', 'socks4', 'socks4a', 'http', 'https', 'ftp', 'SOCKS5', ''),
      constantFrom('://', '://', '://', ':/', ':'),
      option(
        tuple(userinfoPart, option(userinfoPart)).map(([u, p]) => (p === null ? `${u}@` : `${u}:${p}@`)),
        { nil: '' },
      ),
      urlHost,
      option(
        oneof(integer({ min: -1, max: 70_000 }).map(String), digits, constantFrom('0', '00', '65535', '65536', '', 'x', '080')).map((p) => `:${p}`),
        { nil: '' },
      ),
      constantFrom('', '', '', '/', '/path', '?q', '#f'),
    ).map(join()),
    weight: 8,
  },
  { arbitrary: constantFrom('socks5://%zz:pw@h:1', 'http://u:%E0%A4%A@h:1', 'socks5://u:%@h:1', 'socks4://%@h:1', 'http://[fe80::1%25eth0]:3128'), weight: 1 },
  { arbitrary: oddString, weight: 1 },
);

export const logLevel: Arb<string> = oneof(constantFrom('trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent', 'INFO', 'verbose', ''), oddString);
export const dnsValue: Arb<string> = oneof(constantFrom('remote', 'local', 'off', 'REMOTE', 'on', ''), oddString);
export const fakeRange: Arb<string> = oneof(
  constantFrom(
    '198.18.0.0/15',
    '10.0.0.0/8',
    '10.0.0.0/31',
    '10.0.0.0/7',
    'fd00::/64',
    'fd00::/112',
    'fd00::/40',
    'fd00::/128',
    '1.2.3.4',
    '1.2.3.4/x',
    '/15',
    '',
  ),
  tuple(address, prefix).map(([a, p]) => `${a}${p}`),
  oddString,
);
export const controlAddress: Arb<string> = oneof(
  constantFrom('8474', '0', '127.0.0.1:0', '[::1]:0', 'unix:/tmp/graft-fuzz.sock', 'unix:', ':8474', 'host:', '70000', '[nope]:1', 'a:b:1', ''),
  integer({ min: -5, max: 70000 }).map(String),
  oddString,
);
export const modeValue: Arb<string> = oneof(constantFrom('auto', 'proxy', 'inplace', 'AUTO', 'direct', ''), oddString);
export const seed: Arb<string> = oneof(digits, integer().map(String), constantFrom('4294967296', '9999999999', '99999999999', '-1', ''), oddString);
export const destination: Arb<string> = oneof(
  tuple(address, option(ports)).map(([a, p]) => (p === null ? a : a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`)),
  address,
  oddString,
);

/** One option of graft's command line, as argv words (both `--opt value` and `--opt=value`). */
export function flag(configPaths: Arb<string>): Arb<readonly string[]> {
  const valued: [string, Arb<string>][] = [
    ['--proxy', proxyUrl],
    ['--rule', rule],
    ['--mark', mark],
    ['--interface', ifname],
    ['--source', address],
    ['--mode', modeValue],
    ['--dns', dnsValue],
    ['--fake-range', fakeRange],
    ['--control', controlAddress],
    ['--latency', latencyShort],
    ['--bandwidth', rate],
    ['--reset-after', duration],
    ['--toxic', toxic],
    ['--refuse', refuseShort],
    ['--fault', connectFault],
    ['--seed', seed],
    ['--connect-timeout', duration],
    ['--log-file', oneof(constantFrom('/tmp/graft-fuzz.ndjson', ''), oddString)],
    ['--log-level', logLevel],
    ['--config', configPaths],
  ];
  return oneof(
    {
      arbitrary: oneof(
        ...valued.map(([name, value]) =>
          tuple(value, fc.boolean(), fc.boolean()).map(([v, eq, missing]) => (missing && name !== '--config' ? [name] : eq ? [`${name}=${v}`] : [name, v])),
        ),
      ),
      weight: 12,
    },
    {
      arbitrary: constantFrom(
        ['-v'],
        ['-q'],
        ['--verbose'],
        ['--quiet'],
        ['-vq'],
        ['-V'],
        ['-h'],
        ['--help'],
        ['--version'],
        ['-x'],
        ['--prox'],
        ['--mod'],
        ['--'],
      ),
      weight: 1,
    },
    { arbitrary: oddString.map((s) => [s]), weight: 1 },
  );
}

const program: Arb<readonly string[]> = oneof(
  {
    arbitrary: tuple(constantFrom('true', 'curl', './a.out', '-v', '', '--', 'rules', 'config'), array(oddString, { maxLength: 3 })).map(([p, a]) => [
      '--',
      p,
      ...a,
    ]),
    weight: 6,
  },
  { arbitrary: constantFrom(['--'], [], ['prog'], ['prog', '--', 'x']), weight: 1 },
);

/** A whole command line: options, then mostly `-- program args`; or a subcommand. */
export function structuredArgv(configPaths: Arb<string>): Arb<readonly string[]> {
  const options = array(flag(configPaths), { maxLength: 6 }).map((fs) => fs.flat());
  return oneof(
    { arbitrary: tuple(options, program).map(([o, p]) => [...o, ...p]), weight: 8 },
    { arbitrary: tuple(destination, options).map(([d, o]) => ['rules', 'explain', d, ...o]), weight: 2 },
    {
      arbitrary: oneof(
        configPaths.map((f) => ['config', 'check', f]),
        constantFrom(
          ['rules'],
          ['rules', 'explain'],
          ['config'],
          ['config', 'check'],
          ['rules', 'nope'],
          ['config', 'check', 'a', 'b'],
          ['rules', '-h'],
          ['config', '--help'],
        ),
      ),
      weight: 1,
    },
  );
}

/** argv with little structure: random words, some of them flag names. */
export const unstructuredArgv: Arb<readonly string[]> = array(
  oneof(
    { arbitrary: oddString, weight: 4 },
    {
      arbitrary: constantFrom(
        '--',
        '--proxy',
        '--rule',
        '--mark',
        '--interface',
        '--source',
        '--mode',
        '--dns',
        '--fake-range',
        '--control',
        '--latency',
        '--bandwidth',
        '--reset-after',
        '--toxic',
        '--refuse',
        '--fault',
        '--seed',
        '--connect-timeout',
        '--log-file',
        '--log-level',
        '-v',
        '-q',
        'rules',
        'explain',
        'config',
        'check',
        '-',
        '---',
        '--=',
        '-vv',
      ),
      weight: 3,
    },
    { arbitrary: string({ unit: 'binary', maxLength: 30 }), weight: 1 },
  ),
  { maxLength: 10 },
);

/* ---------------- YAML ---------------- */

const TAGS = [
  '!!str',
  '!!int',
  '!!float',
  '!!bool',
  '!!null',
  '!!binary',
  '!!set',
  '!!omap',
  '!!pairs',
  '!!map',
  '!!seq',
  '!!timestamp',
  '!custom',
  '!',
  '!<tag:yaml.org,2002:str>',
  '!<!x>',
  '!e!x',
];

/** A YAML scalar for this text: plain, quoted, tagged or anchored. */
function scalar(text: Arb<string>): Arb<string> {
  return tuple(text, constantFrom('plain', 'plain', 'double', 'single', 'tagged', 'anchored', 'alias', 'block')).chain(([t, style]) => {
    switch (style) {
      case 'double':
        return fc.constant(JSON.stringify(t));
      case 'single':
        return fc.constant(`'${t.replace(/'/g, "''")}'`);
      case 'tagged':
        return constantFrom(...TAGS).map((tag) => `${tag} ${JSON.stringify(t)}`);
      case 'anchored':
        return constantFrom('a', 'b', 'x').map((a) => `&${a} ${JSON.stringify(t)}`);
      case 'alias':
        return constantFrom('*a', '*b', '*x', '*nope');
      case 'block':
        return fc.constant(`|\n    ${t.replace(/\n/g, '\n    ')}\n`);
      default:
        return fc.constant(t);
    }
  });
}

const flowList = (item: Arb<string>): Arb<string> => array(item, { maxLength: 4 }).map((xs) => `[${xs.join(', ')}]`);
const blockList = (item: Arb<string>, indent: string): Arb<string> =>
  array(item, { minLength: 0, maxLength: 4 }).map((xs) => xs.map((x) => `\n${indent}- ${x}`).join(''));
const listOf = (item: Arb<string>): Arb<string> => oneof(flowList(scalar(item)), blockList(scalar(item), '  '), scalar(item));

const proxyName: Arb<string> = oneof(constantFrom('corp', 'twohop', 'a.b-c_d', 'bad name', '', '-', '🙂', 'proxy'), oddString);

const proxies: Arb<string> = oneof(
  array(tuple(scalar(proxyName), listOf(proxyUrl)), { maxLength: 3 }).map((ps) => ps.map(([n, u]) => `\n  ${n}: ${u}`).join('')),
  array(tuple(proxyName, listOf(proxyUrl)), { maxLength: 3 }).map(
    (ps) => `{${ps.map(([n, u]) => `${JSON.stringify(n)}: ${u.replace(/\n/g, ' ')}`).join(', ')}}`,
  ),
  scalar(oddString),
);

const log: Arb<string> = oneof(
  tuple(option(scalar(oneof(constantFrom('/tmp/graft-fuzz.ndjson'), oddString))), option(scalar(logLevel)), option(tuple(oddString, scalar(oddString)))).map(
    ([f, l, x]) =>
      `{ ${[
        f !== null ? `file: ${f.replace(/\n/g, ' ')}` : '',
        l !== null ? `level: ${l.replace(/\n/g, ' ')}` : '',
        x !== null ? `${JSON.stringify(x[0])}: ${x[1].replace(/\n/g, ' ')}` : '',
      ]
        .filter(Boolean)
        .join(', ')} }`,
  ),
  scalar(oddString),
);

const TOP: [string, Arb<string>][] = [
  ['proxies', proxies],
  ['proxy', oneof(scalar(proxyName), listOf(proxyUrl))],
  ['rules', listOf(rule)],
  ['toxics', listOf(toxic)],
  ['faults', listOf(connectFault)],
  ['mark', scalar(mark)],
  ['interface', scalar(ifname)],
  ['source', listOf(address)],
  ['mode', scalar(modeValue)],
  ['dns', scalar(dnsValue)],
  ['fake-range', listOf(fakeRange)],
  ['control', scalar(controlAddress)],
  ['connect-timeout', scalar(duration)],
  ['log', log],
];

const topEntry: Arb<string> = oneof(
  { arbitrary: oneof(...TOP.map(([k, v]) => v.map((text) => `${k}: ${text}`))), weight: 10 },
  {
    arbitrary: tuple(oneof(constantFrom('Rules', 'rule', 'proxys', '<<', '? x', '"rules"', '!!str rules', '&a rules', '*a'), oddString), scalar(oddString)).map(
      ([k, v]) => `${k}: ${v}`,
    ),
    weight: 1,
  },
);

/** A config file with the real keys, in the styles YAML allows. */
export const structuredYaml: Arb<string> = oneof(
  { arbitrary: array(topEntry, { maxLength: 6 }).map((es) => es.join('\n') + '\n'), weight: 8 },
  { arbitrary: array(topEntry, { maxLength: 4 }).map((es) => `{${es.map((e) => e.replace(/\n\s*(- )?/g, ' ')).join(', ')}}`), weight: 1 },
  {
    arbitrary: tuple(
      constantFrom('%YAML 1.1\n---\n', '%YAML 1.2\n---\n', '---\n', '--- !!map\n', '%TAG !e! tag:example.com,2000:\n---\n', ''),
      array(topEntry, { maxLength: 3 }),
      constantFrom('', '\n...\n', '\n---\n', '\n--- x\n'),
    ).map(([head, es, tail]) => head + es.join('\n') + tail),
    weight: 1,
  },
);

/** Inputs built to be expensive: alias bombs, deep nesting, merge keys, huge scalars. */
export const pathologicalYaml: Arb<string> = oneof(
  tuple(integer({ min: 2, max: 12 }), integer({ min: 2, max: 12 }), constantFrom('rules', 'proxies', 'source', 'toxics', 'log', 'proxy', 'mark')).map(
    ([depth, width, key]) => {
      // the billion laughs: each level lists the one before `width` times
      const levels = [`  - &l0 [${Array(width).fill('"lol"').join(', ')}]`];
      for (let i = 1; i < depth; i++)
        levels.push(
          `  - &l${i} [${Array(width)
            .fill(`*l${i - 1}`)
            .join(', ')}]`,
        );
      return `${key}:\n${levels.join('\n')}\n  - *l${depth - 1}\n`;
    },
  ),
  tuple(integer({ min: 2, max: 10 }), integer({ min: 2, max: 10 })).map(([depth, width]) => {
    const levels = [`a0: &a0 {k: v}`];
    for (let i = 1; i < depth; i++) levels.push(`a${i}: &a${i} {${Array.from({ length: width }, (_, j) => `k${j}: *a${i - 1}`).join(', ')}}`);
    return `log: {file: x, level: info}\nproxies:\n  ${levels.join('\n  ')}\n  m: {<<: *a${depth - 1}}\n`;
  }),
  tuple(integer({ min: 1, max: 10_000 }), constantFrom('[', '{', '- ', '{a: ', '[[', '? ', '!!seq [', '&a [')).map(([n, open]) => {
    const close = open.includes('{') ? '}' : open.includes('[') ? ']' : '';
    const body =
      open === '- ' ? Array.from({ length: Math.min(n, 2000) }, (_, i) => ' '.repeat(i * 2) + '- ').join('\n') + 'x' : open.repeat(n) + close.repeat(n);
    return `rules: ${body}\n`;
  }),
  tuple(integer({ min: 1, max: 10_000 }), constantFrom('rules', 'proxy', 'mark', 'connect-timeout', 'toxics', 'faults')).map(
    ([n, key]) => `${key}: [${Array(n).fill('*a').join(', ')}]\n`,
  ),
  tuple(hugeString, constantFrom('rules', 'proxy', 'mark', 'connect-timeout', 'interface', 'source', 'mode', 'toxics', 'faults')).map(
    ([s, key]) => `${key}: ${key === 'rules' || key === 'toxics' || key === 'faults' ? `[${JSON.stringify(s)}]` : JSON.stringify(s)}\n`,
  ),
  hugeString.map((s) => `${s}: x\n`),
  integer({ min: 1, max: 5000 }).map((n) => `rules: &r [${Array(n).fill('"all pass"').join(', ')}]\nfaults: [*r]\n`),
);

/** Random text and bytes, and soups of YAML punctuation. */
export const unstructuredYaml: Arb<string> = oneof(
  { arbitrary: string({ maxLength: 200 }), weight: 2 },
  { arbitrary: string({ unit: 'binary', maxLength: 100 }), weight: 2 },
  { arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('utf8')), weight: 2 },
  {
    arbitrary: array(
      oneof(
        constantFrom(
          ':',
          ': ',
          '- ',
          '? ',
          '[',
          ']',
          '{',
          '}',
          ',',
          '&a ',
          '*a',
          '!!binary ',
          '!!set ',
          '!x ',
          '|',
          '>',
          '"',
          "'",
          '#',
          '%YAML 1.1',
          '---',
          '...',
          '\n',
          '\n  ',
          '\t',
          '<<',
          'rules',
          'proxies',
          'proxy',
          'mark',
          'log',
          'source',
          'toxics',
          'faults',
          'mode',
          'dns',
          'fake-range',
          'connect-timeout',
        ),
        oddString,
      ),
      { maxLength: 40 },
    ).map(join()),
    weight: 4,
  },
);
