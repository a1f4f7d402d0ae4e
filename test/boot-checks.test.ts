import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestHome, type DaemonProcess } from './helpers/home.js';
import { useHome } from './helpers/hooks.js';
import { FAST_CONFIG } from './helpers/support.js';

/**
 * The boot sequence of a run (DESIGN.md section 4), end to end: the real
 * daemon, real files, the scripted agent, and the real `agentd resolve`.
 */

const TWO_DAYS_AGO = () => new Date(Date.now() - 2 * 86_400_000).toISOString();

interface Resolution {
  item_id: string;
  kind: string;
  decision: string;
  answer?: string;
}
interface TraceMessage {
  type: string;
  run_id?: string;
  context?: Record<string, unknown> | null;
  resume?: { checkpoint: unknown; handoff: unknown; resolutions: Resolution[] };
}
interface OutboxItem {
  id: string;
  kind: string;
  task_id: string | null;
  run_id: string | null;
  reason: string;
  question?: string;
  status: string;
  resolution?: { decision: string; answer?: string };
  delivered_at?: string;
}

/** Every message the scripted agent of `agent` received, across its runs (input.trace_file = trace.jsonl). */
async function starts(home: TestHome, agent: string): Promise<TraceMessage[]> {
  return (await home.readLines<TraceMessage>(`agents/${agent}/trace.jsonl`)).filter((m) => m.type === 'start');
}

async function outboxItems(home: TestHome, agent: string): Promise<OutboxItem[]> {
  if (!(await home.exists(`outbox/${agent}/outbox.json`))) return [];
  return (await home.readJson<{ items: OutboxItem[] }>(`outbox/${agent}/outbox.json`)).items;
}

const escalatedBeforeRun = (agent: string, kind: string) => (l: { msg: string; agent?: unknown; kind?: unknown }) =>
  l.msg === 'task escalated before it ran' && l.agent === agent && l.kind === kind;

