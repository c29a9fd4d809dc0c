/**
 * The two deciders agreeing: the tracer's compiled table (C) and the rule
 * table graft explains with (net.BlockList), over many destinations in one
 * run. Parsing and `graft rules explain` are in test/unit/rules.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { World } from './lab/world.js';
import { parseRule } from '../src/rules/parse.js';
import { Routing } from '../src/routing.js';
import { LAB, needs } from './lab/capabilities.js';

describe('the tracer decides exactly as the rule table', { skip: needs(...LAB) }, () => {
  let world: World;
  before(async () => {
    world = await new World().start();
  });
  after(() => world?.destroy());

  it('for 300 destinations and ports, in one run', async () => {
    const ruleTexts = [
      '198.51.100.0/25:7000 refuse ECONNREFUSED',
      '198.51.100.128/26 refuse ETIMEDOUT',
      'port 7001-7002 refuse ENETUNREACH',
      '203.0.113.0/28 refuse EHOSTUNREACH',
      '[2001:db8:2::/120]:7000 refuse ECONNRESET',
      '2001:db8:2::/48 refuse EACCES',
      '127.0.0.2 refuse EPERM',
      '198.51.100.7 pass',
    ];
    const rules = ruleTexts.map((t, i) => parseRule(t, `--rule ${i + 1}`));
    const routing = await Routing.create({ rules, chains: new Map(), egress: {}, mode: 'auto' });
    // A deterministic spread of destinations, mostly near the rules' edges.
    const dests: [string, number][] = [];
    let seed = 7;
    const rnd = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 300; i++) {
      const port = [7000, 7001, 7002, 7003, 80][rnd(5)]!;
      const pick = rnd(5);
      const ip =
        pick === 0
          ? `198.51.100.${rnd(256)}`
          : pick === 1
            ? `203.0.113.${rnd(32)}`
            : pick === 2
              ? `2001:db8:2::${rnd(512).toString(16)}`
              : pick === 3
                ? `2001:db8:3::${rnd(16).toString(16)}`
                : `127.0.0.${1 + rnd(3)}`;
      dests.push([ip, port]);
    }
    // Each connect times out fast: destinations nobody answers are dropped
    // by the lab's host; only graft's decision matters here.
    const probe = [
      'import socket, sys, json',
      `dests = json.loads(sys.argv[1])`,
      'for ip, port in dests:',
      '    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)',
      '    s.setblocking(False)',
      '    err = s.connect_ex((ip, port))',
      '    print(ip, port, err)',
      '    s.close()',
    ].join('\n');
    const r = await world.graft(['python3', '-c', probe, JSON.stringify(dests)], {
      graftArgs: [...ruleTexts.flatMap((t) => ['--rule', t]), '--connect-timeout', '200ms', '--log-level', 'debug'],
      timeoutMs: 60_000,
    });
    assert.equal(r.code, 0, r.stderr);
    // what the same connects give natively: a destination graft does not
    // refuse gets exactly that (a network the lab cannot route fails at once)
    const native = await world.native(['python3', '-c', probe, JSON.stringify(dests)]);
    const nativeLines = native.stdout.trim().split('\n');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, dests.length);
    const errnos: Record<string, number> = { ECONNREFUSED: 111, ETIMEDOUT: 110, ENETUNREACH: 101, EHOSTUNREACH: 113, ECONNRESET: 104, EACCES: 13, EPERM: 1 };
    let checked = 0;
    for (const [i, [ip, port]] of dests.entries()) {
      const got = Number(lines[i]!.split(' ')[2]);
      const decision = routing.decide(ip, port);
      const action = decision?.rule.action;
      if (action?.kind === 'refuse') {
        assert.equal(got, errnos[action.errno], `${ip}:${port} should be refused by ${decision!.rule.text}`);
      } else {
        // passed or redirected: as natively (in progress, done, or the local routing's answer)
        const nativeGot = Number(nativeLines[i]!.split(' ')[2]);
        const inProgress = (e: number): boolean => e === 115 || e === 0 || e === 111;
        assert.ok(
          got === nativeGot || (inProgress(got) && inProgress(nativeGot)),
          `${ip}:${port} (${decision?.rule.text ?? 'loopback'}) got errno ${got}, natively ${nativeGot}`,
        );
      }
      checked++;
    }
    assert.equal(checked, 300);
    const refusedByGraft = r.records.filter((x) => x.event === 'refused' && x.reason === 'refused by rule').length;
    assert.equal(refusedByGraft, dests.filter(([ip, port]) => routing.decide(ip, port)?.rule.action.kind === 'refuse').length);
  });
});
