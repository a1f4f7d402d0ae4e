import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ToolDefinition } from '../src/config/types.js';
import { ReplayCursor } from '../src/run/replay.js';
import type { EffectiveCall } from '../src/store/journal.js';

const call = (seq: number, kind: 'model' | 'tool', hash: string, phase: EffectiveCall['phase'] = 'completed'): EffectiveCall => ({ seq, kind, name: 'x', request_hash: hash, phase });
const journal = [call(1, 'model', 'm1'), call(2, 'tool', 't1'), call(3, 'model', 'm2')];
const writeTool = (idempotent: boolean): ToolDefinition => ({
  name: 'send',
  description: '',
  command: ['x'],
  inputSchema: {},
  effect: 'write',
  idempotent,
  approval: 'never',
  timeoutMs: 1000,
  approvalTtlMs: 1000,
  circuit: { failures: 5, windowMs: 1000, cooldownMs: 1000 },
  shared: false,
} as ToolDefinition);

describe('replay', () => {
  it('an agent that starts over is answered from call 1 while the calls match', () => {
    const cursor = new ReplayCursor(journal, 2, true);
    const seq = cursor.next('model', 'm1');
    assert.equal(seq, 1);
    assert.equal(cursor.match(seq, 'model', 'm1').kind, 'recorded');
    assert.equal(cursor.match(cursor.next('tool', 't1'), 'tool', 't1').kind, 'recorded');
  });

  it('an agent that resumed from its checkpoint is matched after the calls made before it', () => {
    const cursor = new ReplayCursor(journal, 2, true);
    const seq = cursor.next('model', 'm2');
    assert.equal(seq, 3);
    assert.equal(cursor.match(seq, 'model', 'm2').kind, 'recorded');
  });

  it('the first call that differs supersedes the rest: everything after is live', () => {
    const cursor = new ReplayCursor(journal, 0, false);
    const first = cursor.next('model', 'm1');
    assert.equal(cursor.match(first, 'model', 'm1').kind, 'recorded');
    const second = cursor.next('tool', 'other');
    assert.deepEqual(cursor.match(second, 'tool', 'other'), { kind: 'diverged' });
    assert.deepEqual(cursor.match(cursor.next('model', 'm2'), 'model', 'm2'), { kind: 'live' }, 'no replay after a divergence, even if a later call matches');
  });

  it('a call that only started is not answered from the journal', () => {
    const cursor = new ReplayCursor([call(1, 'model', 'm1', 'started')], 0, false);
    assert.deepEqual(cursor.match(cursor.next('model', 'm1'), 'model', 'm1'), { kind: 'diverged' });
  });

  it('a side effect that started but never finished: idempotent re-runs, otherwise a person decides', () => {
    const started = [call(1, 'tool', 's', 'started')];
    assert.equal(new ReplayCursor(started, 0, false).unfinishedSideEffect(1, 's', writeTool(true), undefined), 'rerun');
    assert.equal(new ReplayCursor(started, 0, false).unfinishedSideEffect(1, 's', writeTool(false), undefined), 'ask');
    assert.equal(new ReplayCursor(started, 0, false).unfinishedSideEffect(1, 's', writeTool(false), { decision: 'approve' }), 'assume_done');
    assert.equal(new ReplayCursor(started, 0, false).unfinishedSideEffect(1, 's', writeTool(false), { decision: 'retry' }), 'rerun');
    assert.equal(new ReplayCursor(started, 0, false).unfinishedSideEffect(1, 's', { ...writeTool(false), effect: 'read' }, undefined), null, 'a read tool just runs again');
    assert.equal(new ReplayCursor(started, 0, false).unfinishedSideEffect(1, 'other', writeTool(false), undefined), null, 'a different call is not that call');
  });
});
