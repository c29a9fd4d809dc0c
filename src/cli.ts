/** Turns graft's command line into a Plan. Usage errors throw UsageError. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { UsageError } from './errors.js';
import { LOG_LEVELS, type Egress, type LogLevel, type ModeChoice, type Plan, type TerminalVerbosity } from './plan.js';
import { parseRule } from './rules/parse.js';
import { parseProxyUrl, type UpstreamProxy } from './upstream/url.js';
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
  proxy?: string[];
  rule?: string[];
  mark?: number;
  interface?: string;
  source?: string[];
  mode: ModeChoice;
  verbose?: boolean;
  quiet?: boolean;
  logFile?: string;
  logLevel: LogLevel;
  connectTimeout: number;
}

export type CliOutcome = { kind: 'run'; plan: Plan } | { kind: 'exit'; status: number };

export function parseCommandLine(argv: readonly string[], write: { out: (s: string) => void; err: (s: string) => void }): CliOutcome {
  const cmd = new Command('graft')
    .usage('[options] -- program [args...]')
    .description("Run a program with every TCP connection it makes steered through graft's local proxy.")
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show this help')
    .argument('[program]', 'the program to run')
    .argument('[args...]', "the program's arguments")
    .option('--proxy <url>', 'send connections through this upstream proxy: socks5://[user:pass@]host:port, socks4://, socks4a://, http:// (CONNECT); repeat for a chain', collect)
    .option('--rule <rule>', "'MATCH ACTION': how matching destinations go (repeatable, first match wins; see README)", collect)
    .option('--mark <value>', 'set SO_MARK on every outgoing connection (decimal or 0x hex)', markArg)
    .option('--interface <name>', 'send every outgoing connection out of this interface (SO_BINDTODEVICE)', interfaceArg)
    .option('--source <address>', 'leave from this local address (once per family: IPv4 and/or IPv6)', sourceArg)
    .addOption(
      new Option('--mode <mode>', 'where the egress options act: on the program\'s own sockets (inplace) or on graft\'s proxy (proxy); auto: inplace when nothing needs the proxy')
        .choices(['auto', 'proxy', 'inplace'])
        .default('auto'),
    )
    .option('-v, --verbose', 'print one line per connection to stderr')
    .option('-q, --quiet', 'print nothing but fatal errors')
    .option('--log-file <path>', 'write one JSON record per connection (ndjson) to this file')
    .addOption(new Option('--log-level <level>', 'threshold for the log file and -v').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--connect-timeout <duration>', 'give up dialing a destination after this long (e.g. 500ms, 5s)').argParser(durationArg('--connect-timeout')).default(10_000, '10s'))
    .passThroughOptions()
    .exitOverride()
    .configureOutput({
      writeOut: write.out,
      writeErr: write.err,
      outputError: (str, w) => w(`graft: ${str.replace(/^error: /, '')}`),
    })
    .addHelpText('after', EXAMPLES);

  try {
    cmd.parse(argv as string[], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return { kind: 'exit', status: 0 };
      }
      return { kind: 'exit', status: 2 };
    }
    throw err;
  }

  const o = cmd.opts<RawOptions>();
  const [program, args] = cmd.processedArgs as [string | undefined, string[]];
  if (!program) throw new UsageError('no program given; usage: graft [options] -- program [args...]');
  if (o.verbose && o.quiet) throw new UsageError('-v/--verbose and -q/--quiet cannot be used together');
  const terminal: TerminalVerbosity = o.verbose ? 'verbose' : o.quiet ? 'quiet' : 'normal';
  const egress = egressFrom(o);
  return {
    kind: 'run',
    plan: {
      program,
      args,
      egress,
      mode: o.mode,
      rules: (o.rule ?? []).map((text, i) => parseRule(text, `--rule ${i + 1}`)),
      chains: chainsFrom(o.proxy ?? []),
      connectTimeoutMs: o.connectTimeout,
      registrationWaitMs: 5_000,
      log: { terminal, level: o.logLevel, ...(o.logFile !== undefined ? { file: o.logFile } : {}) },
    },
  };
}

function egressFrom(o: RawOptions): Egress {
  const sources = o.source ?? [];
  const v4 = sources.filter((a) => isIP(a) === 4);
  const v6 = sources.filter((a) => isIP(a) === 6);
  if (v4.length > 1 || v6.length > 1) {
    throw new UsageError(`--source: give at most one IPv4 and one IPv6 address (got ${sources.join(', ')})`);
  }
  return {
    ...(o.mark !== undefined ? { mark: o.mark } : {}),
    ...(o.interface !== undefined ? { interface: o.interface } : {}),
    ...(v4[0] !== undefined ? { source4: v4[0] } : {}),
    ...(v6[0] !== undefined ? { source6: v6[0] } : {}),
  };
}

function chainsFrom(urls: readonly string[]): Map<string, readonly UpstreamProxy[]> {
  const chain = urls.map((u, i) => parseProxyUrl(u, `--proxy ${i + 1}`));
  return new Map(chain.length ? [['', chain]] : []);
}
