/**
 * `graft ctl`: the control API from the command line, through
 * ControlClient (client.ts). Exit statuses: 0 done; 1 the API refused
 * (`graft ctl: 404 proxy not found`) or nothing answers at the address;
 * 2 bad usage.
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { oneLine, UsageError } from '../errors.js';
import {
  ControlClient,
  ControlError,
  ControlUnreachable,
  formatControlAddress,
  httpTransport,
  type ControlRecord,
  type NewProxy,
  type ProxyView,
  type RulesView,
  type Toxic,
} from './client.js';
import { parseControlAddress, type ControlAddress } from './server.js';

/** Toxiproxy's own port: a Toxiproxy client's default finds graft there too. */
export const DEFAULT_CONTROL = '127.0.0.1:8474';

export interface CtlIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** all of standard input (populate -) */
  readonly stdin: () => string;
}

const EXAMPLES = `
Examples:
  graft ctl version
  graft ctl list
  graft ctl --json show redis
  graft ctl create redis --upstream 10.0.0.5:6379 --listen 127.0.0.1:26379
  graft ctl update redis --upstream 10.0.0.6:6379
  graft ctl enable redis
  graft ctl disable redis
  graft ctl toggle redis
  graft ctl delete redis
  graft ctl populate proxies.json      (or - for standard input)
  graft ctl toxic add redis latency --stream upstream latency=200 jitter=50
  graft ctl toxic update redis latency_upstream --toxicity 0.5 latency=500
  graft ctl toxic remove redis latency_upstream
  graft ctl reset
  graft ctl rules
  graft ctl --control unix:/run/graft.sock records

ADDR: PORT, HOST:PORT, [IPv6]:PORT or unix:PATH; default $GRAFT_CONTROL, else ${DEFAULT_CONTROL}.
Exit status: 0 done, 1 the API refused or nothing answers at ADDR, 2 bad usage.`;

/** What to do once the command line is read. */
type Task = (client: ControlClient, say: Say) => Promise<void>;

interface Say {
  readonly json: boolean;
  /** a line of human output */
  line(text: string): void;
  /** the API's JSON, as one document */
  doc(value: unknown): void;
}

// ---- human output ---------------------------------------------------------

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

const attributes = (t: Toxic | { readonly attributes?: Readonly<Record<string, number | string>> }): string =>
  Object.entries(t.attributes ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');

function toxicLine(t: Toxic): string {
  return `${t.name}: ${t.type} ${t.stream}, toxicity ${t.toxicity}${Object.keys(t.attributes).length ? `, ${attributes(t)}` : ''}`;
}

function proxyLines(proxies: readonly ProxyView[]): string[] {
  if (proxies.length === 0) return ['no proxies'];
  const rows = table([['NAME', 'LISTEN', 'UPSTREAM', 'ENABLED'], ...proxies.map((p) => [p.name, p.listen, p.upstream, p.enabled ? 'yes' : 'no'])]);
  const out = [rows[0]!];
  proxies.forEach((p, i) => {
    out.push(rows[i + 1]!);
    for (const t of p.toxics) out.push(`  toxic ${toxicLine(t)}`);
  });
  return out;
}

const proxySummary = (p: ProxyView): string => `${p.name}: ${p.listen} -> ${p.upstream}, ${p.enabled ? 'enabled' : 'disabled'}`;

function rulesLines(view: RulesView): string[] {
  const rows = view.rules.map((r) => [`${r.index}.`, r.text, `[${r.origin}]`, r.action]);
  return [`dns: ${view.dns}`, ...(rows.length ? table(rows).map((l) => `  ${l}`) : ['  no rules'])];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);

const SHOWN = new Set(['event', 'pid', 'tid', 'exe', 'client', 'local', 'dst', 'name', 'action', 'proxy', 'bytesUp', 'bytesDown', 'durationMs']);

/**
 * What a record says, in a line: `open       1234 curl -> 198.51.100.7:80 (proxy web)`,
 * `connection 1234 curl -> a.example (198.18.0.1:443) (proxy) 83 B up, 18 B down, 3 ms`.
 * Fields it does not know come last as KEY=VALUE.
 */
export function recordLine(r: ControlRecord): string {
  const dst = str(r.dst);
  const name = str(r.name);
  const where = name && dst ? `${name} (${dst})` : (name ?? dst);
  const who = r.pid !== undefined || r.exe !== undefined ? [str(r.pid), str(r.exe)].filter(Boolean).join(' ') : str(r.client);
  // "proxy web": relayed by graft's proxy, in the control API's proxy web; "listener web": a client of web's listener
  const how = [str(r.action) ?? (r.proxy !== undefined ? 'proxy' : undefined), str(r.proxy)].filter(Boolean).join(' ');
  const bytes =
    r.bytesUp !== undefined || r.durationMs !== undefined
      ? `${str(r.bytesUp) ?? 0} B up, ${str(r.bytesDown) ?? 0} B down, ${str(r.durationMs) ?? 0} ms`
      : undefined;
  const rest = Object.entries(r)
    .filter(([k, v]) => !SHOWN.has(k) && v !== undefined && v !== null)
    .map(([k, v]) => `${k}=${str(v) ?? JSON.stringify(v)}`);
  const parts = [r.event.padEnd(10), who, where !== undefined ? `-> ${where}` : undefined, how ? `(${how})` : undefined, bytes, ...rest];
  return oneLine(parts.filter((p) => p !== undefined && p !== '').join(' '));
}

// ---- arguments ------------------------------------------------------------

/** KEY=VALUE: VALUE a number, or else a string (an errno name for graft's connect-fault toxics). */
export function parseAttributes(pairs: readonly string[]): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const pair of pairs) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/s.exec(pair);
    if (!m) throw new UsageError(`'${pair}' is not KEY=VALUE (an attribute, such as latency=200)`);
    const value = m[2]!;
    out[m[1]!] = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(value) ? Number(value) : value;
  }
  return out;
}

