import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { AgentDefinition } from '../src/config/types.js';
import { claimRetryDelayMs, CLAIM_RETRY_MAX_MS, interruptedReason, resourceErrorCode } from '../src/core/claim-failure.js';
import { recordInterruptedRun } from '../src/run/finish.js';
import { noteClaimError } from '../src/run/claim-errors.js';
import { CheckpointOwner, newCheckpoint, type TaskCheckpoint } from '../src/store/checkpoint.js';
import { readHistory } from '../src/store/history.js';
import { hostId } from '../src/store/host.js';
import { HomePaths } from '../src/store/paths.js';
import type { Task } from '../src/store/tasks.js';

function errno(code: string, message = `${code}: failed`): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

describe('a claim that failed on the file system', () => {
  it('a resource running out (ENOSPC, EDQUOT, EMFILE, ENFILE) is told apart, also as the cause of another error; other errors are not', () => {
    assert.equal(resourceErrorCode(errno('ENOSPC')), 'ENOSPC');
    assert.equal(resourceErrorCode(errno('EDQUOT')), 'EDQUOT');
    assert.equal(resourceErrorCode(new Error('writing the journal failed', { cause: errno('EMFILE') })), 'EMFILE');
    assert.equal(resourceErrorCode(errno('EACCES')), null);
    assert.equal(resourceErrorCode(new Error('a bug')), null);
    assert.equal(resourceErrorCode('ENOSPC'), null);
  });

  it('is looked at again after 100 ms, doubling, never more than 2 s apart', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 100].map(claimRetryDelayMs), [100, 200, 400, 800, 1600, 2000, 2000]);
    assert.equal(CLAIM_RETRY_MAX_MS, 2000);
  });

  it("a run of another daemon process ended because that daemon stopped; one of this process ended on the claim's error, which is named", () => {
    const self = { host: 'h1', pid: 10 };
    assert.deepEqual(interruptedReason({ host: 'h1', daemon_pid: 9 }, self, null), { category: 'crash', message: 'the daemon stopped during the run' });
    assert.deepEqual(interruptedReason({ host: 'h2', daemon_pid: 10 }, self, { code: 'ENOSPC', message: 'x' }), { category: 'crash', message: 'the daemon stopped during the run' });
    assert.deepEqual(interruptedReason({ host: 'h1', daemon_pid: 10 }, self, { code: 'ENOSPC', message: 'ENOSPC: no space left on device, write' }), {
      category: 'disk_full',
      message: 'the daemon could not go on with the run: ENOSPC: no space left on device, write',
    });
    assert.equal(interruptedReason({ host: 'h1', daemon_pid: 10 }, self, { code: 'EIO', message: 'EIO: i/o error' }).category, 'crash');
  });

  it('the history line of a cut-short run is written once, although its checkpoint could not be closed the first time', async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-claim-failure-'));
    try {
      const paths = new HomePaths(root);
      const agent = { name: 'a', version: '1', hash: 'h' } as AgentDefinition;
      const task = { id: 't1', created_at: '2026-01-01T00:00:00Z', goal: 'x' } as Task;
      const checkpoint: TaskCheckpoint = {
        ...newCheckpoint('t1'),
        runs: ['r-1'],
        active_run: { run_id: 'r-1', trigger: 'inbox', started_at: '2026-01-01T00:00:00Z', pid: null, host: hostId(), daemon_pid: process.pid },
      };
      noteClaimError('a', errno('ENOSPC', 'ENOSPC: no space left on device, write'));
      // The next claim records the run; a full disk then fails the claim after it, so the one after that sees the run open again.
      await recordInterruptedRun(paths, agent, task, new CheckpointOwner(paths, 'a', checkpoint), new Date('2026-01-01T00:01:00Z'));
      await recordInterruptedRun(paths, agent, task, new CheckpointOwner(paths, 'a', checkpoint), new Date('2026-01-01T00:02:00Z'));
      const history = await readHistory(paths, 'a');
      assert.equal(history.length, 1, JSON.stringify(history));
      assert.equal(history[0]!.error_category, 'disk_full');
      assert.equal(history[0]!.error, 'the daemon could not go on with the run: ENOSPC: no space left on device, write');
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});
