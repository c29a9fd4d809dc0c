/**
 * graft for test suites: run a program under graft with a plan and get its
 * exit status, output and connection records back.
 *
 *   import { runGraft } from 'graft';
 *   const r = await runGraft({
 *     program: './client', args: ['--fetch', 'http://198.51.100.7/'],
 *     toxics: ['latency latency=200ms'], rules: ['198.51.100.9 refuse ETIMEDOUT'],
 *   });
 *   assert.equal(r.status, 0);
 *   assert.ok(r.connections.every((c) => c.event !== 'connection' || c.action !== 'proxy' || c.faults));
 *
 * Options take the same text as the command line (`--proxy`, `--rule`,
 * `--toxic`, ...) and are checked the same way: bad input rejects with a
 * GraftUsageError naming it. No config file is read unless `config` says so.
 *
 * The returned handle is also the run while it goes on: `records()` follows
 * every record as it happens, and with `control` its `control` client
 * changes faults on the live program (the control API's operations, typed):
 *
 *   const run = runGraft({ program: './service', control: true });
 *   const db = await run.control.createProxy({ name: 'db', upstream: '10.0.0.5:5432' });
 *   await run.control.addToxic('db', { type: 'latency', attributes: { latency: 300 } });
 *   for await (const r of run.records()) if (r.event === 'refused') break;
 *   const result = await run;
 */
import pino from 'pino';
import { parseCommandLine } from './cli.js';
import { UsageError } from './errors.js';
import type { DnsMode, ModeChoice } from './plan.js';
import type { ConnectionRecord } from './records.js';
import { runPlan } from './run.js';
import { logFileStream } from './log.js';
import { Losses, type LostCounts } from './summary.js';
import { ControlClient, handlerTransport } from './control/client.js';
import type { ApiHandler } from './control/api.js';
import type { Control } from './control/service.js';
import type { ConnectionLog, StreamRecord } from './records.js';
import { iterate } from './record-stream.js';

export type { LostCounts } from './summary.js';
export type {
  AtExit,
  ConnectionRecord,
  ProxiedConnection,
  InplaceConnection,
  RefusedConnect,
  ListenedConnection,
  OpenedConnection,
  StreamRecord,
} from './records.js';
export { ControlClient, ControlError } from './control/client.js';
export type { NewProxy, NewToxic, ProxyChange, ProxyView, Toxic, ToxicChange, RulesView } from './control/client.js';
export { UsageError as GraftUsageError } from './errors.js';

export interface GraftRunOptions {
  readonly program: string;
  readonly args?: readonly string[];
  /** upstream proxy URLs, a chain in order */
  readonly proxy?: readonly string[];
  /** 'MATCH ACTION' rules, first match wins */
  readonly rules?: readonly string[];
  /** 'TYPE key=value... [on MATCH]' faults on the proxy path */
  readonly toxics?: readonly string[];
  /** connect faults and DNS faults, as --fault: 'refuse errno=ETIMEDOUT ...', 'nxdomain on *.example' */
  readonly faults?: readonly string[];
  /** who answers the program's DNS, as --dns (default: as the CLI decides) */
  readonly dns?: DnsMode;
  /** the fake address ranges of dns 'remote', as --fake-range */
  readonly fakeRange?: readonly string[];
  readonly seed?: number;
  readonly mark?: number;
  readonly interface?: string;
  readonly source?: readonly string[];
  readonly mode?: ModeChoice;
  /** e.g. '5s' or milliseconds */
  readonly connectTimeout?: string | number;
  /** a YAML config file (none is read otherwise) */
  readonly config?: string;
  /** the program's environment and working directory */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** given to the program on stdin */
  readonly input?: string | Buffer;
  /** also write graft's ndjson log here */
  readonly logFile?: string;
  /**
   * The control API: true for the handle's `control` alone, or an address
   * (as --control: PORT, HOST:PORT, unix:PATH) where it also listens for
   * other clients. Every direct connection is then relayed (see README).
   */
  readonly control?: boolean | string;
}

/** A run under way: await it for the result. */
export interface GraftRun extends PromiseLike<GraftRunResult> {
  /**
   * The control API's operations on this run (with the `control` option):
   * proxies as scopes over the program's destinations, toxics changed live.
   * Calls wait until the API is up; without `control` they reject.
   */
  readonly control: ControlClient;
  /** where the control API listens, once it does (`control` given as an address); undefined otherwise */
  readonly controlAddress: Promise<string | undefined>;
  /** every record from now until the run ends, each opening of a relayed connection included */
  records(): AsyncIterableIterator<StreamRecord>;
}

