/** Turns graft's command line into a Plan. Usage errors throw UsageError. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { UsageError } from './errors.js';
import type { Egress } from './egress/model.js';
import { LOG_LEVELS, type LogLevel, type ModeChoice, type Plan, type TerminalVerbosity } from './plan.js';
import { parseRule } from './rules/parse.js';
import { findConfig, loadConfig } from './config/file.js';
import { latencyShorthand, parseToxic } from './chaos/parse.js';
import { parseConnectFault, refuseShorthand } from './chaos/connect-faults.js';
import { parseProxyUrl } from './upstream/url.js';
import { parseDuration, parseMark } from './units.js';

const EXAMPLES = `
Examples:
  graft -- curl https://example.org/          every TCP connect of curl goes through graft
  graft -v -- ./server-binary                 one line per connection on stderr
  graft --mark 0x10 -- ./app                  route app by 'ip rule fwmark 0x10 ...'
  graft --interface wg0 -- ./app              send app out of wg0 only
  graft --source 192.0.2.10 -- ./app          app's connections leave from that address
  graft --log-file conns.ndjson -- go test ./...
  graft --connect-timeout 3s -- python3 fetch.py

graft exits with the program's exit status (128+N if signal N killed it),
127 if the program cannot be found, 126 if it cannot be executed, and 2 for
bad options or when tracing cannot be set up.`;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** SO_MARK values: decimal or 0x hex, 32-bit. */
function markArg(value: string): number {
  const v = parseMark(value);
  if (v === undefined) throw new InvalidArgumentError(`'${value}' is not a 32-bit mark (decimal or 0x hex, e.g. 16 or 0x10)`);
  return v;
}

function sourceArg(value: string, previous: string[] | undefined): string[] {
  if (!isIP(value)) throw new InvalidArgumentError(`'${value}' is not an IPv4 or IPv6 address`);
  return [...(previous ?? []), value];
}

function interfaceArg(value: string): string {
  if (!/^[^\s/:]{1,15}$/.test(value)) throw new InvalidArgumentError(`'${value}' is not an interface name`);
  return value;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function durationArg(what: string) {
  return (value: string): number => {
    try {
      const ms = parseDuration(value, what);
      if (ms <= 0) throw new UsageError(`${what}: must be more than 0`);
      return ms;
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message.replace(`${what}: `, ''));
    }
  };
}

interface RawOptions {
  config?: string;
  toxic?: string[];
  fault?: string[];
  refuse?: string;
  latency?: string;
  bandwidth?: string;
  resetAfter?: string;
  seed?: string;
  proxy?: string[];
  rule?: string[];
  mark?: number;
  interface?: string;
  source?: string[];
  mode?: ModeChoice;
  verbose?: boolean;
  quiet?: boolean;
  logFile?: string;
  logLevel?: LogLevel;
  connectTimeout?: number;
}

/** What a subcommand asks main to do. */
export type CliOutcome =
  | { kind: 'run'; plan: Plan }
  | { kind: 'explain'; routing: RoutingSettings; ip: string; port: number | undefined }
  | { kind: 'check'; path: string }
  | { kind: 'exit'; status: number };

/** Routing settings after merging the config file and the command line. */
export type RoutingSettings = Pick<Plan, 'egress' | 'mode' | 'rules' | 'chains' | 'toxics' | 'connectFaults' | 'seed' | 'connectTimeoutMs'> & {
  readonly logFile?: string;
  readonly logLevel?: LogLevel;
};

type Output = { out: (s: string) => void; err: (s: string) => void };

/** The options that decide where connections go: `graft` and `graft rules explain` share them. */
function withRoutingOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'read settings from this YAML file (default: $GRAFT_CONFIG, else ~/.config/graft/config.yaml if present)')
    .option(
      '--proxy <url>',
      'send connections through this upstream proxy: socks5://[user:pass@]host:port, socks4://, socks4a://, http:// (CONNECT); repeat for a chain',
      collect,
    )
    .option('--rule <rule>', "'MATCH ACTION': how matching destinations go (repeatable, first match wins; see README)", collect)
    .option('--mark <value>', 'set SO_MARK on every outgoing connection (decimal or 0x hex)', markArg)
    .option('--interface <name>', 'send every outgoing connection out of this interface (SO_BINDTODEVICE)', interfaceArg)
    .option('--source <address>', 'leave from this local address (once per family: IPv4 and/or IPv6)', sourceArg)
    .addOption(
      new Option(
        '--mode <mode>',
        "where egress options act: on the program's own sockets (inplace) or on graft's proxy (proxy); auto (default): inplace when nothing needs the proxy",
      ).choices(['auto', 'proxy', 'inplace']),
    )
    .option('--latency <delay>', 'fault: delay data from destinations by this much, e.g. 200ms or 200ms±50ms')
    .option('--bandwidth <rate>', 'fault: limit data from destinations to this rate, e.g. 1MB/s, 512KiB/s, 8Mbit/s')
    .option('--reset-after <duration>', 'fault: reset every connection after this long (the program sees ECONNRESET)')
    .option('--toxic <toxic>', "fault, full form: 'TYPE key=value... [on MATCH]' (repeatable; see README)", collect)
    .option('--refuse <errno[@p]>', 'fault: connects fail with this errno (ECONNREFUSED, ETIMEDOUT, ...), with probability p if given')
    .option(
      '--fault <fault>',
      "connect fault, full form: 'refuse errno=E [delay=D] [probability=P|first=N|every=N|after=N] [on MATCH]' or 'delay time=D ...'",
      collect,
    )
    .option('--seed <n>', 'seed for probabilistic faults: the same seed gives the same faults')
    .addOption(
      new Option(
        '--connect-timeout <duration>',
        "fail a proxied connect with ETIMEDOUT after this long (default: as the network would, e.g. the kernel's SYN retries; e.g. 500ms, 5s)",
      ).argParser(durationArg('--connect-timeout')),
    );
}

