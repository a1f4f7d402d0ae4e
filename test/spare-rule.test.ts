import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimEnd, wantsSpare, type SpareFacts } from '../src/run/spare-rule.js';

/** The spare's rule (README.md "Warm agents": spare), decided without the daemon. */

const facts = (over: Partial<Omit<SpareFacts, 'sparesHeld'>> & { held?: number } = {}): SpareFacts => ({
  allowed: over.allowed ?? true,
  queued: over.queued ?? 1,
  running: over.running ?? true,
  hasSpare: over.hasSpare ?? false,
  sparesHeld: () => over.held ?? 0,
  cap: over.cap ?? 4,
});

describe('the spare rule', () => {
  it('starts one for a running agent with tasks waiting, within the cap', () => {
    assert.equal(wantsSpare(facts()), true);
    assert.equal(wantsSpare(facts({ queued: 0 })), false, 'nothing waits');
    assert.equal(wantsSpare(facts({ running: false })), false, 'an agent waiting its turn starts none');
    assert.equal(wantsSpare(facts({ held: 4 })), false, 'the cap is reached');
    assert.equal(wantsSpare(facts({ allowed: false })), false, 'the definition does not allow it');
  });

  it('keeps one while tasks wait or a claim may take it, and drops it otherwise', () => {
    assert.equal(wantsSpare(facts({ hasSpare: true, running: false, held: 9 })), true, 'kept while its agent waits its turn, whatever the cap');
    assert.equal(wantsSpare(facts({ hasSpare: true, queued: 0, running: true })), true, 'a claim in progress may be about to take it');
    assert.equal(wantsSpare(facts({ hasSpare: true, queued: 0, running: false })), false);
    assert.equal(wantsSpare(facts({ hasSpare: true, allowed: false })), false);
  });

  it('tells a claim after which the agent runs again from one after which it waits', () => {
    assert.equal(claimEnd('ran', false), 'next');
    assert.equal(claimEnd('settled', false), 'next');
    assert.equal(claimEnd('blocked', true), 'next', 'its task parked: the next one runs');
    for (const kind of ['blocked', 'waiting', 'locked', 'idle']) assert.equal(claimEnd(kind, false), 'stalled', kind);
  });
});
