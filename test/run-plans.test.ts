import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentDefinition } from '../src/config/types.js';
import { newCheckpoint, type TaskCheckpoint } from '../src/store/checkpoint.js';
import type { OutboxItem } from '../src/store/outbox.js';
import type { Task } from '../src/store/tasks.js';
import type { RunOutcome, RunReport } from '../src/run/run-types.js';
import { auditOfRaised, raise, type Effect } from '../src/core/effects.js';
import { backoffUntil, planAdmission, planContext, planDelivery, planInterruptedRun, runTrigger, startCheckpoint } from '../src/core/boot-plan.js';
import { planOutcome, type OutcomeFacts } from '../src/core/outcome-plan.js';

/** The claim's planners (src/core): plain facts in, decisions and effects out; no file is touched. */

const NOW = Date.parse('2026-03-01T12:00:00Z');
const ISO = new Date(NOW).toISOString();

const agent = {
  name: 'a',
  version: '1.0',
  hash: 'h1',
  maxAttempts: 3,
  retry: { baseDelayMs: 1000, maxDelayMs: 60_000 },
  freshness: { taskMaxAgeMs: 3_600_000, contextMaxAgeMs: 600_000, contextRefresh: null },
  budget: { steps: 10, toolCalls: 5, runtimeMs: 60_000, tokens: 1000, costUsd: 1, dailyCostUsd: 5 },
  whileWaiting: 'block',
} as unknown as AgentDefinition;

const task: Task = { id: 't1', goal: 'g', created_at: '2026-03-01T11:30:00Z' } as Task;
const zero = { steps: 0, toolCalls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };

function checkpoint(over: Partial<TaskCheckpoint> = {}): TaskCheckpoint {
  return { ...newCheckpoint(task.id), ...over };
}

function item(over: Partial<OutboxItem>): OutboxItem {
  return { id: 'a-1', kind: 'uncertain', agent: 'a', task_id: task.id, run_id: null, created_at: ISO, reason: 'why', status: 'open', ...over };
}

const types = (effects: Effect[]) => effects.map((e) => e.type);

