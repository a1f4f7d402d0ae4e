import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimEnd, wantsSpare, type SpareFacts } from '../src/run/spare-rule.js';

/** The spare's rule (README.md "Warm agents": spare), decided without the daemon. */

const facts = (over: Partial<SpareFacts> = {}): SpareFacts => ({
  allowed: over.allowed ?? true,
  queued: over.queued ?? 1,
  running: over.running ?? true,
  hasSpare: over.hasSpare ?? false,
  claimsAhead: over.claimsAhead ?? 0,
  window: over.window ?? 4,
});

describe('the spare rule', () => {
  it('starts one for an agent with tasks waiting whose next claim is near', () => {
    assert.equal(wantsSpare(facts()), true);
    assert.equal(wantsSpare(facts({ running: false, claimsAhead: 3 })), true, 'queued, three claims before its turn');
    assert.equal(wantsSpare(facts({ queued: 0 })), false, 'nothing waits');
    assert.equal(wantsSpare(facts({ claimsAhead: 4 })), false, 'its turn is not near: it goes behind the others');
    assert.equal(wantsSpare(facts({ running: false, claimsAhead: Infinity })), false, 'not queued at all');
    assert.equal(wantsSpare(facts({ allowed: false })), false, 'the definition does not allow it');
  });

  it('keeps one while a claim may take it, and drops it once its turn is far or nothing waits', () => {
    assert.equal(wantsSpare(facts({ hasSpare: true, queued: 0, running: true, claimsAhead: 40 })), true, 'a claim in progress may be about to take it');
    assert.equal(wantsSpare(facts({ hasSpare: true, queued: 0, running: false })), false);
    assert.equal(wantsSpare(facts({ hasSpare: true, running: false, claimsAhead: 40 })), false, 'its agent went to the back of a long queue');
    assert.equal(wantsSpare(facts({ hasSpare: true, allowed: false })), false);
  });

  it('tells a claim after which the agent runs again from one after which it waits', () => {
    assert.equal(claimEnd('ran', false), 'next');
    assert.equal(claimEnd('settled', false), 'next');
    assert.equal(claimEnd('blocked', true), 'next', 'its task parked: the next one runs');
    for (const kind of ['blocked', 'waiting', 'locked', 'idle']) assert.equal(claimEnd(kind, false), 'stalled', kind);
  });
});
