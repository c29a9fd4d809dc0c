/** Turns graft's command line into a Plan. Usage errors throw UsageError. */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { UsageError } from './errors.js';
import { LOG_LEVELS, type LogLevel, type Plan, type TerminalVerbosity } from './plan.js';
import { parseDuration } from './units.js';

const EXAMPLES = `
Examples:
  graft -- curl https://example.org/          every TCP connect of curl goes through graft
  graft -v -- ./server-binary                 one line per connection on stderr
  graft --log-file conns.ndjson -- go test ./...
  graft --connect-timeout 3s -- python3 fetch.py

graft exits with the program's exit status (128+N if signal N killed it),
127 if the program cannot be found, 126 if it cannot be executed, and 2 for
bad options or when tracing cannot be set up.`;

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
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
  return {
    kind: 'run',
    plan: {
      program,
      args,
      connectTimeoutMs: o.connectTimeout,
      registrationWaitMs: 5_000,
      log: { terminal, level: o.logLevel, ...(o.logFile !== undefined ? { file: o.logFile } : {}) },
    },
  };
}
