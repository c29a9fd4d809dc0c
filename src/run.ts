/**
 * One run of graft: start the proxy, start the tracer with the program,
 * feed the tracer's records to the proxy, and end with the program's status.
 */
import type { Plan } from './plan.js';
import type { Logger } from 'pino';
import type { Readable } from 'node:stream';
import { startProxy, type Proxy } from './proxy/server.js';
import { tracerOpened, tracerRelayed } from './proxy/connection-record.js';
import { ConnectionLog, type ConnectionRecord } from './records.js';
import { startTracer, type RunningTracer } from './tracer/supervisor.js';
import type { CallerState } from './tracer/caller.js';
import { RecordDecoder, type FailedRecord, type TracerRecord } from './tracer/channel.js';
import { encodeTable } from './tracer/table.js';
import { formatEndpoint } from './address.js';
import { checkEgress } from './egress/checks.js';
import { preloadNativeSockets } from './egress/native-socket.js';
import { Routing } from './routing.js';
import { readResolvConf } from './config/resolv.js';
import { seededRandom } from './chaos/random.js';
import { Losses, type LostCounts } from './summary.js';
import { DnsServer } from './dns/server.js';
import { dnsFaultChooser } from './chaos/dns-faults.js';
import type { ControlMessage, RuleMessage } from './tracer/messages.js';
import { startControl, type Control } from './control/service.js';
import type { RulesView } from './control/api.js';

export interface RunResult {
  readonly status: number;
  readonly connections: readonly ConnectionRecord[];
  /** the program's output, when captured */
  readonly stdout?: string;
  readonly stderr?: string;
  /** what graft could not serve or write for lack of its own resources */
  readonly lost: LostCounts;
}

export interface RunOptions {
  /** capture the program's stdout and stderr (and give it `input` on stdin) instead of sharing graft's */
  readonly capture?: { readonly input?: string | Buffer };
  /** Collect connection records in the result (the programmatic API does). */
  readonly collect?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** what graft's own caller gave it, for the program (the CLI) */
  readonly caller?: CallerState;
  /** counts what graft loses (the CLI's exit summary); a fresh one otherwise */
  readonly losses?: Losses;
  /** called once the control API (plan.control) runs, before the program starts */
  readonly onControl?: (control: Control) => void;
  /** sees every record and opening as it happens (runGraft's record stream) */
  readonly follow?: (log: ConnectionLog) => void;
}

function whoOf(rec: { pid: number; tid: number; exe: string; dstIp: string; dstPort: number }) {
  return { pid: rec.pid, tid: rec.tid, exe: rec.exe, dst: formatEndpoint(rec.dstIp, rec.dstPort) };
}

/**
 * When koffi is bound (preloadNativeSockets) once the program runs: every
 * proxied connection needs it, and loading it takes tens of milliseconds
 * in which graft's event loop does nothing else. Bound while the program
 * starts, it would hold up the first connection less, but every short
 * command (`graft -- true`) would wait for it at exit. So it is bound once
 * the program has run this long, and a connection made before then binds
 * it itself.
 */
const PRELOAD_NATIVE_AFTER_MS = 50;

/**
 * Whether graft's proxy in Node may dial at all: a redirect the tracer
 * does not relay itself, or a handshake delay fault (which sends a relay
 * rule's connect through Node). Otherwise koffi is not loaded ahead.
 */
function dialsInNode(rules: readonly RuleMessage[], plan: Plan): boolean {
  const delays = plan.connectFaults.some((f) => f.errno === undefined && f.delayMs > 0);
  return rules.some((r) => r.tcp === 'redirect' && (!r.relay || delays));
}

