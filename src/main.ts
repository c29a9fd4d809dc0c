/** The graft command: parse, run, exit with the program's status. */
import { writeSync } from 'node:fs';
import { parseCommandLine } from './cli.js';
import { EXIT, UsageError } from './errors.js';
import { createLogger } from './log.js';
import { runPlan } from './run.js';
import { TracerMissingError } from './supervisor.js';

function say(text: string): void {
  writeSync(2, text.endsWith('\n') ? text : `${text}\n`);
}

async function main(): Promise<number> {
  let outcome;
  try {
    outcome = parseCommandLine(process.argv.slice(2), { out: (s) => writeSync(1, s), err: (s) => writeSync(2, s) });
  } catch (err) {
    if (err instanceof UsageError) {
      say(`graft: ${err.message}`);
      return EXIT.usage;
    }
    throw err;
  }
  if (outcome.kind === 'exit') return outcome.status;

  const { logger, flush } = createLogger(outcome.plan.log);
  try {
    const result = await runPlan(outcome.plan, logger);
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
  }
}

main().then(
  (status) => process.exit(status),
  (err: unknown) => {
    say(`graft: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(EXIT.internal);
  },
);
