import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, it } from 'node:test';
import { completion, TestHome, type DaemonProcess } from './helpers/home.js';
import { useHome, useStandIn } from './helpers/hooks.js';
import { FAST_CONFIG } from './helpers/support.js';

/**
 * Budgets end to end (DESIGN.md section 5): the real daemon stops an agent
 * that reaches a budget, refuses the call past it, collects a handoff and
 * files a `limit` item; a person's `--extend` lets the task go on. Priced
 * models go to a stand-in OpenAI-compatible provider on 127.0.0.1.
 */

/** Every priced call: 40 prompt tokens; 20 output tokens, or fewer when max_tokens says so. */
const PROMPT_TOKENS = 40;
const OUTPUT_TOKENS = 20;
/** $1000 and $2000 per million tokens: one full call costs 40 * 0.001 + 20 * 0.002 = $0.08. */
const PRICED_CONFIG = (url: string) => `${FAST_CONFIG}
providers:
  stand:
    kind: openai
    base_url: ${url}
models:
  stand/m1: { input_usd_per_mtok: 1000, output_usd_per_mtok: 2000 }
`;

interface TraceMessage {
  type: string;
  id?: string;
  code?: string;
  reason?: string;
  replayed?: boolean;
  result?: unknown;
  used?: Record<string, number>;
  limits?: Record<string, number>;
  resume?: { resolutions: unknown[] };
}
interface Handoff {
  task_id: string;
  reason: string;
  summary: string | null;
  next_steps: string[];
  used: { steps: number; tool_calls: number; tokens: number; cost_usd: number; runtime_ms: number };
  limits: { steps: number; tool_calls: number; tokens: number; cost_usd: number; runtime_ms: number };
  journal_tail: { kind: string; seq?: number; phase?: string }[];
}
interface OutboxItem {
  id: string;
  kind: string;
  task_id: string;
  run_id: string;
  reason: string;
  status: string;
  details?: { used: Record<string, number>; limits: Record<string, number> };
}
interface HistoryLine {
  run_id: string;
  status: string;
  steps: number;
  tool_calls: number;
  cost_usd: number;
  tokens: { input: number; output: number };
  error_category: string | null;
}

const trace = (home: TestHome, agent: string) => home.readLines<TraceMessage>(`agents/${agent}/trace.jsonl`);

/**
 * The run of `agent` stopped on `reason`: the agent got a `stop` with it, the
 * handoff it sent is in outbox/<agent>/handoff.json, and an open `limit` item
 * waits for a person. Returns both for further checks.
 */
async function assertStoppedBy(home: TestHome, agent: string, taskId: string, reason: string): Promise<{ handoff: Handoff; item: OutboxItem }> {
  const messages = await trace(home, agent);
  const stops = messages.filter((m) => m.type === 'stop');
  assert.deepEqual(stops.map((m) => m.reason), [reason], `the agent got one stop with reason ${reason}`);
  const handoff = await home.readJson<Handoff>(`outbox/${agent}/handoff.json`);
  assert.equal(handoff.task_id, taskId);
  assert.equal(handoff.reason, reason);
  assert.equal(handoff.summary, `stopped: ${reason}`, "the agent's own summary");
  assert.deepEqual(handoff.next_steps, ['resume from the checkpoint']);
  const { items } = await home.readJson<{ items: OutboxItem[] }>(`outbox/${agent}/outbox.json`);
  const limits = items.filter((i) => i.kind === 'limit');
  assert.equal(limits.length, 1, 'one limit item');
  const item = limits[0]!;
  assert.equal(item.task_id, taskId);
  assert.equal(item.status, 'open');
  assert.match(item.reason, new RegExp(reason));
  const history = await home.readLines<HistoryLine>(`state/${agent}/history.jsonl`);
  assert.equal(history.at(-1)?.status, 'limit');
  assert.equal(history.at(-1)?.error_category, 'budget');
  assert.equal(item.run_id, history.at(-1)?.run_id);
  // Current until the agent's next claim parks it (while_waiting: park, the default): either way it waits for a person.
  const waiting = (await home.exists(`agents/${agent}/current-task.json`)) || (await home.exists(`state/${agent}/waiting/${taskId}.json`));
  assert.equal(waiting, true, 'the task stays, waiting for a person');
  return { handoff, item };
}

/** Whether a process is running (a zombie or a vanished pid is not). */
function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    if (fs.existsSync('/proc/self/stat')) return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const modelCall = (content: string, maxTokens?: number) => ({ model: { messages: [{ role: 'user', content }], ...(maxTokens ? { max_tokens: maxTokens } : {}) } });