describe('boot plan (core/boot-plan.ts)', () => {
  it('a task that ran before resumes, unless a person runs it by hand', () => {
    assert.equal(runTrigger('inbox', undefined, checkpoint()), 'inbox');
    assert.equal(runTrigger('inbox', undefined, checkpoint({ runs: ['r1'] })), 'resume');
    assert.equal(runTrigger('cli', 'cli', checkpoint({ runs: ['r1'] })), 'cli');
  });

  it('a failed task backs off until next_attempt_at, then may run', () => {
    const later = new Date(NOW + 5000).toISOString();
    assert.equal(backoffUntil(checkpoint({ next_attempt_at: later }), NOW), NOW + 5000);
    assert.equal(backoffUntil(checkpoint({ next_attempt_at: later }), NOW + 5000), null);
    assert.equal(backoffUntil(checkpoint(), NOW), null);
  });

  it('an outbox being written waits for quiet; a broken one blocks with an error log line', () => {
    const facts = { agent, task, checkpoint: checkpoint(), now: NOW };
    assert.deepEqual(planAdmission({ ...facts, outbox: { kind: 'unreadable', reason: 'bad', mtimeMs: NOW - 100, quietMs: 1000 } }), { kind: 'wait', untilMs: NOW + 900 });
    const broken = planAdmission({ ...facts, outbox: { kind: 'unreadable', reason: 'bad', mtimeMs: NOW - 5000, quietMs: 1000 } });
    assert.deepEqual(broken, { kind: 'broken', reason: 'bad', effects: [{ type: 'log', line: { level: 'error', msg: 'outbox.json is broken; the task waits until it is fixed', fields: { problem: 'bad' } } }] });
  });

  it('an open item holds the task; a cancel delivers, completes as cancelled, audits and logs, in that order', () => {
    const facts = { agent, task, checkpoint: checkpoint({ runs: ['r1'] }), now: NOW };
    const open = item({ id: 'a-open' });
    assert.deepEqual(planAdmission({ ...facts, outbox: { kind: 'ok', items: [open] } }), { kind: 'held', item: open });
    const cancel = item({ id: 'a-c', status: 'resolved', resolution: { decision: 'cancel', by: 'ann' } });
    const plan = planAdmission({ ...facts, outbox: { kind: 'ok', items: [open, cancel] } });
    assert.equal(plan.kind, 'cancel');
    const effects = (plan as { effects: Effect[] }).effects;
    assert.deepEqual(types(effects), ['deliver', 'complete', 'audit', 'log']);
    assert.deepEqual(effects[1], { type: 'complete', record: { v: 1, task, status: 'cancelled', output: { cancelled_by: 'ann', item_id: 'a-c', reason: 'why' }, finished_at: ISO, runs: ['r1'] } });
    assert.deepEqual(effects[2], { type: 'audit', entry: { event: 'cancel', agent: 'a', task_id: 't1', by: 'ann', details: { item_id: 'a-c' } } });
  });

  it('a stale task is escalated before its first run only, and not once a person let it run', () => {
    const old = { ...task, created_at: '2026-03-01T10:00:00Z' };
    const facts = { agent, task: old, now: NOW, outbox: { kind: 'ok' as const, items: [] } };
    const plan = planAdmission({ ...facts, checkpoint: checkpoint() });
    assert.equal(plan.kind, 'escalate');
    const raised = (plan as { raise: ReturnType<typeof raise> }).raise;
    assert.equal(raised.item.kind, 'stale_task');
    assert.match(raised.item.reason, /older than task_max_age \(1h\)/);
    assert.deepEqual(auditOfRaised(raised, 'a-9'), { event: 'escalation', agent: 'a', task_id: 't1', details: { item_id: 'a-9', kind: 'stale_task', reason: raised.item.reason } });
    assert.equal(planAdmission({ ...facts, checkpoint: checkpoint({ runs: ['r1'] }) }).kind, 'go');
    const accepted = item({ kind: 'stale_task', status: 'resolved', resolution: { decision: 'continue' }, delivered_at: ISO });
    assert.equal(planAdmission({ ...facts, checkpoint: checkpoint(), outbox: { kind: 'ok', items: [accepted] } }).kind, 'go');
  });

  it('a stale context is refreshed once when the definition says how, then escalated', () => {
    const stale = { kind: 'ok' as const, context: {}, updatedAt: '2026-03-01T11:00:00Z' };
    const base = { agent, task, context: stale, accepted: false, refreshed: false, now: NOW };
    assert.equal(planContext(base).kind, 'escalate');
    const refreshing = { ...agent, freshness: { ...agent.freshness, contextRefresh: ['refresh'] } } as AgentDefinition;
    assert.equal(planContext({ ...base, agent: refreshing }).kind, 'refresh');
    assert.equal(planContext({ ...base, agent: refreshing, refreshed: true }).kind, 'escalate');
    assert.equal(planContext({ ...base, accepted: true }).kind, 'go');
    assert.equal(planContext({ ...base, context: { kind: 'none' } }).kind, 'go');
    const broken = planContext({ ...base, context: { kind: 'broken', problem: 'context-snapshot.json is not valid JSON' } });
    assert.equal(broken.kind === 'escalate' && broken.raise.item.reason, 'context-snapshot.json is not valid JSON');
  });

  it('a run starts active, out of backoff, under the current definition, with the spend floor', () => {
    const active = { run_id: 'r2', trigger: 'resume' as const, started_at: ISO, pid: null, host: 'h', daemon_pid: 1 };
    const next = startCheckpoint(checkpoint({ runs: ['r1'], next_attempt_at: ISO }), agent, active, { ...zero, steps: 2, costUsd: 0.5 });
    assert.deepEqual(next.runs, ['r1', 'r2']);
    assert.equal(next.next_attempt_at, null);
    assert.equal(next.definition_hash, 'h1');
    assert.deepEqual(next.spend, { steps: 2, tool_calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0.5 });
  });

  it('the start delivers the resolutions handed over and audits the claim and each of them', () => {
    const approved = item({ id: 'a-ap', kind: 'approval', status: 'resolved', resolution: { decision: 'approve', by: 'bo' } });
    const effects = planDelivery({ agent: 'a', definitionHash: 'h1', taskId: 't1', runId: 'r2', trigger: 'resume', delivered: [approved] }, 2, NOW);
    assert.deepEqual(effects, [
      { type: 'deliver', itemIds: ['a-ap'], at: ISO },
      { type: 'audit', entry: { event: 'claim', agent: 'a', task_id: 't1', run_id: 'r2', details: { trigger: 'resume', attempt: 2, definition_hash: 'h1' } } },
      { type: 'audit', entry: { event: 'approval', agent: 'a', task_id: 't1', run_id: 'r2', by: 'bo', details: { item_id: 'a-ap', kind: 'approval', decision: 'approve' } } },
    ]);
  });

  it('a run the daemon died in is closed from the journal: its spend, its wall time to its last record', () => {
    const active = { run_id: 'r1', trigger: 'inbox' as const, started_at: '2026-03-01T11:00:00Z', pid: 5, host: 'h', daemon_pid: 1 };
    const journal = { spendByRun: new Map([['r1', { ...zero, steps: 3, costUsd: 0.2 }]]), tail: [{ v: 1 as const, kind: 'supersede' as const, run_id: 'r1', from_seq: 1, at: '2026-03-01T11:00:30Z' }] };
    const plan = planInterruptedRun(checkpoint({ runs: ['r1'], active_run: active, runtime_ms: 1000 }), journal, agent, task, NOW);
    assert.equal(plan.checkpoint.active_run, null);
    assert.equal(plan.checkpoint.runtime_ms, 31_000);
    assert.equal(plan.costUsd, 0.2);
    assert.equal(plan.history.status, 'interrupted');
    assert.equal(plan.history.steps, 3);
    assert.equal(plan.history.error_category, 'crash');
  });
});

