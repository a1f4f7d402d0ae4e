import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blocksTask } from '../src/core/outbox-rules.js';
import { nextToUnpark, shouldPark, type ParkedTask } from '../src/store/waiting.js';
import type { OutboxItem } from '../src/store/outbox.js';

/** The pure decisions of store/waiting.ts: whether to park, and which parked task comes back first. */

const parked = (id: string, priority: number, created: string): ParkedTask => ({ task: { id, goal: 'g', priority, created_at: created }, bytes: Buffer.from(id) });
const item = (taskId: string, status: 'open' | 'resolved', kind: OutboxItem['kind'] = 'uncertain'): OutboxItem =>
  ({ id: `x:${taskId}:${kind}`, kind, agent: 'x', task_id: taskId, run_id: null, created_at: '2026-01-01T00:00:00Z', reason: 'r', status }) as OutboxItem;

describe('while_waiting decisions', () => {
  it('parks only under `park` and only a task that waits on a person', () => {
    assert.equal(shouldPark('park', true), true);
    assert.equal(shouldPark('park', false), false);
    assert.equal(shouldPark('block', true), false);
  });

  it('brings back the answered task first in inbox order; a task with any open item stays parked', () => {
    const tasks = [parked('late', 0, '2026-01-02T00:00:00Z'), parked('early', 0, '2026-01-01T00:00:00Z'), parked('urgent', 5, '2026-01-03T00:00:00Z')];
    assert.equal(nextToUnpark(tasks, [], blocksTask)?.task.id, 'urgent');
    assert.equal(nextToUnpark(tasks, [item('urgent', 'open')], blocksTask)?.task.id, 'early');
    assert.equal(nextToUnpark(tasks, [item('urgent', 'resolved'), item('urgent', 'open', 'approval')], blocksTask)?.task.id, 'early', 'one open item of several is enough to wait');
    assert.equal(nextToUnpark(tasks, [item('urgent', 'open', 'budget_alert')], blocksTask)?.task.id, 'urgent', 'an item that does not hold a task back does not keep it parked');
    assert.equal(nextToUnpark(tasks, tasks.map((t) => item(t.task.id, 'open')), blocksTask), null);
  });
});
