/** Turns graft's command line into a Plan. Usage errors throw UsageError. */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { oneLine, UsageError } from './errors.js';
import { addressFamily, notAnAddress } from './address.js';
import { canonicalName } from './dns/pattern.js';
import { LOG_LEVELS, type LogLevel, type Plan, type TerminalVerbosity } from './plan.js';
import { parseControlAddress, type ControlAddress } from './control/server.js';
import { findConfig, loadConfig } from './config/file.js';
import { FLAGS, readSettings, type FlagSpec, type SettingPath, type SettingsSource } from './settings/schema.js';
import { resolveSettings, type RoutingSettings } from './settings/resolve.js';
import { checkLogFile } from './settings/files.js';
import { packageRoot } from './package-root.js';

export type { RoutingSettings } from './settings/resolve.js';

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
  const pkg = JSON.parse(readFileSync(new URL('package.json', packageRoot), 'utf8')) as { version: string };
  return pkg.version;
}

/** What commander hands back: the raw text of each flag (lists for repeatable ones), and the run-only switches. */
type RawOptions = Record<string, string | string[] | boolean | undefined> & {
  config?: string;
  verbose?: boolean;
  quiet?: boolean;
};

/** commander's attribute name for a flag: --log-file -> logFile. */
const attributeOf = (flag: string): string => flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** The command line's values as the settings schema reads them: keyed by config path. */
function rawSettings(o: RawOptions, flags: readonly FlagSpec[]): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const f of flags) {
    const value = o[attributeOf(f.flag)];
    if (value === undefined) continue;
    let at = raw;
    for (const key of f.path.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
    at[f.path[f.path.length - 1]!] = value;
  }
  return raw;
}

/** Names a place on the command line: "--rule 2" for the second --rule, "--log-file". */
function locateFlag(path: SettingPath): string {
  const spec = FLAGS.find((f) => f.path.every((k, i) => path[i] === k));
  if (!spec) return path.join('.');
  const index = path[spec.path.length];
  return spec.repeat && typeof index === 'number' ? `${spec.flag} ${index + 1}` : spec.flag;
}

/** What a subcommand asks main to do. */
export type CliOutcome =
  | { kind: 'run'; plan: Plan }
  | { kind: 'explain'; routing: RoutingSettings; host: string; port: number | undefined }
  | { kind: 'check'; path: string }
  | { kind: 'ctl'; argv: readonly string[] }
  | { kind: 'serve'; plan: ServePlan }
  | { kind: 'exit'; status: number };

type Output = { out: (s: string) => void; err: (s: string) => void };

/** Adds the settings flags; `graft rules explain` takes those that decide where connections go. */
function withSettingsOptions(cmd: Command, flags: readonly FlagSpec[]): Command {
  cmd.option('--config <file>', 'read settings from this YAML file (default: $GRAFT_CONFIG, else ~/.config/graft/config.yaml if present)');
  for (const f of flags) {
    const option = new Option(`${f.flag} ${f.arg}`, f.help);
    cmd.addOption(f.repeat ? option.argParser(collect) : option);
  }
  return cmd;
}

const ROUTING_FLAGS = FLAGS.filter((f) => !f.runOnly);

/** commander's own usage errors, as graft's: one line ("Did you mean" joined on), the user's text escaped. */
function commanderError(str: string): string {
  return `graft: ${oneLine(
    str
      .trim()
      .replace(/^error: /, '')
      .replace(/\n(?=\(Did you mean)/, ' '),
  )}\n`;
}

