import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { completionBody } from '../src/endpoint/openai-shape.js';
import { appendAudit, verifyAudit } from '../src/observe/audit.js';
import { ReplayCursor } from '../src/run/replay.js';
import { readCheckpoint } from '../src/store/checkpoint.js';
import { readHistory } from '../src/store/history.js';
import { readJournal, requestHash } from '../src/store/journal.js';
import { blocksTask, readAllOutboxes, readOutbox } from '../src/store/outbox.js';
import { listDeadLetters, readDeadLetter, retryDeadLetter } from '../src/store/dead-letters.js';
import { readDone } from '../src/store/done-records.js';
import { readParked, unpark } from '../src/store/waiting.js';
import type { RecordedModelReply } from '../src/run/model-call.js';
import { copyFixtureHome } from './helpers/fixtures.js';
import { completion, type LogLine } from './helpers/home.js';
import { useHome, useStandIn } from './helpers/hooks.js';

/**
 * Every persisted format as agentd v1 wrote it (test/fixtures/v1/home/, made
 * by one real daemon run: see test/fixtures/README.md), read by today's code
 * through its own readers. A change that cannot read an old home fails here;
 * such a change adds test/fixtures/v2 and a migration, it never edits v1.
 */

const CLERK_RUN = 'r-20261130042914-2053c225';
const FAULTY_RUNS = ['r-20261130042914-063645d4', 'r-20261130042917-f191cd59'];
const ASKER_ITEM = 'asker:cdcc6c47';
const CAPPED_ITEM = 'capped:3afc31d1';
/** What the stand-in provider answered to every call of the v1 run. */
const RAW_COMPLETION = {
  id: 'cmpl-1',
  object: 'chat.completion',
  choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'the total is 42' } }],
  usage: { prompt_tokens: 12, completion_tokens: 6, total_tokens: 18 },
};

