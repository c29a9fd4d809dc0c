/**
 * The settings of one run: the config file's, overridden by the command
 * line's, then checked across settings (proxy names, faults against the
 * mode, the log file). Both `graft -- ...` and `graft config check` end
 * here, so the check refuses exactly what a run would.
 */
import { UsageError } from '../errors.js';
import { addressFamily } from '../address.js';
import type { Egress } from '../egress/model.js';
import type { LogLevel, Plan } from '../plan.js';
import type { Rule } from '../rules/model.js';
import type { UpstreamProxy } from '../upstream/url.js';
import { checkLogFile } from './files.js';
import type { ChainChoice, Settings, SettingsSource } from './schema.js';
import type { ConnectFault } from '../chaos/connect-faults.js';
import type { DnsFault } from '../chaos/dns-faults.js';
import { FakeAddresses, DEFAULT_FAKE4, DEFAULT_FAKE6 } from '../dns/fake.js';

/** Routing settings after merging the config file and the command line. */
export type RoutingSettings = Pick<
  Plan,
  'egress' | 'mode' | 'rules' | 'chains' | 'toxics' | 'connectFaults' | 'dns' | 'seed' | 'connectTimeoutMs' | 'control'
> & {
  readonly logFile?: string;
  readonly logLevel?: LogLevel;
};

/** A source that set nothing: a run without a config file. */
export const NO_SETTINGS: SettingsSource = { settings: {}, locate: () => '' };

/** Present entries of optional values, in order. */
const present = <T>(...items: (T | undefined)[]): T[] => items.filter((x): x is T => x !== undefined);

/** The data faults a source gives: its shorthands first, then its full forms. */
const toxicsOf = (s: Settings) => [...present(s.latency, s.bandwidth, s['reset-after']), ...(s.toxics ?? [])];
const faultsOf = (s: Settings) => [...present(s.refuse), ...(s.faults ?? [])];

/**
 * Merges the command line over the config file and checks what no single
 * setting can: that every proxy name exists, faults fit the mode, and the
 * log file can be written. Throws UsageError naming the setting.
 */
export function resolveSettings(cli: SettingsSource, file: SettingsSource = NO_SETTINGS): RoutingSettings {
  const c = cli.settings;
  const f = file.settings;
  const chains = new Map<string, readonly UpstreamProxy[]>(f.proxies ?? []);
  const fallback = c.proxy ?? f.proxy;
  if (fallback) chains.set('', chainOf(fallback, chains));
  // command-line rules first: they take precedence over the file's
  const ruleList = [...(c.rules ?? []), ...(f.rules ?? [])];
  const rules = ruleList.filter((r): r is Rule => !('kind' in r));
  // rules that answer names with a DNS fault, in rule order, before the --fault ones
  const ruleFaults = ruleList.filter((r): r is DnsFault => 'kind' in r);
  for (const r of rules) checkProxyName(r, chains);
  const toxics = [...toxicsOf(c), ...toxicsOf(f)];
  const mode = c.mode ?? f.mode ?? 'auto';
  if (toxics.length && mode === 'inplace') throw new UsageError('faults (toxics) act on the proxy path: they cannot be used with --mode inplace');
  const control = c.control ?? f.control;
  if (control && mode === 'inplace') throw new UsageError('--control changes faults on the proxy path: it cannot be used with --mode inplace');
  const logFile =
    c.log?.file !== undefined
      ? { path: c.log.file, where: cli.locate(['log', 'file']) }
      : f.log?.file !== undefined
        ? { path: f.log.file, where: file.locate(['log', 'file']) }
        : undefined;
  if (logFile) checkLogFile(logFile.path, logFile.where);
  const seed = c.seed ?? f.seed;
  const connectTimeoutMs = c['connect-timeout'] ?? f['connect-timeout'];
  const logLevel = c.log?.level ?? f.log?.level;
  const faults = [...faultsOf(c), ...faultsOf(f)];
  const dnsFaults = [...ruleFaults, ...faults.filter((x): x is DnsFault => 'kind' in x)];
  const dnsMode = c.dns ?? f.dns;
  if (dnsFaults.length && dnsMode === 'off') throw new UsageError('DNS faults need graft to answer DNS: they cannot be used with --dns off');
  const rangesFrom = c['fake-range'] ? cli : file;
  const ranges = rangesFrom.settings['fake-range'] ?? [];
  const fake4 = ranges.find((r) => r.family === 4)?.text;
  const fake6 = ranges.find((r) => r.family === 6)?.text;
  try {
    // made once here so that config check finds a bad range too
    new FakeAddresses({ v4: fake4 ?? DEFAULT_FAKE4, v6: fake6 ?? DEFAULT_FAKE6 });
  } catch (err) {
    throw new UsageError(`${rangesFrom.locate(['fake-range'])}: ${(err as Error).message}`);
  }
  return {
    egress: egressOf(c.mark ?? f.mark, c.interface ?? f.interface, c.source ?? f.source ?? []),
    mode,
    rules,
    chains,
    toxics,
    connectFaults: faults.filter((x): x is ConnectFault => !('kind' in x)),
    dns: {
      ...(dnsMode !== undefined ? { mode: dnsMode } : {}),
      ...(fake4 !== undefined ? { fake4 } : {}),
      ...(fake6 !== undefined ? { fake6 } : {}),
      faults: dnsFaults,
    },
    ...(seed !== undefined ? { seed } : {}),
    ...(connectTimeoutMs !== undefined ? { connectTimeoutMs } : {}),
    ...(control !== undefined ? { control: { address: control } } : {}),
    ...(logFile !== undefined ? { logFile: logFile.path } : {}),
    ...(logLevel !== undefined ? { logLevel } : {}),
  };
}

/** The default chain's proxies: as given, or the named chain under proxies. */
function chainOf(choice: ChainChoice, named: ReadonlyMap<string, readonly UpstreamProxy[]>): readonly UpstreamProxy[] {
  if (choice.kind === 'urls') return choice.chain;
  const chain = named.get(choice.name);
  if (chain) return chain;
  throw new UsageError(`${choice.origin}: no proxy named '${choice.name}' under proxies${knownNames(named)}`);
}

const knownNames = (chains: ReadonlyMap<string, unknown>): string => {
  const names = [...chains.keys()].filter(Boolean);
  return names.length ? ` (named proxies: ${names.join(', ')})` : '';
};

/** A `proxy [NAME]` rule needs its chain. */
function checkProxyName(r: Rule, chains: ReadonlyMap<string, readonly UpstreamProxy[]>): void {
  if (r.action.kind !== 'proxy' || chains.has(r.action.name ?? '')) return;
  throw new UsageError(
    r.action.name === undefined
      ? `${r.origin}: rule '${r.text}': 'proxy' without a name needs a default proxy (--proxy, or proxy: in the config)`
      : `${r.origin}: rule '${r.text}': no proxy named '${r.action.name}'${knownNames(chains)}`,
  );
}

function egressOf(mark: number | undefined, iface: string | undefined, sources: readonly string[]): Egress {
  const v4 = sources.find((a) => addressFamily(a) === 4);
  const v6 = sources.find((a) => addressFamily(a) === 6);
  return {
    ...(mark !== undefined ? { mark } : {}),
    ...(iface !== undefined ? { interface: iface } : {}),
    ...(v4 !== undefined ? { source4: v4 } : {}),
    ...(v6 !== undefined ? { source6: v6 } : {}),
  };
}
