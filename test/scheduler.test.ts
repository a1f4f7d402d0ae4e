import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Scheduler } from '../src/daemon/scheduler.js';
import type { ClaimResult } from '../src/run/runner.js';

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
  it('never runs more than max_parallel_runs claims at once', async () => {
    const c = controlledClaims();
    const s = new Scheduler(2, c.claim, log, Date.now, 1000);
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
    const s = new Scheduler(1, c.claim, log, Date.now, 1000);
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
    const s = new Scheduler(4, c.claim, log, Date.now, 1000);
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
    const s = new Scheduler(1, c.claim, log, Date.now, 1000);
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
});