describe('outcome plan (core/outcome-plan.ts)', () => {
  const active = { run_id: 'r1', trigger: 'inbox' as const, started_at: ISO, pid: 7, host: 'h', daemon_pid: 1 };
  function facts(outcome: RunOutcome, over: Partial<OutcomeFacts> = {}): OutcomeFacts {
    const report: RunReport = { outcome, spend: { ...zero, steps: 1, costUsd: 0.1 }, models: ['m'], degraded: false, runtimeMs: 2000, seq: 4, modelLatencyMs: [], journal: { spend: { ...zero, steps: 3, costUsd: 0.3 }, tail: [] } };
    return {
      agent,
      task,
      checkpoint: checkpoint({ runs: ['r1'], active_run: active, runtime_ms: 1000 }),
      runId: 'r1',
      trigger: 'inbox',
      startedAt: NOW - 2000,
      report,
      limits: agent.budget,
      definitionChanged: false,
      spentBefore: { ...zero, steps: 2, costUsd: 0.2 },
      now: NOW,
      spentTodayUsd: null,
      outageReadyAt: null,
      random: () => 0.5,
      ...over,
    };
  }

  it('done: the task completes, then the audit line; the checkpoint closes the run with the spend floor', () => {
    const plan = planOutcome(facts({ kind: 'done', output: { ok: 1 } }));
    assert.equal(plan.status, 'done');
    assert.deepEqual(types(plan.effects), ['complete', 'audit']);
    assert.equal(plan.checkpoint.active_run, null);
    assert.equal(plan.checkpoint.runtime_ms, 3000);
    assert.deepEqual(plan.checkpoint.spend, { steps: 3, tool_calls: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0.30000000000000004 });
    assert.deepEqual(plan.effects[1], { type: 'audit', entry: { event: 'done', agent: 'a', task_id: 't1', run_id: 'r1', details: { runs: 1 } } });
    assert.equal(plan.history.status, 'done');
    assert.equal(plan.history.started_at, new Date(NOW - 2000).toISOString());
  });

  it('uncertain: the state is checkpointed, then an item with its audit and log line', () => {
    const plan = planOutcome(facts({ kind: 'escalated', message: { type: 'uncertain', reason: 'unsure', question: 'which?', state: { at: 2 } } }));
    assert.equal(plan.status, 'escalated');
    assert.deepEqual(types(plan.effects), ['checkpoint', 'raise']);
    assert.deepEqual(plan.checkpoint.state, { at: 2 });
    assert.equal(plan.checkpoint.checkpoint_seq, 4);
    const raised = plan.effects[1] as ReturnType<typeof raise>;
    assert.deepEqual(raised.item, { kind: 'uncertain', agent: 'a', task_id: 't1', run_id: 'r1', created_at: ISO, reason: 'unsure', question: 'which?', details: { state: { at: 2 } } });
    assert.deepEqual(raised.log, { level: 'warn', msg: 'escalated to the outbox', fields: { task_id: 't1', run_id: 'r1', kind: 'uncertain' } });
  });

  it('a budget stop: checkpoint, handoff from the run\'s journal totals, then the limit item', () => {
    const plan = planOutcome(facts({ kind: 'limit', reason: 'max_steps', handoff: { type: 'handoff', summary: 'half way', next_steps: ['x'] } }));
    assert.equal(plan.status, 'limit');
    assert.equal(plan.error?.category, 'budget');
    assert.deepEqual(types(plan.effects), ['checkpoint', 'handoff', 'raise']);
    const handoff = (plan.effects[1] as { handoff: Record<string, unknown> }).handoff;
    assert.equal(handoff.summary, 'half way');
    // The floor (spent before + this run) is 3 steps, $0.3; the journal shows the same: within a float's last bits, the journal counts.
    assert.deepEqual(handoff.used, { steps: 3, tool_calls: 0, tokens: 0, cost_usd: 0.3, runtime_ms: 3000 });
    assert.equal((plan.effects[2] as ReturnType<typeof raise>).item.kind, 'limit');
  });

  it('a journal that lost records is floored by the checkpoint in the handoff', () => {
    const base = facts({ kind: 'limit', reason: 'max_cost', handoff: null });
    const plan = planOutcome({ ...base, report: { ...base.report, journal: { spend: { ...zero, steps: 1 }, tail: [] } } });
    const handoff = (plan.effects[1] as unknown as { handoff: { used: { steps: number } } }).handoff;
    assert.equal(handoff.used.steps, 3);
  });

  it('a stop at the daily cap shows today\'s spend and the cap', () => {
    const plan = planOutcome(facts({ kind: 'limit', reason: 'daily_cost', handoff: null }, { spentTodayUsd: 4.9 }));
    const handoff = (plan.effects[1] as unknown as { handoff: { used: { daily_cost_usd?: number }; limits: { daily_cost_usd?: number } } }).handoff;
    assert.equal(handoff.used.daily_cost_usd, 4.9);
    assert.equal(handoff.limits.daily_cost_usd, 5);
  });

  it('a shutdown writes the checkpoint and the handoff, and no item', () => {
    const plan = planOutcome(facts({ kind: 'interrupted', reason: 'shutdown', handoff: null }));
    assert.equal(plan.status, 'interrupted');
    assert.deepEqual(types(plan.effects), ['checkpoint', 'handoff']);
  });

  it('a retryable failure backs off; the last allowed attempt dead-letters, then the audit line', () => {
    const retry = planOutcome(facts({ kind: 'failed', category: 'crash', message: 'boom' }));
    assert.equal(retry.status, 'failed');
    assert.deepEqual(types(retry.effects), ['checkpoint']);
    assert.equal(retry.checkpoint.attempts, 1);
    assert.ok(Date.parse(retry.checkpoint.next_attempt_at!) > NOW);
    const last = planOutcome(facts({ kind: 'failed', category: 'crash', message: 'boom', stderrTail: ['x'] }, { checkpoint: checkpoint({ runs: ['r1'], attempts: 2, active_run: active }) }));
    assert.equal(last.status, 'dead_letter');
    assert.deepEqual(types(last.effects), ['dead_letter', 'audit']);
    const record = (last.effects[0] as { record: { attempts: number; error: { stderr_tail?: string[] } } }).record;
    assert.equal(record.attempts, 3);
    assert.deepEqual(record.error.stderr_tail, ['x']);
  });

  it('a failure a person must fix dead-letters at once', () => {
    const plan = planOutcome(facts({ kind: 'failed', category: 'bad_input', message: 'bad' }));
    assert.equal(plan.status, 'dead_letter');
    assert.equal(plan.checkpoint.attempts, 1);
  });

  it('an outage counts no attempt and waits for the circuit', () => {
    const base = facts({ kind: 'failed', category: 'provider_error', message: 'down' }, { outageReadyAt: NOW + 30_000 });
    const plan = planOutcome({ ...base, report: { ...base.report, outageModel: 'm' } });
    assert.equal(plan.status, 'failed');
    assert.equal(plan.checkpoint.attempts, 0);
    assert.equal(plan.checkpoint.next_attempt_at, new Date(NOW + 30_000).toISOString());
    assert.deepEqual(types(plan.effects), ['checkpoint', 'log']);
  });

  it('an approval names the exact call and an expired earlier approval', () => {
    const plan = planOutcome(facts({ kind: 'approval', seq: 3, tool: 'send', args: { to: 'x' }, callHash: 'c', cause: 'policy', expired: { decision: 'approve', at: NOW - 10_000, by: 'ann' } }));
    const raised = plan.effects[1] as ReturnType<typeof raise>;
    assert.equal(raised.item.kind, 'approval');
    assert.match(raised.item.reason, /needs approval before it runs; the earlier approval .* is older than approval_ttl/);
    assert.deepEqual((raised.item.details as { expired_approval: unknown }).expired_approval, { at: new Date(NOW - 10_000).toISOString(), by: 'ann' });
  });

  it('a critical task\'s unavailable provider is escalated with its error', () => {
    const plan = planOutcome(facts({ kind: 'provider_unavailable', model: 'm', message: 'down' }));
    assert.equal(plan.status, 'escalated');
    assert.equal(plan.error?.code, 'provider_unavailable');
    assert.equal(plan.history.error_category, 'provider_error');
  });
});