function parseToxicity(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--toxicity: '${text}' is not a number (a probability from 0 to 1)`);
  return n;
}

function readPopulate(file: string, io: CtlIo): NewProxy[] {
  let text: string;
  try {
    text = file === '-' ? io.stdin() : readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`populate: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`populate: ${file === '-' ? 'standard input' : file} is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(value)) throw new UsageError(`populate: ${file === '-' ? 'standard input' : file} is not a JSON array of proxies`);
  return value as NewProxy[];
}

// ---- commands -------------------------------------------------------------

interface GlobalOptions {
  control?: string;
  json?: boolean;
}

function commands(io: CtlIo, set: (task: Task) => void): Command {
  const cmd = new Command('graft ctl')
    .description("control a running graft through its control API (Toxiproxy 2.x's, with graft's additions)")
    .usage('[--control ADDR] [--json] COMMAND ...')
    .option('--control <addr>', `the control API: PORT, HOST:PORT, [IPv6]:PORT or unix:PATH (default: $GRAFT_CONTROL, else ${DEFAULT_CONTROL})`)
    .option('--json', "print the API's JSON (ndjson for records)")
    .helpOption('-h, --help', 'show this help')
    .addHelpText('after', EXAMPLES);

  cmd
    .command('version')
    .description('the Toxiproxy API version graft follows')
    .action(() =>
      set(async (c, say) => {
        const version = await c.version();
        if (say.json) say.doc({ version });
        else say.line(version);
      }),
    );
  cmd
    .command('list')
    .description('every proxy (name, listen, upstream, enabled) and its toxics')
    .action(() =>
      set(async (c, say) => {
        const proxies = await c.proxies();
        if (say.json) say.doc(Object.fromEntries(proxies.map((p) => [p.name, p])));
        else proxyLines(proxies).forEach((l) => say.line(l));
      }),
    );
  cmd
    .command('show')
    .description('one proxy and its toxics')
    .argument('<name>')
    .action((name: string) =>
      set(async (c, say) => {
        const proxy = await c.proxy(name);
        if (say.json) say.doc(proxy);
        else proxyLines([proxy]).forEach((l) => say.line(l));
      }),
    );
  cmd
    .command('create')
    .description('create a proxy')
    .argument('<name>')
    .requiredOption('--upstream <host:port>', 'where it forwards to')
    .option('--listen <host:port>', 'where it listens (default 127.0.0.1:0)')
    .option('--disabled', 'create it disabled')
    .action((name: string, o: { upstream: string; listen?: string; disabled?: boolean }) =>
      set(async (c, say) => {
        const proxy = await c.createProxy({ name, upstream: o.upstream, ...(o.listen !== undefined ? { listen: o.listen } : {}), enabled: !o.disabled });
        if (say.json) say.doc(proxy);
        else say.line(`created ${proxySummary(proxy)}`);
      }),
    );
  cmd
    .command('update')
    .description("change a proxy's upstream or listen address")
    .argument('<name>')
    .option('--upstream <host:port>', 'where it forwards to')
    .option('--listen <host:port>', 'where it listens')
    .action((name: string, o: { upstream?: string; listen?: string }) => {
      if (o.upstream === undefined && o.listen === undefined) throw new UsageError('update: give --upstream, --listen or both');
      set(async (c, say) => {
        const proxy = await c.updateProxy(name, {
          ...(o.upstream !== undefined ? { upstream: o.upstream } : {}),
          ...(o.listen !== undefined ? { listen: o.listen } : {}),
        });
        if (say.json) say.doc(proxy);
        else say.line(`updated ${proxySummary(proxy)}`);
      });
    });
  const switchTo = (verb: string, description: string, enabled: (current: ProxyView | undefined) => boolean, needsCurrent: boolean): void => {
    cmd
      .command(verb)
      .description(description)
      .argument('<name>')
      .action((name: string) =>
        set(async (c, say) => {
          const proxy = await c.setEnabled(name, enabled(needsCurrent ? await c.proxy(name) : undefined));
          if (say.json) say.doc(proxy);
          else say.line(`${proxy.name} ${proxy.enabled ? 'enabled' : 'disabled'}`);
        }),
      );
  };
  switchTo('enable', 'enable a proxy', () => true, false);
  switchTo('disable', 'disable a proxy: its connections are closed, new ones refused', () => false, false);
  switchTo('toggle', 'enable a disabled proxy, disable an enabled one', (p) => !p!.enabled, true);
  cmd
    .command('delete')
    .description('remove a proxy and its toxics')
    .argument('<name>')
    .action((name: string) =>
      set(async (c, say) => {
        await c.deleteProxy(name);
        if (!say.json) say.line(`deleted ${name}`);
      }),
    );
  cmd
    .command('populate')
    .description("create or replace the proxies of a JSON array (Toxiproxy's config-file format); - reads stdin")
    .argument('<file>')
    .action((file: string) => {
      const list = readPopulate(file, io);
      set(async (c, say) => {
        const proxies = await c.populate(list);
        if (say.json) say.doc({ proxies });
        else
          say.line(
            `populated ${proxies.length} ${proxies.length === 1 ? 'proxy' : 'proxies'}${proxies.length ? `: ${proxies.map((p) => p.name).join(', ')}` : ''}`,
          );
      });
    });

  const toxic = cmd.command('toxic').description('add, update or remove a toxic');
  toxic
    .command('add')
    .description('add a toxic to a proxy; KEY=VALUE sets an attribute (a number, or a string such as an errno name)')
    .argument('<proxy>')
    .argument('<type>', 'latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, or one of graft')
    .argument('[attributes...]', 'KEY=VALUE')
    .option('--name <name>', 'its name (default TYPE_STREAM)')
    .addOption(new Option('--stream <stream>', 'the direction it acts on (default downstream)').choices(['upstream', 'downstream']))
    .option('--toxicity <p>', 'the probability it applies to a connection (default 1)')
    .action((proxy: string, type: string, pairs: string[], o: { name?: string; stream?: 'upstream' | 'downstream'; toxicity?: string }) => {
      const attrs = parseAttributes(pairs);
      const toxicity = o.toxicity !== undefined ? parseToxicity(o.toxicity) : undefined;
      set(async (c, say) => {
        const added = await c.addToxic(proxy, {
          type,
          attributes: attrs,
          ...(o.name !== undefined ? { name: o.name } : {}),
          ...(o.stream !== undefined ? { stream: o.stream } : {}),
          ...(toxicity !== undefined ? { toxicity } : {}),
        });
        if (say.json) say.doc(added);
        else say.line(`added to ${proxy}: ${toxicLine(added)}`);
      });
    });
  toxic
    .command('update')
    .description("change a toxic's toxicity or attributes (those not given keep their values)")
    .argument('<proxy>')
    .argument('<name>')
    .argument('[attributes...]', 'KEY=VALUE')
    .option('--toxicity <p>', 'the probability it applies to a connection')
    .action((proxy: string, name: string, pairs: string[], o: { toxicity?: string }) => {
      const attrs = parseAttributes(pairs);
      const toxicity = o.toxicity !== undefined ? parseToxicity(o.toxicity) : undefined;
      if (pairs.length === 0 && toxicity === undefined) throw new UsageError('toxic update: give --toxicity or KEY=VALUE attributes');
      set(async (c, say) => {
        const updated = await c.updateToxic(proxy, name, { ...(pairs.length ? { attributes: attrs } : {}), ...(toxicity !== undefined ? { toxicity } : {}) });
        if (say.json) say.doc(updated);
        else say.line(`updated on ${proxy}: ${toxicLine(updated)}`);
      });
    });
  toxic
    .command('remove')
    .description('remove a toxic')
    .argument('<proxy>')
    .argument('<name>')
    .action((proxy: string, name: string) =>
      set(async (c, say) => {
        await c.removeToxic(proxy, name);
        if (!say.json) say.line(`removed ${name} from ${proxy}`);
      }),
    );

  cmd
    .command('reset')
    .description('remove every toxic and enable every proxy')
    .action(() =>
      set(async (c, say) => {
        await c.reset();
        if (!say.json) say.line('reset: every toxic removed, every proxy enabled');
      }),
    );
  cmd
    .command('rules')
    .description('the rules in force, in order, and how names are answered')
    .action(() =>
      set(async (c, say) => {
        const view = await c.rules();
        if (say.json) say.doc(view);
        else rulesLines(view).forEach((l) => say.line(l));
      }),
    );
  cmd
    .command('records')
    .description('follow the connection records as they happen, until Ctrl-C or graft ends')
    .action(() =>
      set(async (c, say) => {
        for await (const line of c.recordLines()) {
          if (line.trim() === '') continue;
          if (say.json) say.line(line);
          else say.line(recordLine(JSON.parse(line) as ControlRecord));
        }
      }),
    );
  return cmd;
}

/** Every command and subcommand: errors thrown, not exits; output through io, usage errors as one `graft ctl:` line. */
function configure(cmd: Command, io: CtlIo): void {
  cmd
    .exitOverride()
    .showSuggestionAfterError()
    .configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      outputError: (text, write) =>
        write(
          `graft ctl: ${oneLine(
            text
              .trim()
              .replace(/^error: /, '')
              .replace(/\n(?=\(Did you mean)/, ' '),
          )}\n`,
        ),
    });
  for (const sub of cmd.commands) configure(sub, io);
}

/** Standard output's reader has gone. */
class OutputClosed extends Error {}

/** --control, else $GRAFT_CONTROL, else Toxiproxy's port; a bad one named by where it came from. */
function controlAddress(flag: string | undefined, env: NodeJS.ProcessEnv): ControlAddress {
  const [where, text] = flag !== undefined ? ['--control', flag] : env.GRAFT_CONTROL ? ['$GRAFT_CONTROL', env.GRAFT_CONTROL] : ['the default', DEFAULT_CONTROL];
  try {
    return parseControlAddress(text);
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(`${where}: ${err.message}`);
    throw err;
  }
}

/** `graft ctl ARGV...`; resolves to the exit status. */
export async function runCtl(argv: readonly string[], io: CtlIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const picked: { task?: Task } = {};
  const cmd = commands(io, (t) => (picked.task = t));
  configure(cmd, io);
  let task: Task;
  let address: ControlAddress;
  try {
    cmd.parse(argv, { from: 'user' });
    if (!picked.task) throw new UsageError('no command given; see graft ctl --help');
    task = picked.task;
    const o = cmd.opts<GlobalOptions>();
    address = controlAddress(o.control, env);
  } catch (err) {
    // help asked for: 0; help shown for a missing command, or a usage error: 2
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UsageError) {
      io.err(`graft ctl: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const json = cmd.opts<GlobalOptions>().json === true;
  const write = (text: string): void => {
    try {
      io.out(text);
    } catch (err) {
      throw (err as NodeJS.ErrnoException).code === 'EPIPE' ? new OutputClosed() : err;
    }
  };
  const say: Say = {
    json,
    line: (text) => write(`${text}\n`),
    doc: (value) => write(`${JSON.stringify(value, null, 2)}\n`),
  };
  try {
    await task(new ControlClient(httpTransport(address)), say);
    return 0;
  } catch (err) {
    // the reader of the output left (graft ctl records | head): done
    if (err instanceof OutputClosed) return 0;
    if (err instanceof ControlError) io.err(`graft ctl: ${err.status} ${oneLine(err.message)}\n`);
    else if (err instanceof ControlUnreachable) {
      const at = formatControlAddress(address);
      io.err(`graft ctl: nothing answers at ${at} (start graft with --control ${at})\n`);
    } else io.err(`graft ctl: ${oneLine(err instanceof Error ? err.message : String(err))}\n`);
    return 1;
  }
}
