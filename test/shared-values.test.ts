import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shared } from '../src/config/shared-values.js';

describe('shared values', () => {
  it('an equal plain value is handed out once; values JSON would confuse stay apart', () => {
    const a = shared({ steps: 50, costUsd: 2 });
    assert.equal(shared({ steps: 50, costUsd: 2 }), a);
    assert.notEqual(shared({ steps: 51, costUsd: 2 }), a);
    const unlimited = shared({ steps: Infinity });
    assert.notEqual(shared({ steps: null }), unlimited, 'Infinity is not null');
    assert.equal(shared({ steps: Infinity }), unlimited);
    assert.notEqual(shared({ runAs: undefined }), shared({}), 'a key set to undefined is not a missing key');
    assert.deepEqual(shared(['node', 'agent.js']), ['node', 'agent.js']);
  });
});
