import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_ARMED_MS, MAX_TIMER_MS } from '../src/config/delay-bounds.js';
import { systemClock } from '../src/core/clock.js';
import { ManualClock } from './helpers/clock.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('clock', () => {
  it('the system clock arms a delay past the longest Node timer in bounded steps', () => {
    const armed: number[] = [];
    const real = globalThis.setTimeout;
    globalThis.setTimeout = ((fn: () => void, ms: number) => {
      armed.push(ms);
      return real(fn, ms);
    }) as typeof setTimeout;
    try {
      systemClock.setTimeout(() => assert.fail('fired'), 80 * 365 * 24 * 3600_000).cancel();
    } finally {
      globalThis.setTimeout = real;
    }
    assert.deepEqual(armed, [MAX_ARMED_MS]);
    assert.ok(MAX_ARMED_MS <= MAX_TIMER_MS);
  });

  it('the system clock fires a refreshed timer once and never a cancelled one', async () => {
    const fired: string[] = [];
    await new Promise<void>((resolve) => {
      const timer = systemClock.setTimeout(() => fired.push('kept'), 1);
      timer.refresh();
      const cancelled = systemClock.setTimeout(() => fired.push('cancelled'), 1);
      cancelled.cancel();
      cancelled.refresh();
      // Armed last with the same delay: Node runs it after the two above.
      systemClock.setTimeout(resolve, 1);
    });
    assert.deepEqual(fired, ['kept']);
  });

  it('the manual clock fires due timers in order, intervals each time they fall due, and a refreshed timer later', () => {
    const clock = new ManualClock();
    const seen: string[] = [];
    clock.setTimeout(() => seen.push(`b@${clock.now()}`), 200);
    clock.setTimeout(() => seen.push(`a@${clock.now()}`), 100);
    const every = clock.setInterval(() => seen.push(`i@${clock.now()}`), 150);
    const silent = clock.setTimeout(() => seen.push(`s@${clock.now()}`), 100);
    const start = clock.now();
    clock.advance(50);
    silent.refresh();
    clock.advance(250);
    every.cancel();
    clock.advance(1000);
    assert.deepEqual(seen.map((s) => s.replace(/\d+$/, (t) => String(Number(t) - start))), ['a@100', 'i@150', 's@150', 'b@200', 'i@300']);
    assert.equal(clock.pending, 0);
  });

  it('a manual sleep resolves when the clock passes it and rejects on abort', async () => {
    const clock = new ManualClock();
    let woke = false;
    const sleeping = clock.sleep(1000).then(() => (woke = true));
    clock.advance(999);
    await tick();
    assert.equal(woke, false);
    clock.advance(1);
    await sleeping;
    const abort = new AbortController();
    const aborted = clock.sleep(1000, abort.signal);
    abort.abort(new Error('stop'));
    await assert.rejects(aborted, /stop/);
  });
});
