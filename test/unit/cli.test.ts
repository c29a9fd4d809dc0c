/**
 * graft as a command, run as a real subprocess in the machine's own network
 * (no lab, no root): exit statuses, usage errors (exit 2 with one line
 * naming the problem; nothing runs), the help, and a run whose connect
 * goes through graft's proxy over loopback.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { once } from 'node:events';
import { repoRoot } from '../lab/paths.js';
import { runCollect, type GraftOptions, type GraftRun } from '../lab/world.js';

const tmp = mkdtempSync(join(tmpdir(), 'graft-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * PATH without the directories this user cannot search (root's, when the
 * tier runs as nobody): execvp reports EACCES, not ENOENT, for a program
 * it did not find once such a directory was in the way.
 */
const PATH = (process.env.PATH ?? '')
  .split(':')
  .filter((dir) => {
    try {
      accessSync(dir, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  })
  .join(':');

/** `bin/graft [graftArgs] -- program...`, with no config file in reach. */
const local = {
  graft(program: readonly string[], opts: GraftOptions = {}): Promise<GraftRun> {
    const env = { ...process.env, PATH, HOME: tmp, XDG_CONFIG_HOME: join(tmp, 'config'), GRAFT_CONFIG: '', ...opts.env };
    const args = [...(opts.graftArgs ?? []), '--', ...program];
    return runCollect(join(repoRoot, 'bin/graft'), args, { ...opts, env }, undefined);
  },
  path: (name: string): string => join(tmp, name),
};

describe('exit status', { concurrency: true }, () => {
  it('passes the program exit code through', async () => {
    for (const [program, code] of [
      [['sh', '-c', 'echo out; echo err >&2; exit 42'], 42],
      [['true'], 0],
      [['false'], 1],
    ] as const) {
      const run = await local.graft(program);
      assert.equal(run.code, code, `${program.join(' ')}: ${run.stderr}`);
      assert.equal(run.signal, null);
      if (code === 42) {
        assert.equal(run.stdout, 'out\n');
        assert.equal(run.stderr, 'err\n');
      } else {
        assert.equal(run.stdout, '');
        assert.equal(run.stderr, '');
      }
    }
  });

  it('reports a program killed by signal N as 128+N, exiting normally itself', async () => {
    const kill = await local.graft(['sh', '-c', 'kill -KILL $$']);
    assert.equal(kill.signal, null, 'graft itself was not killed');
    assert.equal(kill.code, 137, kill.stderr);
    const segv = await local.graft(['sh', '-c', 'kill -SEGV $$']);
    assert.equal(segv.signal, null, 'graft itself was not killed');
    assert.equal(segv.code, 139, segv.stderr);
  });

  it('127 for a program that cannot be found', async () => {
    const run = await local.graft(['no-such-prog', 'arg']);
    assert.equal(run.code, 127);
    assert.equal(run.stderr, 'graft: no-such-prog: command not found\n');
    assert.equal(run.stdout, '');
    const path = await local.graft(['/nonexistent/dir/prog']);
    assert.equal(path.code, 127);
    assert.match(path.stderr, /^graft: \/nonexistent\/dir\/prog: no such file or directory\n$/);
  });

  it('126 for a file that is not executable and for a directory', async () => {
    const file = local.path('not-executable.sh');
    writeFileSync(file, '#!/bin/sh\necho should not run\n');
    chmodSync(file, 0o644);
    const run = await local.graft([file]);
    assert.equal(run.code, 126);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, new RegExp(`^graft: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot execute`));

    const dir = local.path('a-directory');
    mkdirSync(dir);
    const d = await local.graft([dir]);
    assert.equal(d.code, 126);
    assert.match(d.stderr, /a-directory: cannot execute/);
  });

  it('waits for a child that outlives the program, then exits with the program status', async () => {
    const run = await local.graft(['sh', '-c', '(sleep 0.5; echo late) & exit 3']);
    assert.equal(run.code, 3, run.stderr);
    assert.equal(run.stdout, 'late\n');
    assert.ok(run.ms >= 450, `graft ended after ${run.ms} ms, before the background child`);
  });
});

/** Each argument list is a usage error (exit 2) whose message matches. */
async function expectUsageErrors(cases: readonly (readonly [readonly string[], RegExp])[]): Promise<void> {
  await Promise.all(
    cases.map(([args, want]) =>
      local.graft(['true'], { graftArgs: [...args] }).then((run) => {
        assert.equal(run.code, 2, args.join(' '));
        assert.match(run.stderr, want);
      }),
    ),
  );
}

describe('usage', { concurrency: true }, () => {
  it('an unknown option is a usage error naming it', async () => {
    const run = await local.graft(['true'], { graftArgs: ['--bogus-option'] });
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^graft: .*'--bogus-option'/);
  });

  it('a bad --connect-timeout is a usage error naming the option and the value', async () => {
    for (const value of ['abc', '0', '-5s']) {
      const run = await local.graft(['true'], { graftArgs: ['--connect-timeout', value] });
      assert.equal(run.code, 2, `--connect-timeout ${value}: ${run.stderr}`);
      assert.match(run.stderr, /^graft: .*--connect-timeout/, `--connect-timeout ${value}`);
      assert.ok(run.stderr.includes(value), `the message names ${value}: ${run.stderr}`);
    }
  });

  it('no program is a usage error', async () => {
    const run = await local.graft([]);
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');
    assert.match(run.stderr, /^graft: no program given/);
  });

  it('--help prints the usage and exits 0', async () => {
    const run = await local.graft([], { graftArgs: ['--help'] });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '');
    assert.match(run.stdout, /^Usage: graft \[options\] -- program \[args\.\.\.\]\n/);
    assert.match(run.stdout, /--connect-timeout <duration>/);
  });

  it('--version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const run = await local.graft([], { graftArgs: ['--version'] });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${pkg.version}\n`);
  });
});