function configured(cmd: Command, out: Output): Command {
  return cmd.exitOverride().configureOutput({ writeOut: out.out, writeErr: out.err, outputError: (str, w) => w(`graft: ${str.replace(/^error: /, '')}`) });
}

/** Runs commander; undefined when it printed help/version or a usage error (the status is returned). */
function parse(cmd: Command, argv: readonly string[]): number | undefined {
  try {
    cmd.parse(argv, { from: 'user' });
    return undefined;
  } catch (err) {
    if (err instanceof CommanderError) {
      return ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code) ? 0 : 2;
    }
    throw err;
  }
}

export function parseCommandLine(argv: readonly string[], write: Output, env: NodeJS.ProcessEnv = process.env): CliOutcome {
  if (argv[0] === 'rules') return parseRulesCommand(argv.slice(1), write, env);
  if (argv[0] === 'config') return parseConfigCommand(argv.slice(1), write);
  const cmd = configured(
    withRoutingOptions(
      new Command('graft')
        .usage('[options] -- program [args...]\n       graft rules explain ADDR[:PORT] [options]\n       graft config check FILE')
        .description(
          "Run a program with every TCP connection it makes steered as graft's options say: through graft's local proxy (and upstream proxies), marked in place, refused, or with faults.",
        )
        .version(packageVersion(), '-V, --version', 'print the version')
        .helpOption('-h, --help', 'show this help')
        .argument('[program]', 'the program to run')
        .argument('[args...]', "the program's arguments"),
    )
      .option('-v, --verbose', 'print one line per connection to stderr')
      .option('-q, --quiet', 'print nothing but fatal errors')
      .option('--log-file <path>', 'write one JSON record per connection (ndjson) to this file')
      .addOption(new Option('--log-level <level>', 'threshold for the log file and -v (default info)').choices(LOG_LEVELS))
      .passThroughOptions()
      .addHelpText('after', EXAMPLES),
    write,
  );
  const status = parse(cmd, argv);
  if (status !== undefined) return { kind: 'exit', status };

  const o = cmd.opts<RawOptions>();
  const [program, args] = cmd.processedArgs as [string | undefined, string[]];
  if (!program) throw new UsageError('no program given; usage: graft [options] -- program [args...]');
  if (o.verbose && o.quiet) throw new UsageError('-v/--verbose and -q/--quiet cannot be used together');
  const terminal: TerminalVerbosity = o.verbose ? 'verbose' : o.quiet ? 'quiet' : 'normal';
  const r = routingSettings(o, env);
  const logFile = o.logFile ?? r.logFile;
  return {
    kind: 'run',
    plan: {
      program,
      args,
      egress: r.egress,
      mode: r.mode,
      rules: r.rules,
      chains: r.chains,
      toxics: r.toxics,
      connectFaults: r.connectFaults,
      ...(r.seed !== undefined ? { seed: r.seed } : {}),
      ...(r.connectTimeoutMs !== undefined ? { connectTimeoutMs: r.connectTimeoutMs } : {}),
      log: { terminal, level: o.logLevel ?? r.logLevel ?? 'info', ...(logFile !== undefined ? { file: logFile } : {}) },
    },
  };
}