function configured(cmd: Command, out: Output): Command {
  return cmd.exitOverride().configureOutput({ writeOut: out.out, writeErr: out.err, outputError: (str, w) => w(commanderError(str)) });
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

/** `graft serve`: the control API and its proxies' listeners, no program (a Toxiproxy server). */
export interface ServePlan {
  readonly address: ControlAddress;
  readonly log: { readonly terminal: TerminalVerbosity; readonly level: LogLevel; readonly file?: string };
  readonly seed?: number;
  /** a JSON file of proxies to create at start (Toxiproxy's -config) */
  readonly populate?: string;
}

/** Toxiproxy's own default: its clients look there first. */
export const DEFAULT_SERVE_ADDRESS = '127.0.0.1:8474';

function parseServeCommand(argv: readonly string[], write: Output): CliOutcome {
  let outcome: CliOutcome | undefined;
  const cmd = configured(
    new Command('graft serve')
      .description(
        'serve the Toxiproxy-compatible control API with no program: each proxy listens on its listen address and forwards to its upstream through its toxics, as Toxiproxy does (see docs/control-api.md)',
      )
      .option('--control <addr>', `where the API listens: PORT (loopback), HOST:PORT or unix:PATH (default ${DEFAULT_SERVE_ADDRESS})`)
      .option('--log-file <path>', 'write one JSON record per connection (ndjson) to this file')
      .option('--log-level <level>', `${LOG_LEVELS.join('|')}: threshold for the log file and -v (default info)`)
      .option('--seed <n>', 'seed for toxicity: the same seed picks the same connections')
      .option('--populate <file>', "create these proxies at start: a JSON list, as POST /populate takes (Toxiproxy's -config file)")
      .option('-v, --verbose', 'print one line per connection to stderr')
      .option('-q, --quiet', 'print nothing but fatal errors')
      .helpOption('-h, --help', 'show this help')
      .action((o: { control?: string; logFile?: string; logLevel?: string; seed?: string; populate?: string; verbose?: boolean; quiet?: boolean }) => {
        const sources = readSettings(
          {
            ...(o.logFile !== undefined || o.logLevel !== undefined ? { log: { file: o.logFile, level: o.logLevel } } : {}),
            ...(o.seed !== undefined ? { seed: o.seed } : {}),
          },
          locateFlag,
        ).settings;
        if (o.verbose && o.quiet) throw new UsageError('-v/--verbose and -q/--quiet cannot be used together');
        if (sources.log?.file !== undefined) checkLogFile(sources.log.file, '--log-file');
        let address: ControlAddress;
        try {
          address = parseControlAddress(o.control ?? DEFAULT_SERVE_ADDRESS);
        } catch (err) {
          throw new UsageError(`--control: ${(err as Error).message}`);
        }
        outcome = {
          kind: 'serve',
          plan: {
            address,
            log: {
              terminal: o.verbose ? 'verbose' : o.quiet ? 'quiet' : 'normal',
              level: sources.log?.level ?? 'info',
              ...(sources.log?.file !== undefined ? { file: sources.log.file } : {}),
            },
            ...(sources.seed !== undefined ? { seed: sources.seed } : {}),
            ...(o.populate !== undefined ? { populate: o.populate } : {}),
          },
        };
      }),
    write,
  );
  const status = parse(cmd, argv);
  if (status !== undefined) return { kind: 'exit', status };
  if (!outcome) throw new UsageError('usage: graft serve [--control ADDR]');
  return outcome;
}

export function parseCommandLine(argv: readonly string[], write: Output, env: NodeJS.ProcessEnv = process.env): CliOutcome {
  if (argv[0] === 'serve') return parseServeCommand(argv.slice(1), write);
  if (argv[0] === 'rules') return parseRulesCommand(argv.slice(1), write, env);
  if (argv[0] === 'config') return parseConfigCommand(argv.slice(1), write);
  if (argv[0] === 'ctl') return { kind: 'ctl', argv: argv.slice(1) };
  const cmd = configured(
    withSettingsOptions(
      new Command('graft')
        .usage(
          '[options] -- program [args...]\n       graft rules explain ADDR[:PORT] [options]\n       graft config check FILE\n       graft serve [--control ADDR]\n       graft ctl [--control ADDR] [--json] COMMAND',
        )
        .description(
          "Run a program with every TCP connection it makes steered as graft's options say: through graft's local proxy (and upstream proxies), marked in place, refused, or with faults.",
        )
        .version(packageVersion(), '-V, --version', 'print the version')
        .helpOption('-h, --help', 'show this help')
        .argument('[program]', 'the program to run')
        .argument('[args...]', "the program's arguments"),
      FLAGS,
    )
      .option('-v, --verbose', 'print one line per connection to stderr')
      .option('-q, --quiet', 'print nothing but fatal errors')
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
  const r = routingSettings(o, FLAGS, env);
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
      dns: r.dns,
      ...(r.seed !== undefined ? { seed: r.seed } : {}),
      ...(r.connectTimeoutMs !== undefined ? { connectTimeoutMs: r.connectTimeoutMs } : {}),
      ...(r.control !== undefined ? { control: r.control } : {}),
      log: { terminal, level: r.logLevel ?? 'info', ...(r.logFile !== undefined ? { file: r.logFile } : {}) },
    },
  };
}

