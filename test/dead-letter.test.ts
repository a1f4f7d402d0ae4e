import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { HistoryLine } from '../src/store/history.js';
import type { DeadLetterRecord } from '../src/store/dead-letters.js';
import type { DoneRecord } from '../src/store/done-records.js';
import { FAST_CONFIG, inHome, untilInFolder, withDaemon } from './helpers/support.js';
import { SCRIPTED_AGENT, type TestHome } from './helpers/home.js';

/** Failed runs, retries, dead letters and `agentd dlq` (DESIGN.md section 3). */

/** An agent process that fails whatever its task says: a broken deploy, not a bad task. */
const CRASHING_AGENT = `process.stderr.write('boom: cannot start\\n');\nprocess.exit(3);\n`;

async function deadLetter(home: TestHome, agent: string, id: string): Promise<DeadLetterRecord> {
  return home.readJson<DeadLetterRecord>(`state/dead-letter/${agent}/${id}.json`);
}

describe('dead letters', () => {
  it('an agent that exits non-zero is retried up to max_attempts, dead-lettered with its runs, and dlq retry runs it to done once fixed', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.write('agents/flaky/crash.mjs', CRASHING_AGENT);
      await home.write('agents/flaky/agent.json', { version: '1', command: ['node', 'crash.mjs'], max_attempts: 3 });
      await home.inbox('flaky', 'd1', { goal: 'survive a broken agent', input: { script: [{ result: 'fixed and done' }] } });

      await withDaemon(home, async (daemon) => {
        for (let n = 1; n <= 3; n++) assert.equal((await daemon.runEnded('flaky', n)).outcome, 'failed');

        const history = await home.readLines<HistoryLine>('state/flaky/history.jsonl');
        assert.deepEqual(history.map((h) => h.status), ['failed', 'failed', 'dead_letter']);
        assert.ok(history.every((h) => h.error_category === 'crash' && h.error === 'agent exited with code 3; stderr: boom: cannot start'), JSON.stringify(history));
        for (let i = 1; i < history.length; i++) {
          assert.ok(Date.parse(history[i]!.started_at) >= Date.parse(history[i - 1]!.ended_at), 'a retry starts after the failed run ended');
        }
        const attempts = daemon.logs.filter((l) => l.msg === 'run started' && l.agent === 'flaky').map((l) => l.attempt);
        assert.deepEqual(attempts, [1, 2, 3]);
        assert.equal(daemon.logs.filter((l) => l.msg === 'agent stderr' && l.line === 'boom: cannot start').length, 3, "each run's stderr is logged");

        const record = await deadLetter(home, 'flaky', 'd1');
        assert.equal(record.task?.id, 'd1');
        assert.equal(record.task?.goal, 'survive a broken agent');
        // The cause travels with the record, not only in the log at --log-level info.
        assert.deepEqual(record.error, { category: 'crash', code: 'crash', retryable: true, message: 'agent exited with code 3; stderr: boom: cannot start', stderr_tail: ['boom: cannot start'] });
        assert.equal(record.attempts, 3);
        assert.deepEqual(record.runs, history.map((h) => h.run_id));
        assert.equal(await home.exists('agents/flaky/current-task.json'), false);
        assert.deepEqual(await home.list('agents/flaky/inbox'), []);
        assert.equal(await home.exists('state/flaky/checkpoint.json'), false);
        assert.equal(await home.exists('state/flaky/done/d1.json'), false);

        const listed = await home.cli(['dlq', 'list', '--json']);
        assert.equal(listed.code, 0, listed.stderr);
        assert.deepEqual(
          (JSON.parse(listed.stdout) as { agent: string; id: string; category: string; attempts: number }[]).map((e) => [e.agent, e.id, e.category, e.attempts]),
          [['flaky', 'd1', 'crash', 3]],
        );
        const table = await home.cli(['dlq']);
        assert.equal(table.code, 0);
        assert.match(table.stdout, /^AGENT\s+ID\s+CATEGORY/);
        assert.match(table.stdout, /flaky\s+d1\s+crash/);
        const shown = await home.cli(['dlq', 'show', 'd1']);
        assert.equal(shown.code, 0, shown.stderr);
        assert.deepEqual(JSON.parse(shown.stdout), record);
        assert.match(shown.stdout, /"stderr_tail": \[\n\s+"boom: cannot start"\n\s+\]/);

        // A person fixes the agent, then retries the task.
        await home.write('agents/flaky/agent.json', { version: '2', command: ['node', SCRIPTED_AGENT], model: 'mock/echo' });
        await daemon.waitForCount((l) => l.msg === 'agent definition loaded' && l.agent === 'flaky', 2, 'the fixed definition to load');
        const retried = await home.cli(['dlq', 'retry', 'd1']);
        assert.equal(retried.code, 0, retried.stderr);
        assert.equal(retried.stdout, 'requeued d1 into agents/flaky/inbox/d1.json\n');
        const ended = await daemon.runEnded('flaky', 4);
        assert.equal(ended.outcome, 'done');
        const done = await home.readJson<DoneRecord>('state/flaky/done/d1.json');
        assert.equal(done.output, 'fixed and done');
        assert.equal(done.task.goal, 'survive a broken agent', 'the same task came back');
        assert.equal(await home.exists('state/dead-letter/flaky/d1.json'), false);
        assert.deepEqual(await home.list('agents/flaky/inbox'), []);
        assert.equal((await home.cli(['dlq', 'list', '--json'])).stdout.trim(), '[]');
      });
    }));

  it('agentd run shows why an agent died: the last lines of its stderr (an import that does not resolve), also in the dead letter', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.write('agents/broken/agent.mjs', `import { runAgent } from 'no-such-package/sdk';\nrunAgent(async () => 'never');\n`);
      await home.write('agents/broken/agent.json', { version: '1', command: ['node', 'agent.mjs'], model: 'mock/echo', max_attempts: 1 });
      await home.write('task.json', { id: 'b1', goal: 'fail to start' });
      const run = await home.cli(['run', 'broken', '--task', home.path('task.json')]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stdout, /^dead-lettered b1: crash: agent exited with code 1; stderr: Error \[ERR_MODULE_NOT_FOUND\]: Cannot find package 'no-such-package'/);
      assert.match(run.stdout, /the agent's last stderr lines:\n(  .*\n)*  .*ERR_MODULE_NOT_FOUND/);
      assert.match(run.stdout, /\nsee: agentd dlq show b1\n$/);
      const record = await deadLetter(home, 'broken', 'b1');
      assert.ok(record.error.stderr_tail?.some((l) => /Cannot find package 'no-such-package'/.test(l)), JSON.stringify(record.error));
      const shown = await home.cli(['dlq', 'show', 'b1']);
      assert.match(shown.stdout, /ERR_MODULE_NOT_FOUND/);
    }));

  it('agentd run says why an agent could not start: a command that is not there, or a file that is not executable', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.write('agents/typo/agent.json', { version: '1', command: ['pyhton3', 'agent.py'], model: 'mock/echo', max_attempts: 1 });
      await home.write('agents/noexec/agent.sh', '#!/bin/sh\necho never\n');
      await home.write('agents/noexec/agent.json', { version: '1', command: ['./agent.sh'], model: 'mock/echo', max_attempts: 1 });
      await home.write('task.json', { id: 's1', goal: 'fail to start' });
      const typo = await home.cli(['run', 'typo', '--task', home.path('task.json')]);
      assert.equal(typo.code, 1, typo.stderr);
      assert.match(typo.stdout, /^dead-lettered s1: crash: agent could not start: spawn pyhton3 ENOENT \(no such command: check `command` in the agent's definition, and the daemon's PATH\)\n/);
      const record = await deadLetter(home, 'typo', 's1');
      assert.match(record.error.message, /could not start/);
      const noexec = await home.cli(['run', 'noexec', '--task', home.path('task.json')]);
      assert.equal(noexec.code, 1, noexec.stderr);
      assert.match(noexec.stdout, /^dead-lettered s1: crash: agent could not start: spawn \S*agent\.sh EACCES \(not executable: chmod \+x it, or name its interpreter first in `command`\)\n/);
    }));

  it('output that fails output_schema fails the run with category invalid_output', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('typed', {
        max_attempts: 2,
        output_schema: { type: 'object', required: ['total'], properties: { total: { type: 'number' } } },
      });
      await home.inbox('typed', 'o1', { goal: 'sum the invoice', input: { script: [{ result: { total: 'twelve' } }] } });
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('typed', 1)).outcome, 'failed');
        assert.equal((await daemon.runEnded('typed', 2)).outcome, 'failed');
        const history = await home.readLines<HistoryLine>('state/typed/history.jsonl');
        assert.deepEqual(history.map((h) => [h.status, h.error_category]), [
          ['failed', 'invalid_output'],
          ['dead_letter', 'invalid_output'],
        ]);
        const record = await deadLetter(home, 'typed', 'o1');
        assert.equal(record.error.category, 'invalid_output');
        assert.match(record.error.message, /^output does not match output_schema: total must be number$/);
        assert.equal(record.attempts, 2);
        assert.equal(await home.exists('state/typed/done/o1.json'), false, 'invalid output is never filed as done');
      });
    }));

  it('a task file that is not JSON or fails the task schema is dead-lettered at once with its bytes and the field at fault', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('strict');
      const files: Record<string, string> = {
        'not-json': '{"goal": "half a task",',
        'no-goal': JSON.stringify({ input: { script: [{ result: 'x' }] } }),
        'extra-key': JSON.stringify({ goal: 'paint it', colour: 'red' }),
        'typo': JSON.stringify({ goal: 'hurry', priorty: 3 }),
      };
      for (const [id, bytes] of Object.entries(files)) await home.write(`agents/strict/inbox/${id}.json`, bytes);
      await home.write('agents/strict/current-task.json', JSON.stringify({ id: 'cur-1', goal: 42 }));
      await home.inbox('strict', 'fine', { goal: 'a good task', input: { script: [{ result: 'ok' }] } });

      await withDaemon(home, async (daemon) => {
        const ended = await daemon.runEnded('strict');
        assert.equal(ended.task_id, 'fine', 'only the good task runs');
        assert.equal(ended.outcome, 'done');
        // A malformed file is given a second to finish being written (PARTIAL_WRITE_QUIET_MS), then dead-lettered without a run.
        await untilInFolder(home.path('state/dead-letter/strict'), () => home.list('state/dead-letter/strict'), (names) => names.filter((n) => n.endsWith('.json')).length === 5, 'five dead letters');
        assert.deepEqual(await home.list('agents/strict/inbox'), []);
        assert.equal(await home.exists('agents/strict/current-task.json'), false);
        const history = await home.readLines<HistoryLine>('state/strict/history.jsonl');
        assert.deepEqual(history.map((h) => h.task_id), ['fine'], 'malformed tasks never run');
        await daemon.waitForLog((l) => l.msg === 'malformed inbox tasks dead-lettered' && l.agent === 'strict', 'the dead-lettering to be logged');

        const expected: Record<string, RegExp> = {
          'not-json': /^inbox\/not-json\.json: is not valid JSON: /,
          'no-goal': /^inbox\/no-goal\.json: goal is required$/,
          'extra-key': /^inbox\/extra-key\.json: colour is not a known key$/,
          'typo': /^inbox\/typo\.json: priorty is not a known key \(did you mean priority\?\)$/,
        };
        for (const [id, message] of Object.entries(expected)) {
          const record = await deadLetter(home, 'strict', id);
          assert.equal(record.raw, files[id], `${id}: the original bytes are kept`);
          assert.equal(record.task, null);
          assert.equal(record.error.category, 'bad_input');
          assert.match(record.error.message, message);
          assert.equal(record.attempts, 0);
          assert.deepEqual(record.runs, []);
        }
        // Each malformed file is kept too, beside its record: a writer still holding it open writes into the dead letter.
        assert.equal(await fs.readFile(home.path('state/dead-letter/strict/not-json.raw'), 'utf8'), files['not-json']);
        const current = await deadLetter(home, 'strict', 'cur-1');
        assert.equal(current.raw, JSON.stringify({ id: 'cur-1', goal: 42 }));
        assert.equal(current.error.message, 'current-task.json: goal must be string');

        const listed = JSON.parse((await home.cli(['dlq', 'list', '--json', '--agent', 'strict'])).stdout) as { id: string }[];
        assert.deepEqual(listed.map((e) => e.id).sort(), ['cur-1', 'extra-key', 'no-goal', 'not-json', 'typo']);
      });
    }));

  it('dlq show and retry refuse what does not exist (exit 1) and bad names (exit 2)', () =>
    inHome(FAST_CONFIG, async (home) => {
      const missing = await home.cli(['dlq', 'show', 'nothing-here']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no dead letter nothing-here/);
      const badName = await home.cli(['dlq', 'retry', '../escape']);
      assert.equal(badName.code, 2);
      assert.match(badName.stderr, /task id "\.\.\/escape"/);
    }));
});
