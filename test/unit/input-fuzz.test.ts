/**
 * Property-based tests of graft's two input parsers, through their entry
 * points only (`parseCommandLine` and `parseConfig`), with generated input:
 * random argv words, bytes and YAML soups, and structured input built from
 * the real flags, keys, rules, toxics, faults, proxy URLs, durations, sizes,
 * rates and marks (test/lab/fuzz-inputs.ts), plus pathological YAML (alias
 * bombs, deep nesting, huge scalars).
 *
 * Every input must end in success or a usage error said in ONE non-empty
 * line: a thrown UsageError, or commander's own report written to `err`
 * with exit status 2. Any other throw, a multi-line message, or one input
 * taking longer than GRAFT_FUZZ_LIMIT_MS (5 s) fails. When parsing
 * succeeds, the values in the plan must be usable (timer durations within
 * Node's range, finite sizes and rates, ports, marks, addresses).
 *
 *   GRAFT_FUZZ_SEED=n   another seed (default fixed, so runs repeat)
 *   GRAFT_FUZZ_RUNS=n   inputs per property (default: each property's own)
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { CliOutcome } from '../../src/cli.js';
import { cli, config, insanities, show, type Sane } from '../lab/fuzz-checks.js';
import { pathologicalYaml, structuredArgv, structuredYaml, unstructuredArgv, unstructuredYaml } from '../lab/fuzz-inputs.js';

const SEED = process.env.GRAFT_FUZZ_SEED ? Number(process.env.GRAFT_FUZZ_SEED) : 17_007;
const RUNS = process.env.GRAFT_FUZZ_RUNS ? Number(process.env.GRAFT_FUZZ_RUNS) : undefined;

/** A property's parameters; a slow parser is stopped (and fails) after 20 s, shrinking included. */
const runs = (n: number): fc.Parameters<unknown> => ({
  seed: SEED,
  numRuns: RUNS ?? n,
  includeErrorInReport: true,
  interruptAfterTimeLimit: 20_000,
  markInterruptAsFailure: true,
});

const tmp = mkdtempSync(join(tmpdir(), 'graft-fuzz-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** No config file in reach unless --config names one. */
const ENV: NodeJS.ProcessEnv = { HOME: join(tmp, 'home'), XDG_CONFIG_HOME: join(tmp, 'xdg'), PATH: process.env.PATH };

/** Config files --config may name: valid, generated (same seed), empty, a directory, missing. */
const configPaths: string[] = (() => {
  const file = (name: string, text: string): string => {
    const p = join(tmp, name);
    writeFileSync(p, text);
    return p;
  };
  const valid = file(
    'valid.yaml',
    'proxies:\n  corp: socks5://alice:s3cret@192.0.2.60:1080\n  twohop: [http://192.0.2.61:3128, socks5://192.0.2.62:1080]\nproxy: corp\nrules: [10.0.0.0/8 direct, port 22 refuse]\nmark: 0x10\nconnect-timeout: 3s\n',
  );
  const generated = fc.sample(structuredYaml, { seed: SEED, numRuns: 40 }).map((text, i) => file(`gen-${i}.yaml`, text));
  mkdirSync(join(tmp, 'a-directory'));
  return [valid, file('empty.yaml', ''), join(tmp, 'a-directory'), join(tmp, 'missing.yaml'), '', ...generated];
})();
const configPath = fc.constantFrom(...configPaths);

const routingOf = (o: CliOutcome | undefined): Sane | undefined => (o?.kind === 'run' ? o.plan : o?.kind === 'explain' ? o.routing : undefined);

describe('input fuzzing: every input parses or is a one-line usage error', { concurrency: false }, () => {
  it('command line, unstructured argv', () => {
    fc.assert(
      fc.property(unstructuredArgv, (argv) => void cli(argv, ENV)),
      runs(2500),
    );
  });

  it('command line, every flag with generated values', () => {
    fc.assert(
      fc.property(structuredArgv(configPath), (argv) => void cli(argv, ENV)),
      runs(3000),
    );
  });

  it('config file, random text, bytes and YAML punctuation', () => {
    fc.assert(
      fc.property(unstructuredYaml, (text) => void config(text)),
      runs(2000),
    );
  });

  it('config file, the real keys in every YAML style (anchors, aliases, tags, flow, block)', () => {
    fc.assert(
      fc.property(structuredYaml, (text) => void config(text)),
      runs(2500),
    );
  });

  it('config file, alias bombs, deep nesting and huge scalars', () => {
    fc.assert(
      fc.property(pathologicalYaml, (text) => void config(text)),
      runs(100),
    );
  });
});

describe('input fuzzing: what parses is usable', { concurrency: false }, () => {
  it('a run plan (or explain settings) from the command line has sane values', () => {
    fc.assert(
      fc.property(structuredArgv(configPath), (argv) => {
        const routing = routingOf(cli(argv, ENV, true));
        const bad = routing ? insanities(routing) : [];
        if (bad.length) assert.fail(`parseCommandLine(${show(argv)}) gave ${bad.join('; ')}`);
      }),
      runs(1500),
    );
  });

  it('config settings have sane values', () => {
    fc.assert(
      fc.property(structuredYaml, (text) => {
        const settings = config(text, true);
        const bad = settings ? insanities(settings) : [];
        if (bad.length) assert.fail(`parseConfig(${show(text)}) gave ${bad.join('; ')}`);
      }),
      runs(1500),
    );
  });
});