export async function runPlan(plan: Plan, logger: Logger, opts: RunOptions = {}): Promise<RunResult> {
  const routing = await Routing.create({ ...plan, ...readResolvConf() });
  const seed = plan.seed ?? Math.floor(Math.random() * 2 ** 31);
  await checkEveryEgress(plan);
  const losses = opts.losses ?? new Losses();
  const log = new ConnectionLog(logger, losses);
  const connections: ConnectionRecord[] = [];
  if (opts.collect) log.onRecord((r) => connections.push(r));
  opts.follow?.(log);
  const random = seededRandom(seed);
  // before the program starts: a script that waits for the API may then rely on it
  const control = plan.control ? await openControl(plan, routing, log, random, logger) : undefined;
  if (control) opts.onControl?.(control);
  // the DNS server starts first: the tracer's table says where it listens
  const tellTracer: { control?: (msg: ControlMessage) => void } = {};
  const dns = startDnsServer(plan, routing, seed, logger, (ip, rules) =>
    tellTracer.control?.({ kind: 'names', ip, ...(rules.length ? { rules: rules.join(',') } : {}) }),
  );
  let tracer: RunningTracer;
  const rules = routing.tracerRules();
  try {
    const dnsPorts = dns ? await dns.listen() : undefined;
    tracer = launchTracer(plan, rules, seed, opts, dnsPorts);
  } catch (err) {
    // a caller of runGraft lives on: nothing graft opened may keep it running
    dns?.close();
    await control?.close();
    throw err;
  }
  tellTracer.control = tracer.control;
  const preload = dialsInNode(rules, plan) ? setTimeout(preloadNativeSockets, PRELOAD_NATIVE_AFTER_MS) : undefined;
  // the name graft's DNS answered an address for: the proxy's records and the tracer's relayed ones show it
  const names = dns?.ports ? (ip: string) => nameOf(routing, dns, ip) : undefined;
  const proxy = startProxy({
    routing,
    toxics: plan.toxics,
    random,
    ...(control ? { scopes: control.scopes } : {}),
    connectTimeoutMs: plan.connectTimeoutMs,
    logger,
    connections: log,
    answer: tracer.control,
    ...(dns?.ports ? { dns: { tcpPort: dns.ports.tcpPort, tcpMeantFor: (port, dst) => dns.tcpMeantFor(port, dst) } } : {}),
    ...(names ? { nameOf: names } : {}),
  });
  const onRecord = recordHandler({ plan, routing, proxy, log, logger, dns, names });
  const channelDone = readChannel(tracer, new RecordDecoder(onRecord, (err) => logger.error({ err }, 'bad record from the tracer')));
  const output = opts.capture ? captureOutput(tracer, opts.capture.input) : undefined;
  try {
    const status = await tracer.exited;
    clearTimeout(preload);
    const [, captured] = await Promise.all([channelDone, output]);
    // The whole tree has exited and every record of the tracer's is read
    // (the tracer's relayed connections have theirs: it sends them all
    // before it exits): end the proxied connections; each has its record
    // once this resolves.
    await proxy.close();
    return { status, connections, ...captured, lost: losses.lost };
  } finally {
    clearTimeout(preload);
    await proxy.close();
    await control?.close();
    dns?.close();
  }
}

/** The control API of a run (an address it cannot listen on is a UsageError). */
function openControl(plan: Plan, routing: Routing, log: ConnectionLog, random: () => number, logger: Logger): Promise<Control> {
  const address = plan.control?.address;
  return startControl({ ...(address ? { address } : {}), connections: log, random, logger, rules: () => rulesView(routing) });
}

/** GET /rules: the table graft decides by, its own rules included. */
function rulesView(routing: Routing): RulesView {
  return {
    dns: routing.dns.mode,
    rules: routing.table.rules.map((r, i) => ({ index: i + 1, text: r.text, origin: r.origin, action: r.action.kind })),
  };
}

/** graft's DNS server, when it answers the program's DNS (routing.dns says whether). */
function startDnsServer(
  plan: Plan,
  routing: Routing,
  seed: number,
  logger: Logger,
  tellTracer: (ip: string, rules: readonly number[]) => void,
): DnsServer | undefined {
  const { mode, why } = routing.dns;
  // -v says it when graft answers DNS; that it does not is the plain case, said at debug level
  logger[mode === 'off' ? 'debug' : 'info'](
    { dns: mode, why },
    mode === 'off'
      ? `dns: off (${why}): the program asks its own name servers`
      : `dns: ${mode} (${why}): graft answers the program's DNS${mode === 'remote' ? ', with fake addresses for names that go through a proxy' : ''}`,
  );
  if (mode === 'off') return undefined;
  return new DnsServer({
    fakes: routing.dns.fakes,
    answerFor: (name) => routing.answerFor(name),
    // a stream of its own, so DNS faults do not shift which connections the toxics pick
    fault: dnsFaultChooser(plan.dns.faults, seededRandom(seed ^ DNS_SEED_SALT)),
    nameservers: routing.nameservers,
    tellTracer,
    logger,
  });
}

/** Mixed into the seed for DNS faults' randomness. */
const DNS_SEED_SALT = 0x444e53;

/** The name graft answered `ip` for: a fake address's, or one a real answer held. */
function nameOf(routing: Routing, dns: DnsServer, ip: string): string | undefined {
  return routing.dns.fakes?.nameOf(ip) ?? dns.answered.nameOf(ip);
}

/** The global egress options and every rule's own must work here before the program starts. */
async function checkEveryEgress(plan: Plan): Promise<void> {
  for (const e of [plan.egress, ...plan.rules.flatMap((r) => (r.action.kind === 'route' ? [r.action.egress] : []))]) await checkEgress(e);
}

/** Starts the tracer with the program; `dns`: where graft's DNS server listens, when it runs. */
function launchTracer(
  plan: Plan,
  rules: readonly RuleMessage[],
  seed: number,
  opts: RunOptions,
  dns: { port4: number; port6: number } | undefined,
): RunningTracer {
  return startTracer({
    program: plan.program,
    args: plan.args,
    table: encodeTable(rules, plan.connectFaults, dns, plan.connectTimeoutMs),
    seed,
    stdio: opts.capture ? 'pipe' : 'inherit',
    relaySignals: !opts.capture,
    ...(opts.env ? { env: opts.env } : {}),
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    ...(opts.caller ? { caller: opts.caller } : {}),
  });
}