describe('budgets of a process agent', () => {
  const home = useHome(FAST_CONFIG);
  let daemon: DaemonProcess | null = null;

  it('max_steps: the model call past the limit is refused with budget_exhausted, then the run stops with a handoff and a limit item', async () => {
    await home.scriptedAgent('steps', { budget: { max_steps: 3 } });
    await home.inbox('steps', 's1', { goal: 'count', input: { trace_file: 'trace.jsonl', script: [{ models: 5 }, { result: 'finished' }] } });
    daemon = home.startDaemon();
    const ended = await daemon.runEnded('steps');
    assert.equal(ended.outcome, 'limit');

    const messages = await trace(home, 'steps');
    const replies = messages.filter((m) => m.type === 'model_result' || m.type === 'error');
    assert.deepEqual(replies.slice(0, 4).map((m) => m.type), ['model_result', 'model_result', 'model_result', 'error']);
    assert.equal(replies[3]?.code, 'budget_exhausted', 'the fourth call is refused');
    const { handoff, item } = await assertStoppedBy(home, 'steps', 's1', 'max_steps');
    assert.equal(handoff.used.steps, 3);
    assert.equal(handoff.limits.steps, 3);
    assert.ok(handoff.journal_tail.length > 0 && handoff.journal_tail.every((r) => r.kind === 'model'), 'the last journal entries are the model calls');
    assert.equal(handoff.journal_tail.at(-1)?.seq, 3);
    assert.equal(item.details?.limits.steps, 3);
    assert.equal(item.details?.used.steps, 3);
    assert.equal(await home.exists('state/steps/done/s1.json'), false, 'a result sent after the stop does not finish the task');
  });

  it('resolve --continue --extend steps=5 on a limit item lets the task resume and finish', async () => {
    await home.scriptedAgent('steps', { budget: { max_steps: 3 } });
    await home.inbox('steps', 's1', { goal: 'count', input: { trace_file: 'trace.jsonl', script: [{ models: 5 }, { result: 'finished' }] } });
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('steps', 1)).outcome, 'limit');
    const { item } = await assertStoppedBy(home, 'steps', 's1', 'max_steps');

    const resolved = await home.cli(['resolve', item.id, '--continue', '--extend', 'steps=5']);
    assert.equal(resolved.code, 0, resolved.stderr);
    const ended = await daemon.runEnded('steps', 2);
    assert.equal(ended.outcome, 'done');

    const done = await home.readJson<{ status: string; output: unknown }>('state/steps/done/s1.json');
    assert.equal(done.status, 'done');
    assert.equal(done.output, 'finished');
    const messages = await trace(home, 'steps');
    const secondStart = messages.findLastIndex((m) => m.type === 'start');
    const secondRun = messages.slice(secondStart);
    assert.equal(secondRun[0]?.resume?.resolutions.length, 1, 'the extension is handed to the agent');
    const results = secondRun.filter((m) => m.type === 'model_result');
    assert.deepEqual(results.map((m) => m.replayed), [true, true, true, false, false], 'the first three calls come from the journal');
    const history = await home.readLines<HistoryLine>('state/steps/history.jsonl');
    assert.deepEqual(history.map((h) => [h.status, h.steps]), [['limit', 3], ['done', 2]], 'replayed calls are not counted again');
  });

  it('budgets count across the runs of a task: a resumed run has only what is left', async () => {
    await home.scriptedAgent('across', { budget: { max_steps: 3 } });
    await home.inbox('across', 'a1', {
      goal: 'crash, then resume',
      input: {
        trace_file: 'trace.jsonl',
        script: [{ models: 2 }, { checkpoint: { calls: 2 } }, { exit: 1 }],
        after_checkpoint: [{ models: 4 }, { result: 'unreachable' }],
      },
    });
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('across', 1)).outcome, 'failed');
    assert.equal((await daemon.runEnded('across', 2)).outcome, 'limit');

    const messages = await trace(home, 'across');
    const startAt = messages.findLastIndex((m) => m.type === 'start');
    const secondStart = messages[startAt] as unknown as { budget: { remaining: { steps: number } } };
    assert.equal(secondStart.budget.remaining.steps, 1, 'the second run starts with the steps the first left');
    const secondReplies = messages.slice(startAt).filter((m) => m.type === 'model_result' || m.type === 'error');
    assert.deepEqual(
      secondReplies.slice(0, 4).map((m) => (m.type === 'error' ? m.code : m.replayed ? 'replayed' : 'live')),
      ['replayed', 'replayed', 'live', 'budget_exhausted'],
    );
    const history = await home.readLines<HistoryLine>('state/across/history.jsonl');
    assert.deepEqual(history.map((h) => [h.status, h.steps]), [['failed', 2], ['limit', 1]]);
    const { handoff } = await assertStoppedBy(home, 'across', 'a1', 'max_steps');
    assert.equal(handoff.used.steps, 3, "the handoff reports the task's use across both runs");
  });

  it("a task's own budget lowers the agent's and never raises it", async () => {
    await home.scriptedAgent('lowered', { budget: { max_steps: 4 } });
    await home.scriptedAgent('capped', { budget: { max_steps: 2 } });
    const script = { trace_file: 'trace.jsonl', script: [{ models: 6 }, { result: 'unreachable' }] };
    await home.inbox('lowered', 'l1', { goal: 'fewer steps', budget: { max_steps: 2 }, input: script });
    await home.inbox('capped', 'c1', { goal: 'more steps', budget: { max_steps: 50 }, input: script });
    daemon = home.startDaemon();
    await daemon.runEnded('lowered');
    await daemon.runEnded('capped');

    const lowered = await assertStoppedBy(home, 'lowered', 'l1', 'max_steps');
    assert.equal(lowered.handoff.limits.steps, 2, 'the task lowered 4 to 2');
    assert.equal(lowered.handoff.used.steps, 2);
    const capped = await assertStoppedBy(home, 'capped', 'c1', 'max_steps');
    assert.equal(capped.handoff.limits.steps, 2, 'the task could not raise 2 to 50');
    assert.equal(capped.handoff.used.steps, 2);
  });

  it('a budget_warning arrives once, at 80% of a budget', async () => {
    await home.scriptedAgent('warned', { budget: { max_steps: 5 } });
    await home.inbox('warned', 'w1', { goal: 'use most of it', input: { trace_file: 'trace.jsonl', script: [{ models: 5 }, { result: 'done' }] } });
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('warned')).outcome, 'done');

    const messages = await trace(home, 'warned');
    const warnings = messages.filter((m) => m.type === 'budget_warning');
    assert.equal(warnings.length, 1, 'one warning, though steps 4 and 5 are both past 80%');
    assert.equal(warnings[0]?.used?.steps, 4);
    assert.equal(warnings[0]?.limits?.steps, 5);
    const before = messages.slice(0, messages.indexOf(warnings[0]!)).filter((m) => m.type === 'model_result');
    assert.equal(before.length, 4, 'the warning follows the fourth call');
  });

  it('max_tool_calls: the tool call past the limit is refused, then the run stops with a handoff and a limit item', async () => {
    await home.scriptedAgent('tools', {
      budget: { max_tool_calls: 2 },
      tools: { stamp: { description: 'prints a stamp', command: ['node', '-e', 'process.stdout.write(JSON.stringify({ stamped: true }))'] } },
    });
    await home.inbox('tools', 't1', {
      goal: 'stamp three times',
      input: { trace_file: 'trace.jsonl', script: [{ tool: 'stamp' }, { tool: 'stamp' }, { tool: 'stamp' }, { result: '$last' }] },
    });
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('tools')).outcome, 'limit');

    const replies = (await trace(home, 'tools')).filter((m) => m.type === 'tool_result' || m.type === 'error');
    assert.deepEqual(replies.slice(0, 3).map((m) => m.type), ['tool_result', 'tool_result', 'error']);
    assert.deepEqual(replies[0]?.result, { stamped: true }, 'the tool really ran');
    assert.equal(replies[2]?.code, 'budget_exhausted');
    const { handoff } = await assertStoppedBy(home, 'tools', 't1', 'max_tool_calls');
    assert.equal(handoff.used.tool_calls, 2);
    assert.equal(handoff.limits.tool_calls, 2);
    const history = await home.readLines<HistoryLine>('state/tools/history.jsonl');
    assert.equal(history[0]?.tool_calls, 2);
  });

  it('max_runtime: an agent that sleeps forever is stopped and hands off', async () => {
    await home.scriptedAgent('sleeper', { budget: { max_runtime: '1s' } });
    await home.inbox('sleeper', 'z1', { goal: 'sleep', input: { trace_file: 'trace.jsonl', script: [{ sleep: 600_000 }] } });
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('sleeper')).outcome, 'limit');
    const { handoff } = await assertStoppedBy(home, 'sleeper', 'z1', 'max_runtime');
    assert.equal(handoff.limits.runtime_ms, 1000);
    assert.ok(handoff.used.runtime_ms >= 1000, `used runtime ${handoff.used.runtime_ms}ms reaches the limit`);
  });

  it('max_runtime: an agent that ignores stop has its process group SIGTERMed, and the run still ends', async () => {
    await home.scriptedAgent('deaf', { budget: { max_runtime: '1s' }, stop_grace: '200ms' });
    await home.inbox('deaf', 'd1', {
      goal: 'ignore everyone',
      input: { trace_file: 'trace.jsonl', ignore_stop: true, script: [{ spawn_child: 'child.pid' }, { sleep: 600_000 }] },
    });
    daemon = home.startDaemon();
    const ended = await daemon.runEnded('deaf');
    assert.equal(ended.outcome, 'limit');

    const childPid = Number(fs.readFileSync(home.path('agents/deaf/child.pid'), 'utf8'));
    assert.equal(isAlive(childPid), false, 'the child the agent started died with its process group');
    const handoff = await home.readJson<Handoff>('outbox/deaf/handoff.json');
    assert.equal(handoff.reason, 'max_runtime');
    assert.equal(handoff.summary, null, 'the agent sent no handoff');
    const stops = (await trace(home, 'deaf')).filter((m) => m.type === 'stop');
    assert.deepEqual(stops.map((m) => m.reason), ['max_runtime']);
    const { items } = await home.readJson<{ items: OutboxItem[] }>('outbox/deaf/outbox.json');
    assert.deepEqual(items.map((i) => i.kind), ['limit']);
  });

  it('max_runtime: an agent that also ignores SIGTERM is SIGKILLed, and the run still ends', async () => {
    await home.write('agents/stubborn/agent.json', { version: '1', command: ['node', 'stubborn.mjs'], model: 'mock/echo', budget: { max_runtime: '1s' }, stop_grace: '200ms' });
    await home.write(
      'agents/stubborn/stubborn.mjs',
      [
        "import fs from 'node:fs';",
        "fs.writeFileSync('agent.pid', String(process.pid));",
        "process.on('SIGTERM', () => fs.appendFileSync('signals.log', 'SIGTERM\\n'));",
        "process.stdin.on('data', (chunk) => fs.appendFileSync('stdin.log', chunk));",
        'setInterval(() => {}, 1000);',
      ].join('\n'),
    );
    await home.inbox('stubborn', 'k1', { goal: 'never stop' });
    daemon = home.startDaemon();
    const ended = await daemon.runEnded('stubborn');
    assert.equal(ended.outcome, 'limit');

    assert.match(fs.readFileSync(home.path('agents/stubborn/stdin.log'), 'utf8'), /"type":"stop","reason":"max_runtime"/, 'it was asked to stop first');
    assert.equal(fs.readFileSync(home.path('agents/stubborn/signals.log'), 'utf8'), 'SIGTERM\n', 'then it got SIGTERM, once');
    const pid = Number(fs.readFileSync(home.path('agents/stubborn/agent.pid'), 'utf8'));
    assert.equal(isAlive(pid), false, 'and then SIGKILL');
    const handoff = await home.readJson<Handoff>('outbox/stubborn/handoff.json');
    assert.equal(handoff.reason, 'max_runtime');
    const history = await home.readLines<HistoryLine>('state/stubborn/history.jsonl');
    assert.equal(history[0]?.status, 'limit');
  });
});