// Every message of the toxic and fault texts is checked in chaos-parse.test.ts;
// here, one of each kind, the shorthands and the checks across options.
describe('fault options', { concurrency: true }, () => {
  it('bad toxics are usage errors naming the problem', async () => {
    await expectUsageErrors([
      [['--toxic', 'latency'], /--toxic 1: toxic 'latency': latency needs latency=/],
      [['--bandwidth', 'fast'], /'fast' is not a rate/],
      [['--latency', 'soon'], /'soon' is not a duration/],
      [['--latency', '1s', '--mode', 'inplace'], /cannot be used with --mode inplace/],
      [['--seed', 'x'], /--seed: 'x' is not a whole number/],
    ]);
  });

  it('bad faults are usage errors naming the problem', async () => {
    await expectUsageErrors([
      [['--refuse', 'EWHAT'], /--refuse: fault 'refuse errno=EWHAT': 'EWHAT' is not an errno/],
      [['--refuse', 'ECONNREFUSED@2'], /probability '2' is not between 0 and 1/],
      [['--fault', 'explode'], /'explode' is not a connect fault/],
    ]);
  });
});

/** A usage error is exactly one line on stderr, exit 2, and the program never ran. */
function assertOneLine(run: GraftRun, want: RegExp, what: string): void {
  assert.equal(run.code, 2, `${what}: ${run.stderr}`);
  assert.equal(run.stdout, '', what);
  assert.match(run.stderr, /^graft: [^\n]+\n$/, `${what}: one line`);
  assert.match(run.stderr, want, what);
}