export interface GraftRunResult {
  /** the program's exit status, 128+N when killed by signal N (127/126/2 as the CLI) */
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly connections: readonly ConnectionRecord[];
  /**
   * What graft lost for lack of its own resources: connects it could not
   * serve (out of file descriptors; each failed at connect and has a
   * record with `lost`), and records it could not write to `logFile`
   * (a full disk). Both 0 in a complete run.
   */
  readonly lost: LostCounts;
}

function argvOf(o: GraftRunOptions): string[] {
  const argv: string[] = [];
  const add = (flag: string, values: readonly (string | number)[] | undefined): void => {
    for (const v of values ?? []) argv.push(flag, String(v));
  };
  add('--proxy', o.proxy);
  add('--rule', o.rules);
  add('--toxic', o.toxics);
  add('--fault', o.faults);
  add('--dns', o.dns !== undefined ? [o.dns] : undefined);
  add('--fake-range', o.fakeRange);
  add('--seed', o.seed !== undefined ? [o.seed] : undefined);
  add('--mark', o.mark !== undefined ? [o.mark] : undefined);
  add('--interface', o.interface !== undefined ? [o.interface] : undefined);
  add('--source', o.source);
  add('--mode', o.mode !== undefined ? [o.mode] : undefined);
  add('--connect-timeout', o.connectTimeout !== undefined ? [typeof o.connectTimeout === 'number' ? `${o.connectTimeout}ms` : o.connectTimeout] : undefined);
  add('--config', o.config !== undefined ? [o.config] : undefined);
  add('--log-file', o.logFile !== undefined ? [o.logFile] : undefined);
  add('--control', typeof o.control === 'string' ? [o.control] : undefined);
  return [...argv, '-q', '--', o.program, ...(o.args ?? [])];
}

export function runGraft(options: GraftRunOptions): GraftRun {
  let controlUp: (control: Control | undefined) => void = () => {};
  const control = new Promise<Control | undefined>((resolve) => (controlUp = resolve));
  let logUp: (log: ConnectionLog) => void = () => {};
  const log = new Promise<ConnectionLog>((resolve) => (logUp = resolve));
  const result = start(
    options,
    (c) => controlUp(c),
    (l) => logUp(l),
  );
  // a run that failed or ended before its API came up has none
  const ended = result.then(
    () => controlUp(undefined),
    () => controlUp(undefined),
  );
  const handler: ApiHandler = async (...request) => {
    const up = await control;
    if (!up) throw new UsageError(options.control ? 'the run ended before its control API was up' : "runGraft was started without 'control'");
    return up.handler(...request);
  };
  return {
    then: (onResult, onError) => result.then(onResult, onError),
    control: new ControlClient(handlerTransport(handler)),
    controlAddress: control.then((c) => c?.address),
    records: () => {
      let stop: (() => void) | undefined;
      let gone = false;
      return iterate<StreamRecord>({
        subscribe: (push) => {
          void log.then((l) => {
            if (!gone) stop = l.follow(push);
          });
          return () => {
            gone = true;
            stop?.();
          };
        },
        ended,
      });
    },
  };
}

async function start(options: GraftRunOptions, onControl: (c: Control) => void, onLog: (l: ConnectionLog) => void): Promise<GraftRunResult> {
  let usage = '';
  const outcome = parseCommandLine(argvOf(options), { out: () => {}, err: (s) => (usage += s) }, {});
  if (outcome.kind !== 'run') throw new UsageError(usage.trim().replace(/^graft: /, '') || 'bad options');
  // control: true is the API in this process alone, with no address
  const plan = options.control === true ? { ...outcome.plan, control: outcome.plan.control ?? {} } : outcome.plan;
  const losses = new Losses();
  const logger = plan.log.file !== undefined ? pino({ level: plan.log.level }, logFileStream(plan.log.file, losses)) : pino({ level: 'silent' });
  const result = await runPlan(plan, logger, {
    losses,
    collect: true,
    capture: { ...(options.input !== undefined ? { input: options.input } : {}) },
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    onControl,
    follow: onLog,
  });
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '', connections: result.connections, lost: result.lost };
}
