import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { TestHome, type DaemonProcess } from './helpers/home.js';
import { useHome } from './helpers/hooks.js';
import { FAST_CONFIG } from './helpers/support.js';
import type { StartMessage } from '../src/protocol/messages.js';
import type { HistoryLine } from '../src/store/history.js';
import type { OutboxItem } from '../src/store/outbox.js';

/**
 * Escalation to a person (DESIGN.md sections 5 and 9), end to end: an agent
 * that is unsure stops and asks; a person answers with the CLI or by editing
 * outbox.json; the daemon notices and starts the agent again with the answer.
 */

const UNSURE = {
  reason: 'the invoice shows two totals',
  question: 'Which total is right, 120 or 112?',
  blockers: ['total 120 on page 1', 'total 112 on page 2'],
  state: { page: 2, candidates: [120, 112] },
};

/** A task whose agent asks first, then finishes with `after` once a person answered. */
const askingTask = (after: unknown[] = [{ result: 'answered' }]) => ({
  goal: 'extract the total',
  input: { trace_file: 'trace.jsonl', script: [{ checkpoint: { page: 1 } }, { uncertain: UNSURE }, { result: 'guessed' }], after_resolution: after },
});

async function starts(home: TestHome, agent: string): Promise<StartMessage[]> {
  return (await home.readLines<{ type: string }>(`agents/${agent}/trace.jsonl`)).filter((m): m is StartMessage => m.type === 'start');
}

async function outboxItems(home: TestHome, agent: string): Promise<OutboxItem[]> {
  return (await home.readJson<{ items: OutboxItem[] }>(`outbox/${agent}/outbox.json`)).items;
}

describe('escalation: an unsure agent asks a person', () => {
  const home = useHome(FAST_CONFIG);
  let daemon: DaemonProcess | null = null;

  it('uncertain writes an outbox item with reason, question, blockers and state, and ends the run as escalated', async () => {
    await home.scriptedAgent('unsure');
    await home.inbox('unsure', 'inv-1', askingTask());
    daemon = home.startDaemon();
    const ended = await daemon.runEnded('unsure');
    assert.equal(ended.outcome, 'escalated');

    const [item, ...others] = await outboxItems(home, 'unsure');
    assert.equal(others.length, 0);
    assert.equal(item?.kind, 'uncertain');
    assert.equal(item?.agent, 'unsure');
    assert.equal(item?.task_id, 'inv-1');
    assert.equal(item?.status, 'open');
    assert.equal(item?.reason, UNSURE.reason);
    assert.equal(item?.question, UNSURE.question);
    assert.deepEqual(item?.blockers, UNSURE.blockers);
    assert.deepEqual((item?.details as { state?: unknown } | undefined)?.state, UNSURE.state);
    assert.match(item?.id ?? '', /^unsure:/);
    const [history] = await home.readLines<HistoryLine>('state/unsure/history.jsonl');
    assert.equal(history?.status, 'escalated');
    assert.equal(item?.run_id, history?.run_id);
    assert.equal(await home.exists('state/unsure/done/inv-1.json'), false, 'the agent did not go on and guess');
    // `while_waiting: park` (the default): the task waits for the answer in state/unsure/waiting/.
    await daemon.waitForLog((l) => l.msg === 'task parked while it waits on a person' && l.agent === 'unsure', 'the task to be parked');
    assert.equal(await home.exists('state/unsure/waiting/inv-1.json'), true, 'the task waits for the answer');

    const listed = await home.cli(['outbox', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.includes(item!.id), '`agentd outbox` lists the open item');
  });

  it('resolve --answer via the CLI starts the agent again with the answer in its start message, and it finishes', async () => {
    await home.scriptedAgent('unsure');
    await home.inbox('unsure', 'inv-1', askingTask());
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('unsure', 1)).outcome, 'escalated');
    const [item] = await outboxItems(home, 'unsure');

    const resolved = await home.cli(['resolve', item!.id, '--answer', 'Use 120, page 2 is a draft']);
    assert.equal(resolved.code, 0, resolved.stderr);
    const [after] = await outboxItems(home, 'unsure');
    assert.equal(after?.status, 'resolved');
    assert.equal(after?.resolution?.answer, 'Use 120, page 2 is a draft');
    assert.ok(after?.resolution?.by, 'the resolution names who resolved it');

    assert.equal((await daemon.runEnded('unsure', 2)).outcome, 'done');
    const [, second] = await starts(home, 'unsure');
    const [delivered, ...more] = second?.resume.resolutions ?? [];
    assert.equal(more.length, 0);
    assert.equal(delivered?.item_id, item!.id);
    assert.equal(delivered?.kind, 'uncertain');
    assert.equal(delivered?.question, UNSURE.question);
    assert.equal(delivered?.answer, 'Use 120, page 2 is a draft');
    assert.deepEqual(second?.resume.checkpoint, UNSURE.state, 'the agent resumes from the state it escalated with');
    const done = await home.readJson<{ status: string; output: unknown }>('state/unsure/done/inv-1.json');
    assert.equal(done.status, 'done');
    assert.equal(done.output, 'answered');
    const history = await home.readLines<HistoryLine>('state/unsure/history.jsonl');
    assert.deepEqual(history.map((h) => [h.status, h.trigger]), [['escalated', 'inbox'], ['done', 'resume']]);
  });

  it('resolving by editing outbox.json by hand is noticed by the running daemon', async () => {
    await home.scriptedAgent('unsure');
    await home.inbox('unsure', 'inv-1', askingTask());
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('unsure', 1)).outcome, 'escalated');

    // What a person does in an editor: read, change the item, write the file in place.
    const file = home.path('outbox/unsure/outbox.json');
    const outbox = JSON.parse(await fs.readFile(file, 'utf8')) as { items: OutboxItem[] };
    const item = outbox.items[0]!;
    item.status = 'resolved';
    item.resolution = { decision: 'continue' };
    await fs.writeFile(file, JSON.stringify(outbox, null, 2));

    let runs = 0;
    // The sweep comes every 60 s (the default) and waitForLog gives up after 20 s: only the watcher's event starts this run in time.
    await daemon.waitForLog((l) => l.msg === 'run started' && l.agent === 'unsure' && ++runs === 2, 'the run after the edit');
    assert.equal((await daemon.runEnded('unsure', 2)).outcome, 'done');
    const [, second] = await starts(home, 'unsure');
    assert.deepEqual(
      second?.resume.resolutions.map((r) => [r.item_id, r.decision]),
      [[item.id, 'continue']],
    );
    assert.equal((await home.readJson<{ output: unknown }>('state/unsure/done/inv-1.json')).output, 'answered');
  });
});