// The rows of issue 17's table: each input once gave a hang, a stack or a silent misreading.
describe('bad input: one line naming it, exit 2', { concurrency: true }, () => {
  it('an endless config file stops at the size cap; a pipe (process substitution) still works', async () => {
    for (const args of [
      ['--config', '/dev/zero'],
      ['config', 'check', '/dev/zero'],
    ]) {
      const run =
        args[0] === 'config'
          ? await local.graft(args.slice(1), { graftArgs: ['config'], timeoutMs: 20_000 })
          : await local.graft(['true'], { graftArgs: args, timeoutMs: 20_000 });
      assertOneLine(run, /'\/dev\/zero': longer than 1048576 bytes/, args.join(' '));
    }
    const piped = await runCollect(
      'bash',
      ['-c', `${join(repoRoot, 'bin/graft')} --config <(printf 'mode: proxy\\nseed: 7\\n') -- sh -c 'echo ran'`],
      {},
      undefined,
    );
    assert.equal(piped.code, 0, piped.stderr);
    assert.equal(piped.stdout, 'ran\n');
  });

  it('a log file that is a directory or empty is refused, on the command line, in the file and by config check', async () => {
    const dirConfig = local.path('logdir.yaml');
    writeFileSync(dirConfig, `log: { file: ${tmp} }\n`);
    const cases: [string[], string[], RegExp][] = [
      [['--log-file', tmp], ['true'], /^graft: --log-file: '.*': cannot write the log there: it is a directory\n$/],
      [['--log-file', ''], ['true'], /^graft: --log-file: '' is not a file name/],
      [
        ['--log-file', '/dev/null/x.ndjson'],
        ['true'],
        /^graft: --log-file: '\/dev\/null\/x\.ndjson': cannot write the log there: a part of the path is not a directory \(ENOTDIR\)\n$/,
      ],
      [['--config', dirConfig], ['true'], /^graft: .*logdir\.yaml:1: log\.file: '.*': cannot write the log there: it is a directory\n$/],
      [['config', 'check'], [dirConfig], /^graft: .*logdir\.yaml:1: log\.file: .*it is a directory\n$/],
    ];
    await Promise.all(
      cases.map(async ([args, program, want]) => {
        const run =
          args[0] === 'config'
            ? await local.graft(program, { graftArgs: args.slice(0, 1).concat(args.slice(1)) })
            : await local.graft(program, { graftArgs: args });
        assertOneLine(run, want, args.join(' '));
      }),
    );
  });

  it('bad %-escapes in a proxy URL, IPv6 zones and durations past a timer are refused; good escapes decode', async () => {
    const cases: [string[], RegExp][] = [
      [['--proxy', 'socks5://%zz:pw@192.0.2.1:1080'], /^graft: --proxy 1: 'socks5:\/\/%zz:\*\*\*@192\.0\.2\.1:1080': the user name has a bad %-escape/],
      [['--proxy', 'http://u:%E0%A4%A@192.0.2.1:3128'], /the password has a bad %-escape/],
      [['--rule', 'fe80::1%eth0 pass'], /^graft: --rule 1: rule 'fe80::1%eth0 pass': 'fe80::1%eth0': an IPv6 zone \(%IF\) is not accepted/],
      [['--source', '::1%lo'], /^graft: --source 1: '::1%lo': an IPv6 zone/],
      [['--reset-after', '99999999999h'], /^graft: --reset-after: .*'99999999999h' is too long \(at most 2147483647ms, about 24\.8 days\)/],
      [['--connect-timeout', '3000000h'], /^graft: --connect-timeout: '3000000h' is too long \(at most 2147483647ms/],
      [['--latency', '99999999999h'], /^graft: --latency: .*is too long/],
      [['--toxic', 'latency latency=2000000000ms jitter=200000000ms'], /latency plus jitter must be at most 2147483647ms/],
      [['--seed', '4294967296'], /^graft: --seed: '4294967296' is not a whole number from 0 to 4294967295/],
    ];
    await Promise.all(cases.map(async ([args, want]) => assertOneLine(await local.graft(['true'], { graftArgs: args }), want, args.join(' '))));
    // the longest duration is honoured, not turned into 1 ms: the connect still completes
    const ok = await local.graft(['true'], { graftArgs: ['--connect-timeout', '2147483647ms', '--reset-after', '596h'] });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stderr, '');
  });
});

describe('a run over loopback, no lab', () => {
  it("a loopback port a rule names goes through graft's proxy; others pass untouched", async () => {
    const server = net.createServer((s) => s.end(`hello ${s.remotePort}\n`));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    try {
      const client = `const s = require('net').connect(${port}, '127.0.0.1'); let got = ''; s.on('data', (d) => (got += d)); s.on('end', () => console.log(got.trim(), s.localPort))`;
      const logFile = local.path('loopback.ndjson');
      const proxied = await local.graft([process.execPath, '-e', client], { graftArgs: ['--log-file', logFile, '--rule', `127.0.0.1:${port} direct`] });
      assert.equal(proxied.code, 0, proxied.stderr);
      assert.match(proxied.stdout, /^hello \d+ \d+\n$/);
      const records = readFileSync(logFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.equal(records.length, 1, JSON.stringify(records));
      assert.deepEqual([records[0]!.event, records[0]!.dst, records[0]!.action], ['connection', `127.0.0.1:${port}`, 'proxy'], JSON.stringify(records[0]));
      // the server saw graft's proxy, not the program: its port differs from the program's own
      const [, serverSaw, programPort] = proxied.stdout.trim().split(' ');
      assert.notEqual(serverSaw, programPort);
      assert.equal(records[0]!.bytesDown, `hello ${serverSaw}\n`.length);
      // without the rule, loopback is not graft's business: no record
      const untouched = await local.graft([process.execPath, '-e', client], { graftArgs: ['--log-file', local.path('none.ndjson')] });
      assert.equal(untouched.code, 0, untouched.stderr);
      const [, saw, own] = untouched.stdout.trim().split(' ');
      assert.equal(saw, own, 'the server saw the program itself');
      assert.equal(readFileSync(local.path('none.ndjson'), 'utf8').trim(), '');
    } finally {
      server.close();
    }
  });
});
