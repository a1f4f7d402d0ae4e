import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestHome, type DaemonProcess } from './helpers/home.js';
import { useHome } from './helpers/hooks.js';
import { FAST_CONFIG } from './helpers/support.js';
import type { StartMessage } from '../src/protocol/messages.js';
import type { HistoryLine } from '../src/store/history.js';
import type { OutboxItem } from '../src/store/outbox.js';

/**
 * `while_waiting` (README "Tasks"): a task that waits on a person is parked in
 * state/<agent>/waiting/ so the agent's queue goes on (`park`, the default), or
 * holds the queue (`block`). Through the real daemon, the scripted agent and
 * the CLI; kill -9 between the two writes of a move through AGENTD_TEST_CRASH_AT.
 */

const UNSURE = { reason: 'two totals', question: 'Which total, 120 or 112?', state: { page: 2 } };
const T0 = Date.now() - 60_000;

/** Inbox tasks a1 (asks a person first), a2, a3, created in that order. */
async function threeTasks(home: TestHome, agent: string): Promise<void> {
  await home.inbox(agent, 'a1', {
    created_at: new Date(T0).toISOString(),
    goal: 'ask first',
    input: { trace_file: 'trace.jsonl', script: [{ checkpoint: { page: 1 } }, { uncertain: UNSURE }, { result: 'guessed' }], after_resolution: [{ result: 'answered' }] },
  });
  for (const [i, id] of ['a2', 'a3'].entries()) {
    await home.inbox(agent, id, { created_at: new Date(T0 + 1000 * (i + 1)).toISOString(), goal: `plain ${id}`, input: { trace_file: 'trace.jsonl', script: [{ result: `${id} ok` }] } });
  }
}

async function items(home: TestHome, agent: string): Promise<OutboxItem[]> {
  return (await home.readJson<{ items: OutboxItem[] }>(`outbox/${agent}/outbox.json`)).items;
}

async function starts(home: TestHome, agent: string): Promise<StartMessage[]> {
  return (await home.readLines<{ type: string }>(`agents/${agent}/trace.jsonl`)).filter((m): m is StartMessage => m.type === 'start');
}

async function runs(home: TestHome, agent: string): Promise<[string, string][]> {
  return (await home.readLines<HistoryLine>(`state/${agent}/history.jsonl`)).map((h) => [h.task_id, h.status]);
}

const parkedLog = (agent: string) => (l: { msg?: unknown; agent?: unknown }) => l.msg === 'task parked while it waits on a person' && l.agent === agent;