describe('budgets of priced models (a stand-in provider on 127.0.0.1)', () => {
  const standIn = useStandIn((body) => {
    const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : OUTPUT_TOKENS;
    return { body: completion('priced reply', { prompt_tokens: PROMPT_TOKENS, completion_tokens: Math.min(OUTPUT_TOKENS, maxTokens) }) };
  });
  const home = useHome(() => PRICED_CONFIG(standIn.url));
  let daemon: DaemonProcess | null = null;

  it("max_tokens: each request's max_tokens is clamped to what is left, and the run stops once tokens run out", async () => {
    await home.scriptedAgent('tokens', { model: 'stand/m1', budget: { max_tokens: 100 } });
    await home.inbox('tokens', 'k1', { goal: 'talk', input: { trace_file: 'trace.jsonl', script: [modelCall('hi', 1000), modelCall('hi', 1000), modelCall('hi', 1000), { result: 'unreachable' }] } });
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('tokens')).outcome, 'limit');

    assert.equal(standIn.requests.length, 2, 'the third call never reached the provider');
    const [first, second] = standIn.requests.map((r) => r.body.max_tokens as number);
    assert.ok(first! < 1000 && first! <= 100, `the first request asked for ${first} tokens of the 100 left, not 1000`);
    assert.equal(first! - second!, PROMPT_TOKENS + OUTPUT_TOKENS, 'the second request has exactly the 60 tokens the first used less');
    assert.ok(second! >= 1);
    const refused = (await trace(home, 'tokens')).filter((m) => m.type === 'error');
    assert.equal(refused[0]?.code, 'budget_exhausted');
    const { handoff } = await assertStoppedBy(home, 'tokens', 'k1', 'max_tokens');
    assert.equal(handoff.used.tokens, 2 * (PROMPT_TOKENS + OUTPUT_TOKENS));
    assert.equal(handoff.limits.tokens, 100);
    const [history] = await home.readLines<HistoryLine>('state/tokens/history.jsonl');
    assert.deepEqual(history?.tokens, { input: 2 * PROMPT_TOKENS, output: 2 * OUTPUT_TOKENS }, 'usage is what the provider reported');
  });

  it('max_cost_usd: calls are priced from the models table, max_tokens is clamped to what is affordable, and the run stops at the cost limit', async () => {
    await home.scriptedAgent('cost', { model: 'stand/m1', budget: { max_cost_usd: 0.1 } });
    await home.inbox('cost', 'p1', { goal: 'spend', input: { trace_file: 'trace.jsonl', script: [modelCall('hi', 1000), modelCall('hi', 1000), modelCall('hi', 1000), { result: 'unreachable' }] } });
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('cost')).outcome, 'limit');

    assert.equal(standIn.requests.length, 2);
    const [first, second] = standIn.requests.map((r) => r.body.max_tokens as number);
    assert.ok(first! <= 50, `the first request asked for ${first} tokens: at $0.002 each, $0.1 buys at most 50`);
    assert.ok(second! >= 1 && second! * 0.002 <= 0.1 - 0.08 + 1e-9, `the second asked for ${second}: only $0.02 was left after the first call`);
    const results = (await trace(home, 'cost')).filter((m) => m.type === 'model_result') as unknown as { usage: { cost_usd: number } }[];
    assert.ok(Math.abs(results[0]!.usage.cost_usd - 0.08) < 1e-9, `the first call cost ${results[0]!.usage.cost_usd}, from the price table`);
    const { handoff } = await assertStoppedBy(home, 'cost', 'p1', 'max_cost');
    assert.equal(handoff.limits.cost_usd, 0.1);
    assert.ok(handoff.used.cost_usd >= 0.1, `used $${handoff.used.cost_usd} reaches the limit`);
  });

  it('daily_cost_usd: what other tasks of the agent spent today counts, and stops a task that has budget of its own left', async () => {
    await home.scriptedAgent('daily', { model: 'stand/m1', budget: { max_cost_usd: 1, daily_cost_usd: 0.1 } });
    await home.inbox('daily', 'morning', { goal: 'spend first', input: { trace_file: 'trace.jsonl', script: [modelCall('hi', 1000), { result: 'spent' }] } });
    daemon = home.startDaemon();
    assert.equal((await daemon.runEnded('daily', 1)).outcome, 'done');
    // Submitted while the daemon runs: `agentd submit` writes the inbox file atomically, as any writer should.
    await home.write('evening-input.json', { trace_file: 'trace.jsonl', script: [{ models: 3 }, { result: 'unreachable' }] });
    const submitted = await home.cli(['submit', 'daily', '--id', 'evening', '--goal', 'spend more', '--input', home.path('evening-input.json')]);
    assert.equal(submitted.code, 0, submitted.stderr);
    assert.equal((await daemon.runEnded('daily', 2)).outcome, 'limit');

    const { handoff } = await assertStoppedBy(home, 'daily', 'evening', 'daily_cost');
    assert.ok(handoff.used.cost_usd < 1, `the task itself spent $${handoff.used.cost_usd} of its $1`);
    const history = await home.readLines<HistoryLine>('state/daily/history.jsonl');
    const today = history.reduce((sum, h) => sum + h.cost_usd, 0);
    assert.ok(today >= 0.1, `the agent spent $${today} today, at least its daily $0.1`);
    const { items } = await home.readJson<{ items: { kind: string; status: string; details: { day: string } }[] }>('outbox/daily/outbox.json');
    const alerts = items.filter((i) => i.kind === 'budget_alert');
    assert.equal(alerts.length, 1, 'one budget_alert when the agent passed 80% of its daily cap');
    assert.equal(alerts[0]!.details.day, new Date().toISOString().slice(0, 10));
    assert.equal(items.filter((i) => i.kind === 'limit' && i.status === 'open').length, 1, 'the alert does not hold the task back; the limit does');
  });
});
