import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HistoryLine } from '../src/store/history.js';
import type { DoneRecord } from '../src/store/done-records.js';
import { leaseHeld, leaseTrustMs } from '../src/store/lease.js';
import { inHome } from './helpers/support.js';

/**
 * Issue 11 item 2: two daemons share a home as two hosts. The one holding a
 * run is frozen (SIGSTOP) past lock_stale, the other takes the run over and
 * finishes it; the frozen one, continued, must write nothing over that work.
 */
const CONFIG = `
defaults:
  retry: { attempts: 2, base_delay: 10ms, max_delay: 50ms }
  stop_grace: 1s
lock_stale: 2s
`;

describe('a daemon frozen past its lease', () => {
  it('does not write done/ (or anything) over the run the other host took over', () =>
    inHome(CONFIG, async (home) => {
      await home.scriptedAgent('worker');
      await home.inbox('worker', 'f1', { goal: 'one owner', input: { script: [{ log: 'waiting' }, { wait_file: 'gate' }, { result_run_id: true }] } });
      const a = home.startDaemon({ AGENTD_HOST_ID: 'host-a' });
      let b = a;
      let frozen = false;
      try {
        const firstRun = await a.waitForLog((l) => l.msg === 'agent log' && l.agent_msg === 'waiting', "host-a's run to start");
        b = home.startDaemon({ AGENTD_HOST_ID: 'host-b' });
        await b.started();
        a.child.kill('SIGSTOP');
        frozen = true;
        const secondRun = await b.waitForLog((l) => l.msg === 'agent log' && l.agent_msg === 'waiting', 'host-b to take the run over', 30_000);
        await home.write('agents/worker/gate', 'open');
        await b.runEnded('worker');
        const done = await home.readJson<DoneRecord>('state/worker/done/f1.json');
        assert.deepEqual(done.output, { run_id: secondRun.run_id });

        a.child.kill('SIGCONT');
        frozen = false;
        await a.waitForLog((l) => l.msg === 'lease lost; the run is abandoned' && l.run_id === firstRun.run_id, 'host-a to notice its lost lease');
        await a.stop();
        await b.stop();
        const after = await home.readJson<DoneRecord>('state/worker/done/f1.json');
        assert.deepEqual(after, done, 'done/f1.json is host-b\'s, untouched');
        const history = await home.readLines<HistoryLine>('state/worker/history.jsonl');
        assert.deepEqual(history.filter((l) => l.run_id === firstRun.run_id && l.status !== 'interrupted'), [], 'host-a recorded no outcome for its lost run');
        assert.equal(await home.exists('agents/worker/current-task.json'), false);
      } finally {
        if (frozen) a.child.kill('SIGCONT');
        await a.stop();
        await b.stop();
      }
    }));
});

describe('leaseHeld', () => {
  const mine = { host: 'h', pid: 1, generation: 4 };
  it('held while the owner file names this holder and generation and the lock is fresh', () => {
    assert.equal(leaseHeld({ lost: false, owner: mine, me: mine, lockMtimeMs: 1000, nowMs: 2000, staleMs: 2000 }), true);
  });
  it('lost once another holder or generation is recorded, the lock is gone or stale, or proper-lockfile said so', () => {
    assert.equal(leaseHeld({ lost: false, owner: { ...mine, generation: 5 }, me: mine, lockMtimeMs: 1000, nowMs: 2000, staleMs: 2000 }), false);
    assert.equal(leaseHeld({ lost: false, owner: { ...mine, host: 'other' }, me: mine, lockMtimeMs: 1000, nowMs: 2000, staleMs: 2000 }), false);
    assert.equal(leaseHeld({ lost: false, owner: mine, me: mine, lockMtimeMs: null, nowMs: 2000, staleMs: 2000 }), false);
    assert.equal(leaseHeld({ lost: false, owner: mine, me: mine, lockMtimeMs: 1000, nowMs: 3001, staleMs: 2000 }), false);
    assert.equal(leaseHeld({ lost: true, owner: mine, me: mine, lockMtimeMs: 1000, nowMs: 2000, staleMs: 2000 }), false);
    assert.equal(leaseHeld({ lost: false, owner: null, me: mine, lockMtimeMs: 1000, nowMs: 2000, staleMs: 2000 }), false);
  });
});

describe('leaseTrustMs', () => {
  const mine = { host: 'h', pid: 1, generation: 4 };
  it('vouches for a held lease until half of lock_stale past the lock folder\'s last refresh', () => {
    assert.equal(leaseTrustMs({ lost: false, owner: mine, me: mine, lockMtimeMs: 1000, nowMs: 1500, staleMs: 2000 }), 500);
    assert.equal(leaseTrustMs({ lost: false, owner: mine, me: mine, lockMtimeMs: 1000, nowMs: 2500, staleMs: 2000 }), 0); // held, but re-read at the next write
  });
  it('vouches for nothing once the lease is not held', () => {
    assert.equal(leaseTrustMs({ lost: false, owner: { ...mine, generation: 5 }, me: mine, lockMtimeMs: 1000, nowMs: 1100, staleMs: 2000 }), 0);
    assert.equal(leaseTrustMs({ lost: true, owner: mine, me: mine, lockMtimeMs: 1000, nowMs: 1100, staleMs: 2000 }), 0);
    assert.equal(leaseTrustMs({ lost: false, owner: mine, me: mine, lockMtimeMs: null, nowMs: 1100, staleMs: 2000 }), 0);
  });
});