describe('while_waiting', () => {
  const home = useHome(FAST_CONFIG);
  let daemon: DaemonProcess | null = null;

  it('park (default): the two tasks behind an escalated one finish while it waits; resolve --answer resumes it with the answer', async () => {
    await home.scriptedAgent('clerk');
    await threeTasks(home, 'clerk');
    daemon = home.startDaemon();
    await daemon.runEnded('clerk', 3);
    assert.deepEqual(await runs(home, 'clerk'), [['a1', 'escalated'], ['a2', 'done'], ['a3', 'done']]);
    assert.ok(await home.exists('state/clerk/waiting/a1.json'), 'a1 is parked');
    assert.ok(await home.exists('state/clerk/waiting/a1.checkpoint.json'), 'with its checkpoint');
    assert.equal(await home.exists('agents/clerk/current-task.json'), false);

    const status = await home.cli(['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const row = (JSON.parse(status.stdout) as { agents: { agent: string; parked: number; status: string }[] }).agents.find((a) => a.agent === 'clerk');
    assert.equal(row?.parked, 1, '`agentd status` counts the parked task');
    assert.equal(row?.status, 'waiting_for_person', 'all that is left waits on a person');
    const table = await home.cli(['status']);
    assert.match(table.stdout, /PARKED/);

    const [item, ...more] = await items(home, 'clerk');
    assert.equal(more.length, 0);
    const resolved = await home.cli(['resolve', item!.id, '--answer', 'use 120']);
    assert.equal(resolved.code, 0, resolved.stderr);
    assert.equal((await daemon.runEnded('clerk', 4)).outcome, 'done');
    const resumed = (await starts(home, 'clerk')).at(-1);
    assert.equal((resumed?.task as { id?: string } | undefined)?.id, 'a1');
    assert.deepEqual(resumed?.resume.resolutions.map((r) => [r.item_id, r.answer]), [[item!.id, 'use 120']]);
    assert.deepEqual(resumed?.resume.checkpoint, UNSURE.state, 'it resumes from the state it escalated with');
    assert.equal((await home.readJson<{ output: unknown }>('state/clerk/done/a1.json')).output, 'answered');
    assert.deepEqual(await runs(home, 'clerk'), [['a1', 'escalated'], ['a2', 'done'], ['a3', 'done'], ['a1', 'done']]);
    assert.deepEqual(await home.list('state/clerk/waiting'), [], 'nothing is left parked');
  });

  it('park: an answered task goes back ahead of inbox tasks, also when it was answered while the daemon was down', async () => {
    await home.scriptedAgent('clerk');
    await threeTasks(home, 'clerk');
    daemon = home.startDaemon();
    await daemon.runEnded('clerk', 3);
    await daemon.stop();
    daemon = null;
    const [item] = await items(home, 'clerk');
    assert.equal((await home.cli(['resolve', item!.id, '--answer', 'use 112'])).code, 0);
    // Older and of higher priority than a1: by the inbox's order it would run first.
    await home.inbox('clerk', 'b1', { created_at: new Date(T0 - 10_000).toISOString(), priority: 9, goal: 'urgent', input: { trace_file: 'trace.jsonl', script: [{ result: 'b1 ok' }] } });

    daemon = home.startDaemon();
    await daemon.runEnded('clerk', 2);
    assert.deepEqual((await runs(home, 'clerk')).slice(3), [['a1', 'done'], ['b1', 'done']]);
  });

  it('block: the queue waits behind the task that waits on a person, then goes on in order', async () => {
    await home.scriptedAgent('ledger', { while_waiting: 'block' });
    await threeTasks(home, 'ledger');
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('ledger', 1)).outcome, 'escalated');
    // The claim after the run looks at the task again and finds it waiting: then the agent is idle.
    await daemon.waitForLog((l) => l.msg === 'task waits for an open outbox item' && l.agent === 'ledger', 'the task to block');
    assert.equal(daemon.logs.some(parkedLog('ledger')), false, 'not parked');
    assert.ok(await home.exists('agents/ledger/current-task.json'), 'a1 stays current');
    assert.deepEqual((await home.list('agents/ledger/inbox')).sort(), ['a2.json', 'a3.json'], 'a2 and a3 wait');
    assert.deepEqual(await runs(home, 'ledger'), [['a1', 'escalated']]);

    const [item] = await items(home, 'ledger');
    assert.equal((await home.cli(['resolve', item!.id, '--answer', 'use 120'])).code, 0);
    await daemon.runEnded('ledger', 4);
    assert.deepEqual(await runs(home, 'ledger'), [['a1', 'escalated'], ['a1', 'done'], ['a2', 'done'], ['a3', 'done']]);
  });

  it('`agentd run` stops at a task it parks and reports it waiting for a person; it does not go on with the inbox', async () => {
    await home.scriptedAgent('fore', { freshness: { task_max_age: '1h' } });
    await home.inbox('fore', 'later', { goal: 'not now', input: { script: [{ result: 'ran' }] } });
    await home.write('old-task.json', { id: 'old', created_at: new Date(Date.now() - 2 * 86_400_000).toISOString(), goal: 'stale errand', input: { script: [{ result: 'ran anyway' }] } });
    const ran = await home.cli(['run', 'fore', '--task', home.path('old-task.json'), '--json']);
    assert.notEqual(ran.code, 0);
    const summary = JSON.parse(ran.stdout) as { status: string; item_id: string | null };
    assert.equal(summary.status, 'waiting_for_person');
    assert.ok(await home.exists('state/fore/waiting/old.json'), 'the stale task is parked');
    assert.deepEqual(await home.list('agents/fore/inbox'), ['later.json'], 'the inbox task was not taken');

    assert.equal((await home.cli(['resolve', summary.item_id!, '--continue'])).code, 0);
    const again = await home.cli(['run', 'fore', '--json']);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { status: 'done', task_id: 'old', output: 'ran anyway' }, 'the answered task comes back before the inbox');
  });

  it('a definition with a bad while_waiting is rejected naming the field', async () => {
    await home.scriptedAgent('odd', { while_waiting: 'later' });
    const checked = await home.cli(['validate']);
    assert.notEqual(checked.code, 0);
    assert.match(checked.stdout + checked.stderr, /while_waiting/);
  });

  it('kill -9 between writing the parked copy and removing current-task.json: after restart nothing is lost or run twice', async () => {
    await home.scriptedAgent('clerk');
    await threeTasks(home, 'clerk');
    const crashing = home.startDaemon({ AGENTD_TEST_CRASH_AT: 'park-linked' });
    assert.equal((await crashing.exited).signal, 'SIGKILL');
    assert.ok(await home.exists('agents/clerk/current-task.json'), 'the crash left a1 current');
    assert.ok(await home.exists('state/clerk/waiting/a1.json'), 'and parked');

    daemon = home.startDaemon();
    await daemon.waitForLog(parkedLog('clerk'), 'a1 to be parked again');
    await daemon.runEnded('clerk', 2);
    assert.deepEqual(await runs(home, 'clerk'), [['a1', 'escalated'], ['a2', 'done'], ['a3', 'done']]);
    assert.equal(await home.exists('agents/clerk/current-task.json'), false);
    assert.deepEqual((await home.list('state/clerk/waiting')).sort(), ['a1.checkpoint.json', 'a1.json']);
    const [item, ...more] = await items(home, 'clerk');
    assert.equal(more.length, 0, 'one question, not two');

    await daemon.stop();
    daemon = null;
    assert.equal((await home.cli(['resolve', item!.id, '--answer', 'use 120'])).code, 0);
    // kill -9 on the way back too: between writing current-task.json and removing the parked copy.
    const crashingBack = home.startDaemon({ AGENTD_TEST_CRASH_AT: 'unpark-linked' });
    assert.equal((await crashingBack.exited).signal, 'SIGKILL');
    assert.ok(await home.exists('agents/clerk/current-task.json'));
    assert.ok(await home.exists('state/clerk/waiting/a1.json'));

    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('clerk', 1)).outcome, 'done');
    const resumed = (await starts(home, 'clerk')).at(-1);
    assert.deepEqual(resumed?.resume.checkpoint, UNSURE.state, 'the checkpoint survived both moves');
    assert.deepEqual(await runs(home, 'clerk'), [['a1', 'escalated'], ['a2', 'done'], ['a3', 'done'], ['a1', 'done']]);
    assert.deepEqual(await home.list('state/clerk/waiting'), []);
    assert.equal(await home.exists('agents/clerk/current-task.json'), false);
    assert.deepEqual(await home.list('agents/clerk/inbox'), []);
  });
});