function parseRulesCommand(argv: readonly string[], write: Output, env: NodeJS.ProcessEnv): CliOutcome {
  let outcome: CliOutcome | undefined;
  const explain = withRoutingOptions(
    new Command('explain')
      .description('print which rule a TCP connect to ADDR[:PORT] would match, what graft would do and which faults would apply, without running anything')
      .argument('<destination>', 'an IP address, with :PORT or [IPv6]:PORT'),
  ).action((dest: string, o: RawOptions) => {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(dest) ?? (isIP(dest) ? [dest, dest] : /^([^:]+):(\d+)$/.exec(dest));
    const ip = m?.[1];
    const port = m?.[2] !== undefined ? Number(m[2]) : undefined;
    if (!ip || !isIP(ip) || (port !== undefined && (port < 1 || port > 65535))) {
      throw new UsageError(`rules explain: '${dest}' is not ADDR, ADDR:PORT or [IPv6]:PORT`);
    }
    outcome = { kind: 'explain', routing: routingSettings(o, env), ip, port };
  });
  const cmd = configured(new Command('graft rules').description('inspect routing rules').addCommand(configured(explain, write)), write);
  const status = parse(cmd, argv);
  if (status !== undefined) return { kind: 'exit', status };
  if (!outcome) throw new UsageError('usage: graft rules explain ADDR[:PORT] [options]');
  return outcome;
}

function parseConfigCommand(argv: readonly string[], write: Output): CliOutcome {
  let outcome: CliOutcome | undefined;
  const check = new Command('check')
    .description('validate a config file without running anything')
    .argument('<file>', 'the YAML config file')
    .action((file: string) => {
      outcome = { kind: 'check', path: file };
    });
  const cmd = configured(new Command('graft config').description('work with config files').addCommand(configured(check, write)), write);
  const status = parse(cmd, argv);
  if (status !== undefined) return { kind: 'exit', status };
  if (!outcome) throw new UsageError('usage: graft config check FILE');
  return outcome;
}

/** The config file's settings, overridden by the command line's. */
function routingSettings(o: RawOptions, env: NodeJS.ProcessEnv): RoutingSettings {
  const path = findConfig(o.config, env);
  const c = path !== undefined ? loadConfig(path) : undefined;
  const cliSources = o.source;
  const egress = egressFrom({
    mark: o.mark ?? c?.mark,
    interface: o.interface ?? c?.interface,
    sources: cliSources ?? [...(c?.sources ?? [])],
  });
  const chains = new Map(c?.chains ?? []);
  const cliChain = (o.proxy ?? []).map((u, i) => parseProxyUrl(u, `--proxy ${i + 1}`));
  const defaultChain = cliChain.length ? cliChain : c?.proxy;
  if (defaultChain) chains.set('', defaultChain);
  // command-line rules first: they take precedence over the file's
  const rules = [...(o.rule ?? []).map((text, i) => parseRule(text, `--rule ${i + 1}`)), ...(c?.rules ?? [])];
  const toxicTexts: [string, string][] = [
    ...(o.latency !== undefined ? [['--latency', latencyShorthand(o.latency)] as [string, string]] : []),
    ...(o.bandwidth !== undefined ? [['--bandwidth', `bandwidth rate=${o.bandwidth}`] as [string, string]] : []),
    ...(o.resetAfter !== undefined ? [['--reset-after', `reset_peer time=${o.resetAfter}`] as [string, string]] : []),
    ...(o.toxic ?? []).map((t, i): [string, string] => [`--toxic ${i + 1}`, t]),
  ];
  const toxics = [...toxicTexts.map(([origin, text]) => parseToxic(text, origin)), ...(c?.toxics ?? [])];
  const connectFaults = [
    ...(o.refuse !== undefined ? [parseConnectFault(refuseShorthand(o.refuse), '--refuse')] : []),
    ...(o.fault ?? []).map((t, i) => parseConnectFault(t, `--fault ${i + 1}`)),
    ...(c?.connectFaults ?? []),
  ];
  const mode = o.mode ?? c?.mode ?? 'auto';
  if (toxics.length && mode === 'inplace') throw new UsageError('faults (toxics) act on the proxy path: they cannot be used with --mode inplace');
  if (o.seed !== undefined && !/^\d{1,10}$/.test(o.seed)) throw new UsageError(`--seed: '${o.seed}' is not a whole number`);
  const connectTimeoutMs = o.connectTimeout ?? c?.connectTimeoutMs;
  return {
    egress,
    mode,
    rules,
    chains,
    toxics,
    connectFaults,
    ...(o.seed !== undefined ? { seed: Number(o.seed) } : {}),
    ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    ...(c?.logFile !== undefined ? { logFile: c.logFile } : {}),
    ...(c?.logLevel !== undefined ? { logLevel: c.logLevel } : {}),
  };
}

function egressFrom(o: { mark: number | undefined; interface: string | undefined; sources: readonly string[] }): Egress {
  const v4 = o.sources.filter((a) => isIP(a) === 4);
  const v6 = o.sources.filter((a) => isIP(a) === 6);
  if (v4.length > 1 || v6.length > 1) {
    throw new UsageError(`--source: give at most one IPv4 and one IPv6 address (got ${o.sources.join(', ')})`);
  }
  return {
    ...(o.mark !== undefined ? { mark: o.mark } : {}),
    ...(o.interface !== undefined ? { interface: o.interface } : {}),
    ...(v4[0] !== undefined ? { source4: v4[0] } : {}),
    ...(v6[0] !== undefined ? { source6: v6[0] } : {}),
  };
}
