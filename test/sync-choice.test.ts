import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SyncChoice } from '../src/store/sync-choice.js';

const limits = { slowMs: 1, windowShareMs: 20, windowMs: 100, probeEvery: 4 };

test('a fast disk: every fdatasync is inline', () => {
  const choice = new SyncChoice(limits);
  for (let i = 0; i < 10; i++) {
    assert.equal(choice.inline(i * 10), true);
    choice.tookInline(0.3);
  }
});

test('a slow disk: fdatasyncs go to the thread pool, with one inline probe in probeEvery', () => {
  const choice = new SyncChoice(limits);
  assert.equal(choice.inline(0), true);
  choice.tookInline(8);
  const picks = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => choice.inline(i * 1000));
  assert.deepEqual(picks, [false, false, false, true, false, false, false, true]);
});

test('once the disk is fast again, the probes bring the average down and inline comes back', () => {
  const choice = new SyncChoice(limits);
  choice.inline(0);
  choice.tookInline(3);
  let now = 1000;
  let inlineInARow = 0;
  for (let i = 0; i < 200 && inlineInARow < 3; i++) {
    now += 1000;
    if (choice.inline(now)) {
      choice.tookInline(0.2);
      inlineInARow += 1;
    } else inlineInARow = 0;
  }
  assert.equal(inlineInARow, 3, 'after enough fast probes, every fdatasync is inline again');
});

test('inline syncs that fill their share of the window hand the rest of the window to the thread pool', () => {
  const choice = new SyncChoice(limits);
  let inline = 0;
  // Each fast (0.9 ms), but back to back they would block the event loop for most of the window.
  while (choice.inline(10) && inline < 100) {
    choice.tookInline(0.9);
    inline += 1;
  }
  assert.equal(inline, 23, 'inline until the 20 ms share of the 100 ms window is spent');
  assert.equal(choice.inline(60), false, 'the rest of the window goes to the thread pool');
  assert.equal(choice.inline(110), true, 'a new window starts with its share unspent');
});
