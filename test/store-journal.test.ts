import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { appendJsonLine, readJsonLines } from '../src/store/durable.js';
import { appendJournal, readJournal, requestHash, TaskJournal, type CallRecord } from '../src/store/journal.js';
import { closeHeld, isHeldOpen } from '../src/store/held-append.js';
import { classifyPath, ignoredPath } from '../src/daemon/watcher.js';
import { HomePaths, assertName } from '../src/store/paths.js';
import { BadNameError } from '../src/errors.js';

let dir: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-journal-'));
});
after(async () => fs.rm(dir, { recursive: true, force: true }));

const call = (seq: number, phase: CallRecord['phase'], extra: Partial<CallRecord> = {}): CallRecord => ({
  v: 1,
  seq,
  run_id: 'r1',
  kind: 'model',
  name: 'mock/x',
  request_hash: `h${seq}`,
  phase,
  at: '2026-11-24T00:00:00Z',
  ...extra,
});

describe('journal', () => {
  it('a torn last line is ignored and the next append still lands whole', async () => {
    const file = path.join(dir, 'torn.jsonl');
    await appendJsonLine(file, { a: 1 });
    await fs.appendFile(file, '{"a": 2, "tor'); // a crash mid-append
    await appendJsonLine(file, { a: 3 });
    assert.deepEqual(await readJsonLines(file), [{ a: 1 }, { a: 3 }]);
  });

  it('a run holds its journal open: a torn tail left by a crash is closed off once, every record lands whole', async () => {
    const file = path.join(dir, 'held.jsonl');
    await fs.writeFile(file, JSON.stringify(call(1, 'started')) + '\n{"v":1,"seq":1,"tor'); // the last run crashed mid-append
    await appendJournal(file, call(1, 'started', { run_id: 'r2' }), false);
    assert.ok(isHeldOpen(file), 'held open after the first record');
    await appendJournal(file, call(1, 'completed', { run_id: 'r2', result: 'ok' }));
    await closeHeld(file);
    assert.ok(!isHeldOpen(file));
    const summary = await readJournal(file);
    assert.equal(summary.records, 3);
    assert.deepEqual(summary.effective.map((e) => [e.seq, e.phase, e.result]), [[1, 'completed', 'ok']]);
    // Closed: the next run opens it again and appends after what is there.
    await appendJournal(file, call(2, 'completed', { run_id: 'r3' }));
    await closeHeld(file);
    assert.equal((await readJournal(file)).records, 4);
  });

  it('folds spend across runs and never counts a replayed answer', async () => {
    const file = path.join(dir, 'spend.jsonl');
    const usage = { input_tokens: 10, output_tokens: 5, cost_usd: 0.5 };
    await appendJournal(file, call(1, 'started'));
    await appendJournal(file, call(1, 'completed', { usage }));
    await appendJournal(file, call(2, 'started', { kind: 'tool', name: 'send' }));
    await appendJournal(file, call(2, 'completed', { kind: 'tool', name: 'send', result: { ok: true } }));
    await appendJournal(file, call(1, 'completed', { usage, replayed: true, run_id: 'r2' }));
    const summary = await readJournal(file);
    assert.deepEqual(summary.spend, { steps: 1, toolCalls: 1, inputTokens: 10, outputTokens: 5, costUsd: 0.5 });
    assert.equal(summary.effective.length, 2);
    assert.equal(summary.effective[1]?.phase, 'completed');
    assert.equal(summary.spendByRun.get('r1')?.steps, 1);
  });

  it('a supersede record cuts the effective history from its seq', async () => {
    const file = path.join(dir, 'supersede.jsonl');
    for (const seq of [1, 2, 3]) await appendJournal(file, call(seq, 'completed'));
    await appendJournal(file, { v: 1, kind: 'supersede', run_id: 'r2', from_seq: 2, at: 'x' });
    await appendJournal(file, call(2, 'completed', { request_hash: 'new' }));
    const summary = await readJournal(file);
    assert.deepEqual(summary.effective.map((e) => e.request_hash), ['h1', 'new']);
  });

  it('hashes a request the same whatever its key order', () => {
    assert.equal(requestHash('tool', 'x', { a: 1, b: { c: 2, d: 3 } }), requestHash('tool', 'x', { b: { d: 3, c: 2 }, a: 1 }));
    assert.notEqual(requestHash('tool', 'x', { a: 1 }), requestHash('tool', 'y', { a: 1 }));
  });
});

