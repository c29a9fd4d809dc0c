/**
 * One run of graft: start the proxy, start the tracer with the program,
 * feed the tracer's records to the proxy, and end with the program's status.
 */
import type { Plan } from './plan.js';
import type { Logger } from 'pino';
import { startProxy } from './proxy/server.js';
import { ConnectionLog, type ConnectionRecord } from './records.js';
import { startTracer } from './supervisor.js';
import { RecordDecoder, type TracerRecord } from './channel.js';
import { formatEndpoint } from './address.js';
import { checkEgress } from './egress/checks.js';
import { Routing } from './routing.js';
import { systemNameservers } from './config/resolv.js';
import { seededRandom } from './chaos/random.js';

/** How long connections may finish after the program has exited. */
const CLOSE_GRACE_MS = 2000;

/** libuv reads a stream 64 KiB at a time. */
const CHANNEL_READ_SIZE = 65536;

export interface RunResult {
  readonly status: number;
  readonly connections: readonly ConnectionRecord[];
  /** the program's output, when captured */
  readonly stdout?: string;
  readonly stderr?: string;
}

export interface RunOptions {
  /** capture the program's stdout and stderr (and give it `input` on stdin) instead of sharing graft's */
  readonly capture?: { readonly input?: string | Buffer };
  /** Collect connection records in the result (the programmatic API does). */
  readonly collect?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

function who(rec: { pid: number; tid: number; exe: string; dstIp: string; dstPort: number }) {
  return { pid: rec.pid, tid: rec.tid, exe: rec.exe, dst: formatEndpoint(rec.dstIp, rec.dstPort) };
}

export async function runPlan(plan: Plan, logger: Logger, opts: RunOptions = {}): Promise<RunResult> {
  const routing = await Routing.create({ ...plan, nameservers: systemNameservers() });
  const seed = plan.seed ?? Math.floor(Math.random() * 2 ** 31);
  for (const e of [plan.egress, ...plan.rules.flatMap((r) => (r.action.kind === 'route' ? [r.action.egress] : []))]) await checkEgress(e);
  const log = new ConnectionLog(logger);
  const connections: ConnectionRecord[] = [];
  if (opts.collect) log.onRecord((r) => connections.push(r));
  const context = (ruleIndex: number) => routing.logContext(ruleIndex);
  const proxy = await startProxy({
    routing,
    toxics: plan.toxics,
    random: seededRandom(seed),
    connectTimeoutMs: plan.connectTimeoutMs,
    registrationWaitMs: plan.registrationWaitMs,
    logger,
    connections: log,
  });

  const onRecord = (rec: TracerRecord): void => {
    switch (rec.kind) {
      case 'redirect':
        proxy.expect(rec);
        break;
      case 'inplace':
        log.record({ event: 'connection', action: 'inplace', ...who(rec), ...context(rec.rule) });
        break;
      case 'failed': {
        // "fault N": a connect fault refused it
        const fault = /^fault (\d+)$/.exec(rec.reason);
        const text = fault ? plan.connectFaults[Number(fault[1])]?.text : undefined;
        log.record({
          event: 'refused',
          ...who(rec),
          ...context(rec.rule),
          errno: rec.errno,
          reason: text !== undefined ? `fault: ${text}` : rec.reason,
          ...(text !== undefined ? { faults: [text] } : {}),
        });
        break;
      }
      case 'late-handshake':
      case 'delayed': {
        const fault = plan.connectFaults[rec.fault]?.text ?? `fault ${rec.fault}`;
        if (rec.kind === 'late-handshake') proxy.completeLater(rec, fault);
        log.record({ event: 'delayed', ...who(rec), faults: [fault] });
        break;
      }
      case 'diagnostic':
        logger.debug({ pid: rec.pid, tid: rec.tid }, rec.message);
        break;
    }
  };
  const decoder = new RecordDecoder(onRecord, (err) => logger.error({ err }, 'bad record from the tracer'));

  let tracer;
  try {
    tracer = startTracer({
      program: plan.program,
      args: plan.args,
      proxy4: proxy.port4,
      proxy6: proxy.port6,
      rulesTable: routing.tracerTable(),
      seed,
      stdio: opts.capture ? 'pipe' : 'inherit',
      relaySignals: !opts.capture,
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
  } catch (err) {
    await proxy.close(0);
    throw err;
  }
  tracer.channel.on('data', (chunk: Buffer) => {
    proxy.noteChannelRead(chunk.length, CHANNEL_READ_SIZE);
    decoder.push(chunk);
  });
  const channelDone = new Promise<void>((resolve) => tracer.channel.once('close', resolve));
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const outputDone = opts.capture
    ? Promise.all([
        new Promise((r) => tracer.child.stdout!.on('data', (d: Buffer) => out.push(d)).once('close', r)),
        new Promise((r) => tracer.child.stderr!.on('data', (d: Buffer) => err.push(d)).once('close', r)),
      ])
    : Promise.resolve();
  if (opts.capture) {
    tracer.child.stdin!.on('error', () => {});
    tracer.child.stdin!.end(opts.capture.input ?? '');
  }
  try {
    const status = await tracer.exited;
    await Promise.all([channelDone, outputDone]);
    return {
      status,
      connections,
      ...(opts.capture ? { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() } : {}),
    };
  } finally {
    await proxy.close(CLOSE_GRACE_MS);
  }
}
