/** What bin/graft records (GRAFT_CALLER) as the Node side reads it, and where the caller's descriptors go. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { descriptorPlan, parseCallerState, takeCallerState } from '../../src/tracer/caller.js';

describe('GRAFT_CALLER', () => {
  it('parses what bin/graft writes', () => {
    assert.deepEqual(parseCallerState('fds=0,1,2,10,5;ign=0000000000001002;blk=0000000000004200;nofile=512'), {
      fds: [0, 1, 2, 5, 10],
      sigIgnored: '0000000000001002',
      sigBlocked: '0000000000004200',
      nofile: '512',
    });
    assert.deepEqual(parseCallerState('fds=;ign=0;blk=0;nofile=unlimited')?.fds, []);
  });

  it('ignores what bin/graft would not write', () => {
    for (const text of [undefined, '', 'fds=0,1,2', 'fds=0,x;ign=0;blk=0;nofile=1', 'fds=0;ign=zz;blk=0;nofile=1', 'fds=0;ign=0;blk=0;nofile=-1'])
      assert.equal(parseCallerState(text), undefined, String(text));
  });

  it('is taken out of the environment, with the variables the shell may have changed put back', () => {
    const env: NodeJS.ProcessEnv = {
      GRAFT_CALLER: 'fds=0,1,2;ign=0;blk=0;nofile=1024',
      GRAFT_CALLER_ENV_PWD: '+/home/x',
      GRAFT_CALLER_ENV_SHLVL: '+',
      PWD: '/somewhere/else',
      SHLVL: '0',
      KEPT: 'yes',
    };
    assert.equal(takeCallerState(env)?.nofile, '1024');
    assert.deepEqual(env, { PWD: '/home/x', KEPT: 'yes' });
  });
});

describe('descriptor plan', () => {
  it("puts graft's pipes at the lowest numbers the caller left free, the caller's at theirs", () => {
    assert.deepEqual(descriptorPlan([0, 1, 2]), { stdio: [0, 1, 2, 'pipe', 'pipe', 'pipe'], channelFd: 3, rulesFd: 4, controlFd: 5 });
    assert.deepEqual(descriptorPlan([0, 1, 2, 3, 5]), { stdio: [0, 1, 2, 3, 'pipe', 5, 'pipe', 'pipe'], channelFd: 4, rulesFd: 6, controlFd: 7 });
    assert.deepEqual(descriptorPlan([1, 2, 9]), {
      stdio: ['ignore', 1, 2, 'pipe', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 9],
      channelFd: 3,
      rulesFd: 4,
      controlFd: 5,
    });
  });
});
