/**
 * What graft loses for lack of its own resources: the exit summary's one
 * line, and a log file that cannot be written (a full disk, a closed
 * pipe) counting its lost records instead of ending graft.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Losses, openFilesLimit } from '../../src/summary.js';
import { createLogger, logFileStream } from '../../src/log.js';

describe('losses and the exit summary', () => {
  it('says nothing when nothing was lost', () => {
    assert.equal(new Losses().summaryLine(), undefined);
    assert.deepEqual(new Losses().lost, { connections: 0, records: 0 });
  });

  it('one line for connections and records together, with the limit', () => {
    const l = new Losses();
    for (let i = 0; i < 231; i++) l.connectionLost();
    assert.equal(l.recordLost({ file: '/dev/full', code: 'ENOSPC' }), true);
    assert.equal(l.recordLost({ file: '/dev/full', code: 'ENOSPC' }), false, 'the first loss only is said at once');
    assert.deepEqual(l.lost, { connections: 231, records: 2 });
    assert.equal(
      l.summaryLine(),
      `graft: 231 connections could not be served: out of file descriptors (limit ${openFilesLimit()}); raise it with ulimit -n; ` +
        '2 log records could not be written to /dev/full (ENOSPC)',
    );
    assert.match(openFilesLimit(), /^(\d+|unlimited)$/);
  });

  it('a log file on a full disk: every record counted as lost, the loss said once, nothing thrown', () => {
    const losses = new Losses();
    const said: string[] = [];
    const logger = pino(
      {},
      logFileStream('/dev/full', losses, (line) => said.push(line)),
    );
    for (let i = 0; i < 5; i++) logger.info({ i }, 'connection');
    assert.deepEqual(losses.lost, { connections: 0, records: 5 });
    assert.deepEqual(said, ['graft: cannot write log records to /dev/full (ENOSPC): records are being lost; the program runs on, the count is given at exit']);
  });

  it('a log file that works: every record written at once, the directory made', () => {
    const dir = mkdtempSync(join(tmpdir(), 'graft-losses-'));
    try {
      const file = join(dir, 'sub', 'log.ndjson');
      const losses = new Losses();
      const { logger } = createLogger({ terminal: 'quiet', level: 'info', file }, losses);
      logger.info({ n: 1 }, 'one');
      logger.info({ n: 2 }, 'two');
      assert.ok(existsSync(file));
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      assert.deepEqual(
        lines.map((l) => (JSON.parse(l) as { n: number }).n),
        [1, 2],
      );
      assert.deepEqual(losses.lost, { connections: 0, records: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