describe('boot checks: a stale task waits for a person', () => {
  const home = useHome(FAST_CONFIG);
  let daemon: DaemonProcess | null = null;

  it('by default a task older than 4 hours is stale and waits for a person; one younger than that runs', async () => {
    await home.scriptedAgent('fresh');
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
    await home.inbox('fresh', 'five-hours', { goal: 'an errand from this morning', created_at: hoursAgo(5), input: { script: [{ result: 'ran' }] } });
    await home.scriptedAgent('recent');
    await home.inbox('recent', 'three-hours', { goal: 'an errand from an hour or three ago', created_at: hoursAgo(3), input: { script: [{ result: 'ran' }] } });
    daemon = home.startDaemon();
    await daemon.waitForLog(escalatedBeforeRun('fresh', 'stale_task'), 'the stale_task escalation under the default task_max_age');
    assert.match((await outboxItems(home, 'fresh'))[0]?.reason ?? '', /older than task_max_age \(4h\)/);
    assert.equal((await daemon.runEnded('recent')).outcome, 'done');
  });

  it('a task older than task_max_age gets a stale_task item and does not run; resolve --continue runs it within a second', async () => {
    await home.scriptedAgent('stale', { freshness: { task_max_age: '1h' } });
    await home.inbox('stale', 'old', { goal: 'an old errand', created_at: TWO_DAYS_AGO(), input: { trace_file: 'trace.jsonl', script: [{ result: 'ran anyway' }] } });
    daemon = home.startDaemon();
    await daemon.waitForLog(escalatedBeforeRun('stale', 'stale_task'), 'the stale_task escalation');

    const [item, ...others] = await outboxItems(home, 'stale');
    assert.equal(others.length, 0, 'exactly one outbox item');
    assert.equal(item?.kind, 'stale_task');
    assert.equal(item?.task_id, 'old');
    assert.equal(item?.status, 'open');
    assert.equal(item?.run_id, null, 'no run was started for it');
    assert.match(item?.reason ?? '', /older than task_max_age/);
    assert.equal(await home.exists('agents/stale/trace.jsonl'), false, 'the agent process never started');
    assert.deepEqual(await home.readLines('state/stale/history.jsonl'), [], 'no run is recorded');
    // `while_waiting: park` (the default): the task waits in state/stale/waiting/, out of the queue.
    await daemon.waitForLog((l) => l.msg === 'task parked while it waits on a person' && l.agent === 'stale', 'the task to be parked');
    assert.equal((await home.readJson<{ id: string }>('state/stale/waiting/old.json')).id, 'old', 'the task waits parked');

    const resolved = await home.cli(['resolve', item!.id, '--continue']);
    assert.equal(resolved.code, 0, resolved.stderr);
    // The sweep comes every 60 s (the default) and waitForLog gives up after 20 s: only the watcher's event starts this run in time.
    await daemon.waitForLog((l) => l.msg === 'run started' && l.agent === 'stale', 'the run after --continue');
    const ended = await daemon.runEnded('stale');
    assert.equal(ended.outcome, 'done');

    const done = await home.readJson<{ status: string; output: unknown }>('state/stale/done/old.json');
    assert.equal(done.status, 'done');
    assert.equal(done.output, 'ran anyway');
    const [start] = await starts(home, 'stale');
    assert.deepEqual(
      start?.resume?.resolutions.map((r) => [r.item_id, r.kind, r.decision]),
      [[item!.id, 'stale_task', 'continue']],
      'the agent is told a person let the stale task run',
    );
  });

  it('resolve --cancel files a stale task in done/ with status cancelled, without running it', async () => {
    await home.scriptedAgent('stale', { freshness: { task_max_age: '1h' } });
    await home.inbox('stale', 'old', { goal: 'an old errand', created_at: TWO_DAYS_AGO(), input: { trace_file: 'trace.jsonl', script: [{ result: 'ran' }] } });
    daemon = home.startDaemon();
    await daemon.waitForLog(escalatedBeforeRun('stale', 'stale_task'), 'the stale_task escalation');
    const [item] = await outboxItems(home, 'stale');

    const resolved = await home.cli(['resolve', item!.id, '--cancel']);
    assert.equal(resolved.code, 0, resolved.stderr);
    await daemon.waitForLog((l) => l.msg === 'task cancelled by a person' && l.task_id === 'old', 'the cancellation');

    const done = await home.readJson<{ status: string; task: { id: string; goal: string } }>('state/stale/done/old.json');
    assert.equal(done.status, 'cancelled');
    assert.equal(done.task.id, 'old');
    assert.equal(done.task.goal, 'an old errand');
    assert.equal(await home.exists('agents/stale/current-task.json'), false, 'the task left current-task.json');
    assert.equal(await home.exists('agents/stale/trace.jsonl'), false, 'the agent never ran');
    const [after] = await outboxItems(home, 'stale');
    assert.equal(after?.status, 'resolved');
    assert.equal(after?.resolution?.decision, 'cancel');
  });
});