/** Feeds the tracer's channel to the decoder; resolves when the tracer closes it. */
function readChannel(tracer: RunningTracer, decoder: RecordDecoder): Promise<void> {
  tracer.channel.on('data', (chunk: Buffer) => decoder.push(chunk));
  return new Promise<void>((resolve) => tracer.channel.once('close', resolve));
}

/** Gives the program `input` on stdin and collects its stdout and stderr until they close. */
async function captureOutput(tracer: RunningTracer, input: string | Buffer | undefined): Promise<{ stdout: string; stderr: string }> {
  const collect = (stream: Readable): Promise<string> => {
    const chunks: Buffer[] = [];
    return new Promise((resolve) => stream.on('data', (d: Buffer) => chunks.push(d)).once('close', () => resolve(Buffer.concat(chunks).toString())));
  };
  const stdout = collect(tracer.child.stdout!);
  const stderr = collect(tracer.child.stderr!);
  tracer.child.stdin!.on('error', () => {});
  tracer.child.stdin!.end(input ?? '');
  return { stdout: await stdout, stderr: await stderr };
}

interface RecordContext {
  readonly plan: Plan;
  readonly routing: Routing;
  readonly proxy: Proxy;
  readonly log: ConnectionLog;
  readonly logger: Logger;
  readonly dns: DnsServer | undefined;
  /** the name graft's DNS answered an address for (the proxy's nameOf) */
  readonly names: ((ip: string) => string | undefined) | undefined;
}

/** What each record from the tracer sets going: a dial, a log record, or both. */
function recordHandler({ plan, routing, proxy, log, logger, dns, names }: RecordContext): (rec: TracerRecord) => void {
  const context = (ruleIndex: number) => routing.logContext(ruleIndex);
  const who = (rec: { pid: number; tid: number; exe: string; dstIp: string; dstPort: number }) => {
    const name = dns ? nameOf(routing, dns, rec.dstIp) : undefined;
    return { ...whoOf(rec), ...(name !== undefined ? { name } : {}) };
  };
  return (rec) => {
    switch (rec.kind) {
      case 'redirect': {
        const fault = rec.fault !== undefined ? faultText(plan, rec.fault) : undefined;
        proxy.expect(rec, fault);
        if (fault !== undefined) log.record({ event: 'delayed', ...who(rec), faults: [fault] });
        break;
      }
      // a relay rule's connect, dialed and relayed by the tracer itself: its records as the proxy's own
      case 'opened':
        log.opened(tracerOpened(rec, names?.(rec.dstIp)));
        break;
      case 'relayed':
        log.record(tracerRelayed(rec, names?.(rec.dstIp), routing, plan.connectTimeoutMs));
        break;
      case 'inplace':
        log.record({ event: 'connection', action: 'inplace', ...who(rec), ...context(rec.rule) });
        break;
      case 'kept-local':
        log.record({
          event: 'kept-local',
          ...who(rec),
          ...context(rec.rule),
          reason: 'datagrams cannot go through a TCP proxy: what this socket sends stays on this machine',
        });
        break;
      case 'failed':
        log.record({ event: 'refused', ...who(rec), ...context(rec.rule), errno: rec.error, ...refusal(rec, plan.connectFaults) });
        break;
      case 'delayed':
        log.record({ event: 'delayed', ...who(rec), faults: [faultText(plan, rec.fault)] });
        break;
      case 'diagnostic':
        logger.debug({ pid: rec.pid, tid: rec.tid }, rec.message);
        break;
      case 'dns-socket':
        dns?.meantFor(rec.family === 'ip6' ? 6 : 4, rec.localPort, { ip: rec.dstIp, port: rec.dstPort }, rec.pid, rec.exe);
        break;
    }
  };
}

/** A connect fault as written. */
const faultText = (plan: Plan, index: number): string => plan.connectFaults[index]?.text ?? `fault ${index}`;

/**
 * How the tracer's reasons begin when it failed a connect because it was
 * out of file descriptors (native/decide.c, OUT_OF_FDS).
 */
const TRACER_OUT_OF_FDS = 'graft is out of file descriptors';

/** Why a connect was failed: the connect fault that refused it, if one did; a loss when graft lacked descriptors. */
function refusal(rec: FailedRecord, connectFaults: Plan['connectFaults']): { reason: string; faults?: readonly string[]; lost?: 'descriptors' } {
  const text = rec.fault !== undefined ? connectFaults[rec.fault]?.text : undefined;
  if (text !== undefined) return { reason: `fault: ${text}`, faults: [text] };
  return rec.reason.startsWith(TRACER_OUT_OF_FDS) ? { reason: rec.reason, lost: 'descriptors' } : { reason: rec.reason };
}