/** "198.51.100.7", "198.51.100.7:443", "[2001:db8::1]:443" */
/** ADDR, ADDR:PORT, [IPv6]:PORT, NAME or NAME:PORT: an address, or a host name (canonical). */
function parseDestination(dest: string): { host: string; port: number | undefined } {
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(dest) ?? (addressFamily(dest) ? [dest, dest] : (/^([^:]+):(\d{1,5})$/.exec(dest) ?? [dest, dest]));
  const host = m[1];
  const port = m[2] !== undefined ? Number(m[2]) : undefined;
  const name = host !== undefined && !addressFamily(host) ? canonicalName(host) : undefined;
  if (!host || !(addressFamily(host) || name) || (port !== undefined && (port < 1 || port > 65535))) {
    throw new UsageError(
      `rules explain: '${dest}' is not ADDR, ADDR:PORT, [IPv6]:PORT, NAME or NAME:PORT${host?.includes('%') ? ` (${notAnAddress(host)})` : ''}`,
    );
  }
  return { host: name ?? host, port };
}

function parseRulesCommand(argv: readonly string[], write: Output, env: NodeJS.ProcessEnv): CliOutcome {
  let outcome: CliOutcome | undefined;
  const explain = withSettingsOptions(
    new Command('explain')
      .description(
        'print which rule a TCP connect to ADDR[:PORT] or NAME[:PORT] would match, what graft would do (for a name: what its DNS answers too) and which faults would apply, without running anything',
      )
      .argument('<destination>', 'an IP address or a host name, with :PORT or [IPv6]:PORT'),
    ROUTING_FLAGS,
  ).action((dest: string, o: RawOptions) => {
    const { host, port } = parseDestination(dest);
    outcome = { kind: 'explain', routing: routingSettings(o, ROUTING_FLAGS, env), host, port };
  });
  const cmd = configured(new Command('graft rules').description('inspect routing rules').addCommand(configured(explain, write)), write);
  const status = parse(cmd, argv);
  if (status !== undefined) return { kind: 'exit', status };
  if (!outcome) throw new UsageError('usage: graft rules explain ADDR[:PORT]|NAME[:PORT] [options]');
  return outcome;
}

function parseConfigCommand(argv: readonly string[], write: Output): CliOutcome {
  let outcome: CliOutcome | undefined;
  const check = new Command('check')
    .description('validate a config file without running anything: it refuses what a run with --config would')
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

/** The command line's settings over the config file's (--config, $GRAFT_CONFIG or the default place). */
function routingSettings(o: RawOptions, flags: readonly FlagSpec[], env: NodeJS.ProcessEnv): RoutingSettings {
  const cli: SettingsSource = readSettings(rawSettings(o, flags), locateFlag);
  const path = findConfig(o.config, env);
  return resolveSettings(cli, path !== undefined ? loadConfig(path) : undefined);
}
