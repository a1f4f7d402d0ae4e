import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { orphanAction, type GroupRecord } from '../src/store/process-registry.js';

describe('orphanAction', () => {
  const record: GroupRecord = { v: 1, pgid: 500, kind: 'tool', run_id: 'r', host: 'h', daemon_pid: 40, start_ticks: '123' };
  const facts = { host: 'h', myPid: 41, daemonAlive: () => false, startTicks: () => '123' as string | null | undefined };
  it('kills a live group a dead daemon on this host left behind', () => assert.equal(orphanAction(record, facts), 'kill'));
  it('forgets a group that is gone, or whose pid now belongs to another process', () => {
    assert.equal(orphanAction(record, { ...facts, startTicks: () => undefined }), 'forget');
    assert.equal(orphanAction(record, { ...facts, startTicks: () => '999' }), 'forget');
  });
  it("keeps another host's, and a live daemon's", () => {
    assert.equal(orphanAction({ ...record, host: 'other' }, facts), 'keep');
    assert.equal(orphanAction(record, { ...facts, daemonAlive: () => true }), 'keep');
  });
  it("this daemon's own leftover (it holds the lock, so no run of its own is in flight) is killed", () => {
    assert.equal(orphanAction({ ...record, daemon_pid: 41 }, { ...facts, daemonAlive: () => true }), 'kill');
  });
});