describe('v1 fixtures read by the store and the CLI', () => {
  const home = useHome();

  it('the journal: its calls, its spend, replay of its calls, and the model record raw body the endpoint answers with', async () => {
    await copyFixtureHome(home, 'v1');
    const journal = await readJournal(home.paths.journal('clerk', 'inv-7'));
    assert.equal(journal.records, 4);
    assert.deepEqual(
      journal.effective.map((c) => [c.seq, c.kind, c.name, c.phase]),
      [
        [1, 'model', 'standin/gpt-test', 'completed'],
        [2, 'tool', 'post', 'completed'],
      ],
    );
    assert.deepEqual(journal.spend, { steps: 1, toolCalls: 1, inputTokens: 12, outputTokens: 6, costUsd: 0.000024 });
    assert.deepEqual(journal.effective[1]!.result, { posted: 'inv-7: 42' });

    // The same request today hashes as it did then, so a resumed agent is answered from the journal.
    const modelHash = requestHash('model', 'standin/gpt-test', { messages: [{ role: 'user', content: 'What is the total of invoice 7?' }] });
    const toolHash = requestHash('tool', 'post', { entry: 'inv-7: 42' });
    const cursor = new ReplayCursor(journal.effective, 0, false);
    const first = cursor.match(cursor.next('model', modelHash), 'model', modelHash);
    assert.equal(first.kind, 'recorded');
    assert.equal(cursor.match(cursor.next('tool', toolHash), 'tool', toolHash).kind, 'recorded');

    const reply = (first as { call: { result: RecordedModelReply } }).call.result;
    assert.deepEqual(reply.response, { content: 'the total is 42', tool_calls: [] });
    assert.deepEqual(reply.raw, RAW_COMPLETION);
    assert.deepEqual(completionBody(reply, { input_tokens: 12, output_tokens: 6 }, { created: 0, id: 'unused' }), RAW_COMPLETION, 'the endpoint answers a replayed call with the raw body');
  });

  it('a parked task and its checkpoint: unparked, the checkpoint is the task’s again with its state, seq and spend', async () => {
    await copyFixtureHome(home, 'v1');
    const parked = await readParked(home.paths, 'capped');
    assert.deepEqual(
      parked.map((p) => [p.task.id, p.task.goal]),
      [['inv-10', 'total invoice 10']],
    );
    assert.ok(await unpark(home.paths, 'capped', parked[0]!));
    const checkpoint = await readCheckpoint(home.paths, 'capped', 'inv-10');
    assert.ok(checkpoint);
    assert.deepEqual(checkpoint.state, { stopped: 'max_steps' });
    assert.equal(checkpoint.checkpoint_seq, 2);
    assert.equal(checkpoint.attempts, 0);
    assert.deepEqual(checkpoint.runs, ['r-20261130042914-07e30173']);
    assert.deepEqual(checkpoint.spend, { steps: 1, tool_calls: 0, input_tokens: 12, output_tokens: 6, cost_usd: 0.000024 });
  });

  it('the outboxes: an uncertain item and a limit item, open, each blocking its task', async () => {
    await copyFixtureHome(home, 'v1');
    const asker = await readOutbox(home.paths, 'asker');
    assert.equal(asker.items.length, 1);
    const item = asker.items[0]!;
    assert.deepEqual([item.id, item.kind, item.status, item.task_id, item.question], [ASKER_ITEM, 'uncertain', 'open', 'inv-8', 'Which total is right, 40 or 44?']);
    assert.equal(blocksTask(item, 'inv-8'), true);
    const all = await readAllOutboxes(home.paths);
    assert.deepEqual(all.problems, []);
    assert.deepEqual(all.items.map((i) => [i.id, i.kind]).sort(), [
      [ASKER_ITEM, 'uncertain'],
      [CAPPED_ITEM, 'limit'],
    ]);
  });

  it('the done record and the dead-letter record; the dead letter goes back to the inbox on retry', async () => {
    await copyFixtureHome(home, 'v1');
    const done = await readDone(home.paths, 'clerk', 'inv-7');
    assert.ok(done);
    assert.deepEqual([done.status, done.output, done.runs, done.task.goal], ['done', { total: 42 }, [CLERK_RUN], 'total invoice 7']);

    const dead = await readDeadLetter(home.paths, 'faulty', 'inv-9');
    assert.ok(dead);
    assert.deepEqual([dead.attempts, dead.runs, dead.source, dead.error.category], [2, FAULTY_RUNS, 'current', 'crash']);
    assert.deepEqual(dead.error.stderr_tail, ['cannot read invoice 9']);
    assert.deepEqual(
      (await listDeadLetters(home.paths)).map((e) => [e.agent, e.id]),
      [['faulty', 'inv-9']],
    );
    const task = await retryDeadLetter(home.paths, 'faulty', 'inv-9');
    assert.equal(task?.goal, 'total invoice 9');
    assert.equal((await home.readJson<{ id: string }>('agents/faulty/inbox/inv-9.json')).id, 'inv-9');
  });

  it('the audit trail and its head: the chain verifies, and a new line chains on from the frozen head', async () => {
    await copyFixtureHome(home, 'v1');
    assert.deepEqual(await verifyAudit(home.paths), { ok: true, lines: 11 });
    const events = (await home.readLines<{ event: string }>('state/audit.jsonl')).map((l) => l.event);
    assert.deepEqual(events.filter((e, i) => events.indexOf(e) === i).sort(), ['claim', 'dead_letter', 'done', 'escalation', 'tool_call']);
    const line = await appendAudit(home.paths, { event: 'resolution', agent: 'asker', task_id: 'inv-8', by: 'fixture-test' }, new Date('2026-12-01T00:00:00Z'));
    assert.equal(line.seq, 12);
    assert.deepEqual(await verifyAudit(home.paths), { ok: true, lines: 12 });
    const cli = await home.cli(['audit', 'verify']);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /12 lines, chain intact/);
  });

  it('history: read by the store and by `agentd runs`', async () => {
    await copyFixtureHome(home, 'v1');
    const faulty = await readHistory(home.paths, 'faulty');
    assert.deepEqual(
      faulty.map((l) => [l.run_id, l.status, l.trigger, l.error_category]),
      [
        [FAULTY_RUNS[0], 'failed', 'inbox', 'crash'],
        [FAULTY_RUNS[1], 'dead_letter', 'resume', 'crash'],
      ],
    );
    const cli = await home.cli(['runs', '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    const runs = JSON.parse(cli.stdout) as { run_id: string; status: string; cost_usd: number }[];
    assert.equal(runs.length, 5);
    assert.deepEqual(runs.find((r) => r.run_id === CLERK_RUN), { ...runs.find((r) => r.run_id === CLERK_RUN), status: 'done', cost_usd: 0.000024 });
  });

  it('a trace: `agentd trace` shows the run, its model call, its tool call and its checkpoint', async () => {
    await copyFixtureHome(home, 'v1');
    const cli = await home.cli(['trace', CLERK_RUN, '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    const spans = JSON.parse(cli.stdout) as { kind: string; name: string; parent_span_id: string | null; status: string }[];
    assert.deepEqual(spans.map((s) => s.kind).sort(), ['checkpoint', 'model', 'run', 'tool']);
    const run = spans.find((s) => s.kind === 'run')!;
    assert.equal(run.parent_span_id, null);
    assert.equal(run.status, 'ok');
    const text = await home.cli(['trace', CLERK_RUN]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /execute_tool post/);
  });

  it('`agentd status` over the whole home: two tasks wait for a person, one dead letter, the daemon last seen stopped', async () => {
    await copyFixtureHome(home, 'v1');
    const cli = await home.cli(['status', '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    const status = JSON.parse(cli.stdout) as {
      daemon: { running: boolean; last_seen: { state: string } | null };
      agents: { agent: string; status: string; parked: number; open_items: number; dead_letters: number; last_run: { run_id: string } | null }[];
    };
    assert.equal(status.daemon.running, false);
    assert.equal(status.daemon.last_seen?.state, 'stopped');
    const row = (agent: string) => status.agents.find((a) => a.agent === agent)!;
    assert.deepEqual([row('asker').status, row('asker').parked, row('asker').open_items], ['waiting_for_person', 1, 1]);
    assert.deepEqual([row('capped').status, row('capped').parked, row('capped').open_items], ['waiting_for_person', 1, 1]);
    assert.equal(row('faulty').dead_letters, 1);
    assert.equal(row('clerk').last_run?.run_id, CLERK_RUN);
  });
});

describe('v1 fixtures resumed by the daemon', () => {
  const standIn = useStandIn(() => ({ body: completion('the total is 42', { prompt_tokens: 12, completion_tokens: 6 }) }));
  const home = useHome();

  it('resolving the frozen items resumes both tasks with their checkpoint, the handoff and the answer', async () => {
    await copyFixtureHome(home, 'v1', standIn.url);
    const daemon = home.startDaemon();
    await daemon.started();
    for (const args of [[CAPPED_ITEM, '--continue', '--extend', 'steps=5'], [ASKER_ITEM, '--answer', '44']]) {
      const resolved = await home.cli(['resolve', ...args, '--by', 'fixture-test']);
      assert.equal(resolved.code, 0, resolved.stderr);
    }
    const doneRun = (agent: string) => (l: LogLine) => l.msg === 'run ended' && l.agent === agent && l.outcome === 'done';
    await daemon.waitForLog(doneRun('capped'), 'capped to finish');
    await daemon.waitForLog(doneRun('asker'), 'asker to finish');

    // The scripted agent answers `$checkpoint` after a resolution: its output is the checkpoint it was handed.
    assert.deepEqual((await home.readJson<{ output: unknown }>('state/capped/done/inv-10.json')).output, { stopped: 'max_steps' });
    assert.deepEqual((await home.readJson<{ output: unknown }>('state/asker/done/inv-8.json')).output, { candidates: [40, 44] });
    type Start = { type: string; resume: { handoff: { reason: string; summary: string; journal_tail: unknown[] } | null; resolutions: { item_id: string; answer?: string }[] } };
    const start = async (agent: string) => (await home.readLines<Start>(`agents/${agent}/trace.jsonl`)).filter((m) => m.type === 'start').at(-1)!;
    const capped = await start('capped');
    assert.equal(capped.resume.handoff?.reason, 'max_steps');
    assert.equal(capped.resume.handoff?.summary, 'stopped: max_steps');
    assert.equal(capped.resume.handoff?.journal_tail.length, 2);
    const asker = await start('asker');
    assert.deepEqual(
      asker.resume.resolutions.map((r) => [r.item_id, r.answer]),
      [[ASKER_ITEM, '44']],
    );
    assert.deepEqual(await verifyAudit(home.paths), { ok: true, lines: (await home.readLines('state/audit.jsonl')).length });
  });
});
