import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Scheduler } from '../src/daemon/scheduler.js';
import { systemClock } from '../src/core/clock.js';
import { MAX_ARMED_MS } from '../src/config/delay-bounds.js';
import type { ClaimResult } from '../src/run/runner.js';
import { ManualClock } from './helpers/clock.js';

/** A claim that records its order and ends when the test says so. */
function controlledClaims() {
  const started: string[] = [];
  const finishers = new Map<string, (r: ClaimResult) => void>();
  let active = 0;
  let maxActive = 0;
  const claim = (agent: string) =>
    new Promise<ClaimResult>((resolve) => {
      started.push(agent);
      active++;
      maxActive = Math.max(maxActive, active);
      finishers.set(agent, (r) => {
        active--;
        resolve(r);
      });
    });
  return { started, finishers, claim, maxActive: () => maxActive };
}

const log = pino({ level: 'silent' });
const tick = () => new Promise((r) => setImmediate(r));

describe('scheduler', () => {
  it('a failed claim is looked at again once, at once; a second failure in a row waits for an event', async () => {
    let claims = 0;
    const s = new Scheduler(1, async () => {
      claims++;
      throw new Error('the outbox is broken');
    }, log, systemClock, 1000);
    s.poke('a');
    await s.whenIdle();
    await tick();
    await s.whenIdle();
    assert.equal(claims, 2, 'the first failure is looked at once more, the second is not');
    s.poke('a'); // an event: looked at again
    await s.whenIdle();
    assert.equal(claims, 3);
    await s.stop();
  });

  it('never runs more than max_parallel_runs claims at once', async () => {
    const c = controlledClaims();
    const s = new Scheduler(2, c.claim, log, systemClock, 1000);
    for (const a of ['a', 'b', 'c', 'd']) s.poke(a);
    await tick();
    assert.deepEqual(c.started, ['a', 'b']);
    c.finishers.get('a')!({ kind: 'idle' });
    await tick();
    await tick();
    assert.deepEqual(c.started, ['a', 'b', 'c']);
    for (const a of ['b', 'c']) c.finishers.get(a)!({ kind: 'idle' });
    await tick();
    await tick();
    c.finishers.get('d')!({ kind: 'idle' });
    await s.whenIdle();
    assert.equal(c.maxActive(), 2);
  });

  it('takes agents in turn: an agent that ran goes behind the ones waiting', async () => {
    const c = controlledClaims();
    const s = new Scheduler(1, c.claim, log, systemClock, 1000);
    s.poke('busy');
    s.poke('other');
    await tick();
    const ran: ClaimResult = { kind: 'ran', taskId: 't', runId: 'r', outcome: { kind: 'done', output: null } };
    c.finishers.get('busy')!(ran); // busy has more work: it is queued again, behind `other`
    await tick();
    await tick();
    assert.deepEqual(c.started, ['busy', 'other']);
    c.finishers.get('other')!({ kind: 'idle' });
    await tick();
    await tick();
    assert.deepEqual(c.started, ['busy', 'other', 'busy']);
    c.finishers.get('busy')!({ kind: 'idle' });
    await s.whenIdle();
  });

  it('a poke during a claim looks at the agent again when the claim ends, without running it twice at once', async () => {
    const c = controlledClaims();
    const s = new Scheduler(4, c.claim, log, systemClock, 1000);
    s.poke('a');
    await tick();
    s.poke('a');
    s.poke('a');
    await tick();
    assert.deepEqual(c.started, ['a']);
    c.finishers.get('a')!({ kind: 'idle' });
    await tick();
    await tick();
    assert.deepEqual(c.started, ['a', 'a']);
    c.finishers.get('a')!({ kind: 'idle' });
    await s.whenIdle();
  });

  it('stop() refuses new claims and waits for the ones running', async () => {
    const c = controlledClaims();
    const s = new Scheduler(1, c.claim, log, systemClock, 1000);
    s.poke('a');
    s.poke('b');
    await tick();
    let stopped = false;
    const stopping = s.stop().then(() => (stopped = true));
    await tick();
    assert.equal(stopped, false);
    c.finishers.get('a')!({ kind: 'idle' });
    await stopping;
    assert.deepEqual(c.started, ['a'], 'b was never claimed');
  });

  it('an agent whose claim waits is claimed again when the manual clock reaches its time, not before', async () => {
    const clock = new ManualClock();
    const c = controlledClaims();
    const s = new Scheduler(1, c.claim, log, clock, 1000);
    s.poke('a');
    await tick();
    c.finishers.get('a')!({ kind: 'waiting', untilMs: clock.now() + 30_000 });
    await tick();
    await tick();
    assert.deepEqual(clock.dueIn(), [30_000]);
    clock.advance(29_999);
    await tick();
    assert.deepEqual(c.started, ['a']);
    clock.advance(1);
    await tick();
    assert.deepEqual(c.started, ['a', 'a']);
    c.finishers.get('a')!({ kind: 'idle' });
    await s.whenIdle();
    assert.equal(clock.pending, 0);
  });

  it('a wait years long is one timer that fires at its time, not at the longest armed step', async () => {
    const clock = new ManualClock();
    const c = controlledClaims();
    const s = new Scheduler(1, c.claim, log, clock, 1000);
    s.poke('a');
    await tick();
    const years = 80 * 365 * 24 * 3600_000;
    c.finishers.get('a')!({ kind: 'waiting', untilMs: clock.now() + years });
    await tick();
    await tick();
    clock.advance(MAX_ARMED_MS);
    await tick();
    assert.deepEqual(c.started, ['a']);
    clock.advance(years - MAX_ARMED_MS);
    await tick();
    assert.deepEqual(c.started, ['a', 'a']);
    c.finishers.get('a')!({ kind: 'idle' });
    await s.stop();
  });

  it('agents locked by another daemon are tried again together at each sweep, and the sweep stops when none is left', async () => {
    const clock = new ManualClock();
    const c = controlledClaims();
    const s = new Scheduler(2, c.claim, log, clock, 1000);
    s.poke('a');
    s.poke('b');
    await tick();
    c.finishers.get('a')!({ kind: 'locked' });
    c.finishers.get('b')!({ kind: 'locked' });
    await tick();
    await tick();
    assert.equal(clock.pending, 1, 'one sweep timer for both');
    clock.advance(999);
    await tick();
    assert.deepEqual(c.started, ['a', 'b']);
    clock.advance(1);
    await tick();
    assert.deepEqual(c.started, ['a', 'b', 'a', 'b']);
    c.finishers.get('a')!({ kind: 'idle' });
    c.finishers.get('b')!({ kind: 'idle' });
    await s.whenIdle();
    clock.advance(1000);
    assert.equal(clock.pending, 0, 'the sweep stopped');
    await s.stop();
  });

  it('stop() cancels the timers: a wait that falls due after stop claims nothing', async () => {
    const clock = new ManualClock();
    const c = controlledClaims();
    const s = new Scheduler(1, c.claim, log, clock, 1000);
    s.poke('a');
    await tick();
    c.finishers.get('a')!({ kind: 'waiting', untilMs: clock.now() + 5000 });
    await tick();
    await s.stop();
    assert.equal(clock.pending, 0);
    clock.advance(10_000);
    await tick();
    assert.deepEqual(c.started, ['a']);
  });
});
