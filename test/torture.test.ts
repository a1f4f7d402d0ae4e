import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runTorture } from './torture/harness.js';

describe('kill -9 torture', () => {
  it('after dozens of SIGKILLs every task is in exactly one place, every ledger entry is written exactly once, every file parses', async () => {
    const report = await runTorture({ kills: Number(process.env.TORTURE_KILLS ?? 30), agents: 4, tasksPerAgent: 6, maxLifeMs: 600 });
    console.log(JSON.stringify(report));
    assert.deepEqual(report.lost, [], 'lost tasks');
    assert.deepEqual(report.inTwoPlaces, [], 'tasks in two places');
    assert.deepEqual(report.duplicatedEntries, [], 'side effects repeated');
    assert.deepEqual(report.missingEntries, [], 'done tasks whose side effect never happened');
    assert.deepEqual(report.unreadableFiles, [], 'unreadable JSON files');
    assert.equal(report.modelCallsPaidTwice, 0, 'model calls paid twice');
    assert.equal(report.done + report.deadLettered, report.tasks);
    assert.equal(report.auditOk, true, 'the audit chain verifies');
  });
});