describe('boot checks: a stale context snapshot', () => {
  const home = useHome(FAST_CONFIG);
  let daemon: DaemonProcess | null = null;

  const task = { goal: 'use the context', input: { trace_file: 'trace.jsonl', script: [{ result: 'ok' }] } };

  it('a context-snapshot.json older than context_max_age is refreshed by context_refresh, then the task runs with the new context', async () => {
    await home.scriptedAgent('ctx', { freshness: { context_max_age: '1h', context_refresh: ['node', 'refresh.mjs'] } });
    await home.write('agents/ctx/context-snapshot.json', { source: 'old', updated_at: TWO_DAYS_AGO() });
    await home.write(
      'agents/ctx/refresh.mjs',
      `import fs from 'node:fs';\nfs.writeFileSync('context-snapshot.json', JSON.stringify({ source: 'refreshed', updated_at: new Date().toISOString() }));\n`,
    );
    await home.inbox('ctx', 't1', task);
    daemon = home.startDaemon();
    const ended = await daemon.runEnded('ctx');
    assert.equal(ended.outcome, 'done');

    const [start] = await starts(home, 'ctx');
    assert.equal(start?.context?.source, 'refreshed', 'the agent starts with the refreshed snapshot');
    assert.equal((await home.readJson<{ source: string }>('agents/ctx/context-snapshot.json')).source, 'refreshed');
    assert.deepEqual(await outboxItems(home, 'ctx'), [], 'nothing was escalated');
  });

  it('a stale context without context_refresh gets a stale_context item; resolve --continue runs it with that context', async () => {
    await home.scriptedAgent('ctx', { freshness: { context_max_age: '1h' } });
    await home.write('agents/ctx/context-snapshot.json', { source: 'old', updated_at: TWO_DAYS_AGO() });
    await home.inbox('ctx', 't1', task);
    daemon = home.startDaemon();
    await daemon.waitForLog(escalatedBeforeRun('ctx', 'stale_context'), 'the stale_context escalation');

    const [item, ...others] = await outboxItems(home, 'ctx');
    assert.equal(others.length, 0);
    assert.equal(item?.kind, 'stale_context');
    assert.equal(item?.task_id, 't1');
    assert.match(item?.reason ?? '', /older than context_max_age/);
    assert.equal(await home.exists('agents/ctx/trace.jsonl'), false, 'the agent never started');

    const resolved = await home.cli(['resolve', item!.id, '--continue']);
    assert.equal(resolved.code, 0, resolved.stderr);
    const ended = await daemon.runEnded('ctx');
    assert.equal(ended.outcome, 'done');
    const [start] = await starts(home, 'ctx');
    assert.equal(start?.context?.source, 'old', 'a person accepted the old context');
  });

  it('a context_refresh that fails leaves the context stale: stale_context item, no run', async () => {
    await home.scriptedAgent('ctx', { freshness: { context_max_age: '1h', context_refresh: ['node', 'refresh.mjs'] } });
    await home.write('agents/ctx/context-snapshot.json', { source: 'old', updated_at: TWO_DAYS_AGO() });
    await home.write('agents/ctx/refresh.mjs', `console.error('the source is down');\nprocess.exit(3);\n`);
    await home.inbox('ctx', 't1', task);
    daemon = home.startDaemon();
    await daemon.waitForLog(escalatedBeforeRun('ctx', 'stale_context'), 'the stale_context escalation');

    assert.ok(daemon.logs.some((l) => l.msg === 'context_refresh failed' && l.agent === 'ctx'), 'the failed refresh is logged');
    const [item] = await outboxItems(home, 'ctx');
    assert.equal(item?.kind, 'stale_context');
    assert.equal(item?.status, 'open');
    assert.equal((await home.readJson<{ source: string }>('agents/ctx/context-snapshot.json')).source, 'old');
    assert.equal(await home.exists('agents/ctx/trace.jsonl'), false, 'the agent never started');
  });
});