describe('names and paths', () => {
  it('refuses names that could leave the home', () => {
    for (const bad of ['..', '.', 'a/b', '../x', '', '-x', 'a'.repeat(129), 'dead-letter', 'x.lock']) {
      assert.throws(() => assertName(bad, 'agent name'), BadNameError, bad);
    }
    assert.equal(assertName('billing.v2_x-1', 'agent name'), 'billing.v2_x-1');
    const paths = new HomePaths('/home/h');
    assert.throws(() => paths.inboxTask('a', '../../etc/passwd'), BadNameError);
    assert.throws(() => paths.inside('/home/h/agents/a', '../../../etc/passwd'), BadNameError);
  });
});

describe('watcher', () => {
  const paths = new HomePaths('/h');
  it('maps the files people edit to events and ignores the rest', () => {
    assert.deepEqual(classifyPath(paths, '/h/agents/a/agent.yaml'), { kind: 'definition', agent: 'a' });
    assert.deepEqual(classifyPath(paths, '/h/agents/a/inbox/t.json'), { kind: 'task', agent: 'a' });
    assert.deepEqual(classifyPath(paths, '/h/agents/a/inbox'), { kind: 'task', agent: 'a' }, 'a new inbox folder is listed by a claim');
    assert.deepEqual(classifyPath(paths, '/h/agents/a/current-task.json'), { kind: 'task', agent: 'a' });
    assert.deepEqual(classifyPath(paths, '/h/outbox/a/outbox.json'), { kind: 'outbox', agent: 'a' });
    assert.deepEqual(classifyPath(paths, '/h/agentd.yaml'), { kind: 'daemon_config' });
    assert.equal(classifyPath(paths, '/h/agents/a/inbox/t.json.12345'), null, 'a write-file-atomic temp file');
    assert.equal(classifyPath(paths, '/h/state/a/checkpoint.json'), null);
  });

  it('never descends into state/, an inbox or an agent\'s other folders', () => {
    assert.equal(ignoredPath(paths, '/h/state', true), true);
    assert.equal(ignoredPath(paths, '/h/agents/a/node_modules', true), true);
    assert.equal(ignoredPath(paths, '/h/agents/a/evals', true), true);
    assert.equal(ignoredPath(paths, '/h/agents/a/inbox', true), true, 'an inbox has an fs.watch of its own (daemon/inbox-watch.ts)');
    assert.equal(ignoredPath(paths, '/h/outbox/a/.outbox.lock', true), true);
    assert.equal(ignoredPath(paths, '/h/outbox/a/outbox.json', false), true, 'seen through its folder\'s watch');
  });
});

describe('TaskJournal: one read, totals kept by the run', () => {
  it('after appends, its totals are what reading the file again gives', async () => {
    const file = path.join(dir, 'task-journal.jsonl');
    await appendJournal(file, call(1, 'started'));
    await appendJournal(file, call(1, 'completed', { usage: { input_tokens: 3, output_tokens: 4, cost_usd: 0.01 } }));
    await closeHeld(file);
    const journal = await TaskJournal.open(file);
    const atStart = journal.effectiveAtStart();
    assert.equal(atStart.length, 1);
    await journal.append(call(2, 'started', { run_id: 'r2' }), false);
    await journal.append(call(2, 'completed', { run_id: 'r2', usage: { input_tokens: 1, output_tokens: 1, cost_usd: 0.02 } }));
    await journal.append({ v: 1, kind: 'supersede', run_id: 'r2', from_seq: 2, at: '2026-11-24T00:00:01Z' });
    await journal.append(call(2, 'started', { run_id: 'r2', request_hash: 'other' }));
    await journal.close();
    assert.equal(isHeldOpen(file), false);
    assert.equal(atStart.length, 1, 'the replay handed to the run does not move with its appends');
    const reread = await readJournal(file);
    assert.deepEqual(journal.totals(), { spend: reread.spend, tail: reread.tail });
    assert.equal(journal.totals().spend.steps, 3);
  });
});
