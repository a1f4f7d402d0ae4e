import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareForPromotion, sameTask } from '../src/core/task-order.js';

describe('task ordering (the core, no disk)', () => {
  const task = (id: string, created_at: string, priority?: number) => ({ id, created_at, ...(priority !== undefined ? { priority } : {}) });

  it('higher priority first, then older, then by id', () => {
    const tasks = [
      task('b', '2026-01-01T00:00:02Z'),
      task('c', '2026-01-01T00:00:01Z', -1),
      task('a', '2026-01-01T00:00:02Z'),
      task('z', '2026-01-01T00:00:03Z', 5),
      task('y', '2026-01-01T00:00:01Z'),
    ];
    assert.deepEqual(tasks.sort(compareForPromotion).map((t) => t.id), ['z', 'y', 'a', 'b', 'c']);
  });

  it('no priority counts as 0, and created_at compares as time, not text', () => {
    assert.ok(compareForPromotion(task('x', '2026-01-01T00:00:00Z', 0), task('w', '2026-01-01T00:00:00Z')) > 0, 'equal priority and age: by id');
    assert.ok(compareForPromotion(task('x', '2026-01-01T01:00:00+01:00'), task('w', '2026-01-01T00:30:00Z')) < 0, '00:00Z is older than 00:30Z');
    assert.equal(compareForPromotion(task('same', '2026-01-01T00:00:00Z'), task('same', '2026-01-01T00:00:00Z')), 0);
  });

  it('two copies of a task are the same whatever their key order; a changed field is not', () => {
    assert.ok(sameTask({ id: 't', goal: 'g', input: { a: 1, b: [1, { c: 2, d: 3 }] } }, { input: { b: [1, { d: 3, c: 2 }], a: 1 }, goal: 'g', id: 't' }));
    assert.ok(!sameTask({ id: 't', goal: 'g' }, { id: 't', goal: 'h' }));
    assert.ok(!sameTask({ id: 't', list: [1, 2] }, { id: 't', list: [2, 1] }), 'array order matters');
  });
});