describe('boot checks: the outbox and the checkpoint', () => {
  const home = useHome(FAST_CONFIG);
  let daemon: DaemonProcess | null = null;

  it('an open outbox item for the task holds it back until a person resolves it', async () => {
    await home.scriptedAgent('held');
    await home.write('agents/held/current-task.json', {
      id: 'h1',
      created_at: new Date().toISOString(),
      goal: 'wait for a person',
      input: { trace_file: 'trace.jsonl', script: [{ result: 'released' }] },
    });
    await home.write('outbox/held/outbox.json', {
      v: 1,
      items: [{ id: 'held:0001', kind: 'uncertain', agent: 'held', task_id: 'h1', run_id: null, created_at: new Date().toISOString(), reason: 'a person must look first', status: 'open' }],
    });
    daemon = home.startDaemon();
    // `while_waiting: park` (the default): held back means parked in state/held/waiting/ until the answer.
    const parked = await daemon.waitForLog((l) => l.msg === 'task parked while it waits on a person' && l.agent === 'held', 'the task to be held back');
    assert.equal(parked.task_id, 'h1');
    assert.ok(await home.exists('state/held/waiting/h1.json'));
    assert.equal(await home.exists('agents/held/trace.jsonl'), false, 'the agent did not start');
    assert.deepEqual(await home.readLines('state/held/history.jsonl'), []);

    const resolved = await home.cli(['resolve', 'held:0001', '--continue']);
    assert.equal(resolved.code, 0, resolved.stderr);
    const ended = await daemon.runEnded('held');
    assert.equal(ended.outcome, 'done');
    assert.equal((await home.readJson<{ output: unknown }>('state/held/done/h1.json')).output, 'released');
  });

  it('resolved items are delivered in resume.resolutions exactly once', async () => {
    await home.scriptedAgent('once');
    await home.inbox('once', 'q1', {
      goal: 'ask, then carry on',
      input: {
        trace_file: 'trace.jsonl',
        // Run 1 asks; run 2 (with the answer) checkpoints and crashes; run 3 resumes from the checkpoint.
        script: [{ uncertain: { reason: 'two currencies', question: 'EUR or USD?', blockers: ['currency'] } }],
        after_resolution: [{ checkpoint: { currency: 'EUR' } }, { exit: 3 }],
        after_checkpoint: [{ result: 'finished' }],
      },
    });
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('once', 1)).outcome, 'escalated');
    const [item] = await outboxItems(home, 'once');
    assert.equal(item?.kind, 'uncertain');

    const resolved = await home.cli(['resolve', item!.id, '--continue', '--answer', 'EUR']);
    assert.equal(resolved.code, 0, resolved.stderr);
    assert.equal((await daemon.runEnded('once', 2)).outcome, 'failed');
    assert.equal((await daemon.runEnded('once', 3)).outcome, 'done');

    const [first, second, third, ...more] = await starts(home, 'once');
    assert.equal(more.length, 0, 'three runs');
    assert.deepEqual(first?.resume?.resolutions, []);
    assert.equal(second?.resume?.resolutions.length, 1);
    assert.equal(second?.resume?.resolutions[0]?.item_id, item!.id);
    assert.equal(second?.resume?.resolutions[0]?.answer, 'EUR');
    assert.deepEqual(third?.resume?.resolutions, [], 'a resolution handed over once is not handed over again');
    assert.deepEqual(third?.resume?.checkpoint, { currency: 'EUR' });
    const [after] = await outboxItems(home, 'once');
    assert.ok(after?.delivered_at && !Number.isNaN(Date.parse(after.delivered_at)), 'the item records when it was delivered');
  });

  it('a run that checkpointed and then crashed resumes with resume.checkpoint = its last checkpointed state and context', async () => {
    await home.scriptedAgent('resumer');
    await home.inbox('resumer', 'c1', {
      goal: 'page through',
      input: {
        trace_file: 'trace.jsonl',
        script: [{ checkpoint: { page: 1 } }, { checkpoint: { page: 2 }, context: { seen: ['p1', 'p2'] } }, { exit: 1 }],
        after_checkpoint: [{ result: 'resumed' }],
      },
    });
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('resumer', 1)).outcome, 'failed');
    assert.equal((await daemon.runEnded('resumer', 2)).outcome, 'done');

    const [first, second] = await starts(home, 'resumer');
    assert.equal(first?.resume?.checkpoint, null, 'the first run starts fresh');
    assert.deepEqual(second?.resume?.checkpoint, { page: 2 }, 'the last checkpointed state, not an earlier one');
    assert.deepEqual(second?.context?.seen, ['p1', 'p2'], 'the checkpointed context comes back as the start context');
    const snapshot = await home.readJson<{ seen: string[]; updated_at: string }>('agents/resumer/context-snapshot.json');
    assert.deepEqual(snapshot.seen, ['p1', 'p2']);
    assert.ok(!Number.isNaN(Date.parse(snapshot.updated_at)), 'the snapshot is stamped with updated_at');
    const history = await home.readLines<{ status: string; trigger: string }>('state/resumer/history.jsonl');
    assert.deepEqual(history.map((h) => [h.status, h.trigger]), [['failed', 'inbox'], ['done', 'resume']]);
  });
});
