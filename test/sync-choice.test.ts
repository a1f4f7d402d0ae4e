import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SyncChoice } from '../src/store/sync-choice.js';

const limits = { slowMs: 1, windowShareMs: 20, windowMs: 100 };

test('a fast disk: every fdatasync is inline', () => {
  const choice = new SyncChoice(limits);
  for (let i = 0; i < 10; i++) {
    assert.equal(choice.inline(i * 10), true);
    choice.took(0.3, true);
  }
});

test('a slow disk: fdatasyncs go to the thread pool, and come back inline once the pool finds the disk fast again', () => {
  const choice = new SyncChoice(limits);
  assert.equal(choice.inline(0), true, 'nothing known yet');
  choice.took(8, true);
  let now = 1000;
  assert.equal(choice.inline(now), false, 'one slow inline fdatasync is enough');
  choice.took(6, false);
  assert.equal(choice.inline((now += 1000)), false, 'the pool finds it slow too');
  let onPool = 0;
  while (!choice.inline((now += 1000)) && onPool < 100) {
    choice.took(0.3, false); // fast again, hand-off included
    onPool += 1;
  }
  assert.ok(onPool > 1 && onPool < 100, `inline again after ${onPool} fast fdatasyncs on the pool`);
});

test('inline syncs that fill their share of the window hand the rest of the window to the thread pool', () => {
  const choice = new SyncChoice(limits);
  let inline = 0;
  // Each fast (0.9 ms), but back to back they would block the event loop for most of the window.
  while (choice.inline(10) && inline < 100) {
    choice.took(0.9, true);
    inline += 1;
  }
  assert.equal(inline, 23, 'inline until the 20 ms share of the 100 ms window is spent');
  assert.equal(choice.inline(60), false, 'the rest of the window goes to the thread pool');
  choice.took(0.9, false);
  assert.equal(choice.inline(110), true, 'a new window starts with its share unspent');
});