describe('escalation: a broken outbox.json', () => {
  const home = useHome(FAST_CONFIG);
  let daemon: DaemonProcess | null = null;

  const BROKEN = '{"items": [ {"id": "oops", \n';

  it('a hand-broken outbox.json does not crash the daemon, is reported naming the file, and is never overwritten', async () => {
    await home.scriptedAgent('broken');
    await home.scriptedAgent('healthy');
    await home.write('outbox/broken/outbox.json', BROKEN);
    await home.write('agents/broken/current-task.json', { id: 'b1', created_at: new Date().toISOString(), goal: 'wait', input: { trace_file: 'trace.jsonl', script: [{ result: 'ran' }] } });
    daemon = home.startDaemon();

    const reported = await daemon.waitForLog((l) => l.msg === 'outbox.json is broken; the task waits until it is fixed' && l.agent === 'broken', 'the broken outbox report');
    assert.match(String(reported.problem), /outbox\/broken\/outbox\.json/, 'the log names the file');
    assert.match(String(reported.problem), /not valid JSON/);
    assert.equal(await home.exists('agents/broken/trace.jsonl'), false, 'the task does not run while its outbox is unreadable');

    // The daemon would write an outbox item for a bad definition: it must not, over the broken file.
    await home.write('agents/broken/agent.json', { version: '2', command: ['node', 'x.js'], budget: { max_stepz: 3 } });
    await daemon.waitForLog((l) => l.msg === 'agent definition rejected' && l.agent === 'broken', 'the rejected definition');
    await home.write('healthy-input.json', { script: [{ result: 'alive' }] });
    const submitted = await home.cli(['submit', 'healthy', '--id', 'h1', '--goal', 'prove the daemon is alive', '--input', home.path('healthy-input.json')]);
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.equal((await daemon.runEnded('healthy')).outcome, 'done', 'other agents keep running');
    assert.equal(await fs.readFile(home.path('outbox/broken/outbox.json'), 'utf8'), BROKEN, 'the broken file is untouched');
    assert.equal(daemon.child.exitCode, null, 'the daemon is still running');
  });

  it('an escalation while outbox.json is broken leaves the file untouched and is raised again once a person fixes it', async () => {
    await home.scriptedAgent('fragile', {
      // A tool that waits for the test to say go, so the file can be broken mid-run without a sleep.
      tools: { gate: { command: ['node', '-e', "const fs=require('fs');const t=setInterval(()=>{if(fs.existsSync('go')){clearInterval(t);process.stdout.write('{}')}},10)"] } },
    });
    await home.inbox('fragile', 'f1', {
      goal: 'ask late',
      input: { trace_file: 'trace.jsonl', script: [{ log: 'at the gate' }, { tool: 'gate' }, { uncertain: UNSURE }], after_resolution: [{ result: 'answered' }] },
    });
    daemon = home.startDaemon();
    await daemon.waitForLog((l) => l.msg === 'agent log' && l.agent_msg === 'at the gate', 'the agent to reach the gate');
    await home.write('outbox/fragile/outbox.json', BROKEN);
    await home.write('agents/fragile/go', '');

    await daemon.waitForLog((l) => l.agent === 'fragile' && (l.msg === 'claim failed' || l.msg === 'run ended'), 'the escalation to meet the broken file');
    await daemon.waitForLog((l) => l.msg === 'outbox.json is broken; the task waits until it is fixed' && l.agent === 'fragile', 'the task to wait for the fix');
    assert.equal(await fs.readFile(home.path('outbox/fragile/outbox.json'), 'utf8'), BROKEN, 'the broken file is untouched');
    assert.equal(daemon.child.exitCode, null, 'the daemon is still running');

    await fs.writeFile(home.path('outbox/fragile/outbox.json'), '{"items": []}\n');
    await daemon.waitForLog((l) => l.msg === 'escalated to the outbox' && l.agent === 'fragile', 'the escalation to be raised again');
    const [item, ...others] = await outboxItems(home, 'fragile');
    assert.equal(others.length, 0, 'one item, not two');
    assert.equal(item?.kind, 'uncertain');
    assert.equal(item?.question, UNSURE.question);
    const gateCalls = (await home.readLines<{ type: string; replayed?: boolean }>('agents/fragile/trace.jsonl')).filter((m) => m.type === 'tool_result');
    assert.equal(gateCalls.at(-1)?.replayed, true, 'the tool call is answered from the journal, not run again');
  });
});
