/** The graft command: parse, run, exit with the program's status. */
import { readFileSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseCommandLine } from './cli.js';
import { EXIT, UsageError } from './errors.js';
import { createLogger } from './log.js';
import { runPlan } from './run.js';
import { TracerMissingError } from './tracer/supervisor.js';
import { takeCallerState } from './tracer/caller.js';
import type { RoutingSettings, ServePlan } from './cli.js';
import { startControl } from './control/service.js';
import { TOXIPROXY_VERSION, type ApiHandler } from './control/api.js';
import { ConnectionLog } from './records.js';
import { seededRandom } from './chaos/random.js';
import { loadConfig } from './config/file.js';
import { Routing } from './routing.js';
import { readResolvConf } from './config/resolv.js';
import { describeChain } from './upstream/url.js';
import { NO_SETTINGS, resolveSettings } from './settings/resolve.js';
import { Losses } from './summary.js';
import { runCtl } from './control/ctl.js';

function say(text: string): void {
  writeSync(2, text.endsWith('\n') ? text : `${text}\n`);
}

/** A usage error is said in one line and exits with the usage status; any other error goes on up. */
function usageStatus(err: unknown): number {
  if (!(err instanceof UsageError)) throw err;
  say(`graft: ${err.message}`);
  return EXIT.usage;
}

async function main(): Promise<number> {
  const caller = takeCallerState();
  let outcome;
  try {
    outcome = parseCommandLine(process.argv.slice(2), { out: (s) => writeSync(1, s), err: (s) => writeSync(2, s) });
  } catch (err) {
    return usageStatus(err);
  }
  switch (outcome.kind) {
    case 'exit':
      return outcome.status;
    case 'explain':
    case 'check':
      try {
        writeSync(1, `${outcome.kind === 'explain' ? await explain(outcome.routing, outcome.host, outcome.port) : await checkConfig(outcome.path)}\n`);
        return 0;
      } catch (err) {
        return usageStatus(err);
      }
    case 'ctl':
      return runCtl(outcome.argv, { out: (s) => writeSync(1, s), err: (s) => writeSync(2, s), stdin: () => readFileSync(0, 'utf8') });
    case 'serve':
      return serve(outcome.plan);
    case 'run':
      break;
  }

  const losses = new Losses(); // said at exit, also with -q (src/summary.ts)
  const { logger, flush } = createLogger(outcome.plan.log, losses, say);
  try {
    const quiet = outcome.plan.log.terminal === 'quiet';
    const result = await runPlan(outcome.plan, logger, {
      losses,
      ...(caller ? { caller } : {}),
      // asked for with --control: where it is, a port 0 made concrete
      onControl: (control) => !quiet && say(`graft: control API on ${control.address}`),
    });
    return result.status;
  } catch (err) {
    if (err instanceof TracerMissingError || err instanceof UsageError) {
      say(`graft: ${err.message}`);
      return EXIT.usage;
    }
    say(`graft: ${(err as Error).message}`);
    return EXIT.internal;
  } finally {
    flush();
    const summary = losses.summaryLine();
    if (summary) say(summary);
  }
}

/** `graft serve`: the control API until SIGINT or SIGTERM, then a clean stop (exit 0, as Toxiproxy's server). */
async function serve(plan: ServePlan): Promise<number> {
  const losses = new Losses();
  const { logger, flush } = createLogger(plan.log, losses, say);
  // from the start: a stop that comes as soon as the address is said must find the handler in place
  const stopped = new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => resolve());
  });
  try {
    const control = await startControl({
      address: plan.address,
      connections: new ConnectionLog(logger, losses),
      random: seededRandom(plan.seed ?? Math.floor(Math.random() * 2 ** 31)),
      logger,
    });
    if (plan.populate !== undefined) {
      const refused = await populate(control.handler, plan.populate);
      if (refused) {
        await control.close();
        say(`graft: --populate ${plan.populate}: ${refused}`);
        return EXIT.usage;
      }
    }
    if (plan.log.terminal !== 'quiet') say(`graft: control API on ${control.address} (Toxiproxy ${TOXIPROXY_VERSION}); stop with Ctrl-C`);
    await stopped;
    await control.close();
    return 0;
  } catch (err) {
    return usageStatus(err);
  } finally {
    flush();
    const summary = losses.summaryLine();
    if (summary) say(summary);
  }
}

/** Creates the proxies of a JSON file through the API itself, so it is checked as a POST /populate is; returns why it was refused, if it was. */
async function populate(handler: ApiHandler, path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  const reply = await handler('POST', '/populate', {}, text);
  return reply.status < 300 ? undefined : `${reply.status} ${(JSON.parse(reply.body) as { error: string }).error}`;
}

async function explain(routing: RoutingSettings, host: string, port: number | undefined): Promise<string> {
  const r = await Routing.create({ ...routing, ...readResolvConf() });
  return isIP(host) ? r.explain(host, port) : r.explainName(host, port);
}

/** Checks a config file exactly as a run with --config would (the same layer, src/settings), and shows what it sets. */
async function checkConfig(path: string): Promise<string> {
  const s = resolveSettings(NO_SETTINGS, loadConfig(path));
  const routing = await Routing.create(s);
  const named = [...s.chains.keys()].filter(Boolean);
  const fallback = s.chains.get('');
  return [
    `${path}: ok`,
    `  proxies: ${named.length ? named.map((n) => `${n} (${describeChain(s.chains.get(n)!)})`).join(', ') : 'none'}`,
    `  default: ${fallback ? `proxy ${describeChain(fallback)}` : 'direct'}`,
    `  faults: ${s.toxics.length} toxic(s), ${s.connectFaults.length} connect fault(s), ${s.dns.faults.length} DNS fault(s)`,
    `  dns: ${routing.dns.mode} (${routing.dns.why})`,
    `  rules: ${s.rules.length}`,
    ...routing.table.rules.map((r, i) => `    ${i + 1}. ${r.text}   [${r.origin}]`),
  ].join('\n');
}

main().then(
  (status) => process.exit(status),
  (err: unknown) => {
    say(`graft: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(EXIT.internal);
  },
);
