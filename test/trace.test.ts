import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SpanLine } from '../src/observe/trace.js';
import { formatTraceTree } from '../src/observe/trace-tree.js';
import { REPO_ROOT, TestHome, type DaemonProcess } from './helpers/home.js';

/**
 * Traces (DESIGN.md section 11), end to end through the daemon and the
 * scripted agent: one file per run, a run span written last, model, tool and
 * checkpoint spans under it with OpenTelemetry GenAI attribute names, prompts
 * captured per trace.capture, and `agentd trace` reading it back.
 */

const FAST = `
defaults:
  retry: { attempts: 2, base_delay: 10ms, max_delay: 50ms }
  stop_grace: 1s
lock_stale: 2s
`;

const EMAIL = 'jane.doe@example.com';
const KEY = 'sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm';
const PROMPT = `Refund the customer ${EMAIL}; use key ${KEY}`;

/** An agent with one read tool that answers what it was given. */
async function agentWithTool(home: TestHome, name: string, extra: Record<string, unknown> = {}): Promise<void> {
  await home.scriptedAgent(name, {
    tools: { lookup: { command: ['node', '-e', "process.stdout.write(JSON.stringify({customer: 'jane.doe@example.com', plan: 'pro'}))"], effect: 'read' } },
    ...extra,
  });
}

const callingTask = {
  goal: 'refund',
  input: {
    script: [
      { model: { messages: [{ role: 'user', content: PROMPT }], max_tokens: 200, temperature: 0 } },
      { tool: 'lookup', args: { email: EMAIL } },
      { checkpoint: { step: 2 } },
      { result: 'refunded' },
    ],
  },
};

async function spansOf(home: TestHome, agent: string, runId: string): Promise<SpanLine[]> {
  return home.readLines<SpanLine>(`state/${agent}/traces/${runId}.jsonl`);
}

function only(spans: SpanLine[], kind: SpanLine['kind']): SpanLine {
  const found = spans.filter((s) => s.kind === kind);
  assert.equal(found.length, 1, `one ${kind} span in ${JSON.stringify(spans.map((s) => s.kind))}`);
  return found[0]!;
}

describe('traces of runs under the daemon (capture: redacted, the default)', () => {
  let home: TestHome;
  let daemon: DaemonProcess;
  before(async () => {
    home = await TestHome.create(FAST);
    await agentWithTool(home, 'refunds');
    await home.inbox('refunds', 'r1', callingTask);
    daemon = home.startDaemon();
    await daemon.started();
  });
  after(async () => {
    await daemon.stop();
    await home.remove();
  });

  it('writes one file per run: model, tool and checkpoint spans under the run span, which comes last', async () => {
    const ended = await daemon.runEnded('refunds');
    assert.equal(ended.outcome, 'done');
    const runId = ended.run_id as string;
    const spans = await spansOf(home, 'refunds', runId);

    const run = spans.at(-1)!;
    assert.equal(run.kind, 'run', 'the run span is the last line');
    assert.equal(run.parent_span_id, null);
    assert.equal(run.status, 'ok');
    assert.match(run.trace_id, /^[0-9a-f]{32}$/);
    assert.match(run.span_id, /^[0-9a-f]{16}$/);
    for (const span of spans) {
      assert.equal(span.v, 1);
      assert.equal(span.trace_id, run.trace_id, 'one trace id per run');
      if (span !== run) assert.equal(span.parent_span_id, run.span_id, `${span.name} is a child of the run`);
      assert.ok(Date.parse(span.end) >= Date.parse(span.start));
      assert.equal(span.duration_ms, Date.parse(span.end) - Date.parse(span.start));
    }
    const [history] = await home.readLines<{ definition_hash: string; model_latency_ms: number[] }>('state/refunds/history.jsonl');
    assert.deepEqual(
      { ...run.attributes, 'agentd.definition_hash': undefined },
      {
        'agentd.agent': 'refunds',
        'agentd.task_id': 'r1',
        'agentd.run_id': runId,
        'agentd.trigger': 'inbox',
        'agentd.attempt': 1,
        'agentd.agent_version': '1',
        'agentd.definition_hash': undefined,
        'agentd.definition_changed': false,
        'agentd.outcome': 'done',
        'agentd.steps': 1,
        'agentd.tool_calls': 1,
        'gen_ai.usage.input_tokens': (only(spans, 'model').attributes['gen_ai.usage.input_tokens'] as number),
        'gen_ai.usage.output_tokens': (only(spans, 'model').attributes['gen_ai.usage.output_tokens'] as number),
        'agentd.cost_usd': 0,
        'agentd.models': ['mock/echo'],
        'agentd.degraded': false,
      },
    );
    assert.equal(run.attributes['agentd.definition_hash'], history?.definition_hash);
    assert.equal(history?.model_latency_ms.length, 1, 'history records the model call latency');

    const model = only(spans, 'model');
    assert.equal(model.name, 'chat mock/echo');
    assert.equal(model.status, 'ok');
    const a = model.attributes;
    assert.equal(a['gen_ai.operation.name'], 'chat');
    assert.equal(a['gen_ai.system'], 'mock');
    assert.equal(a['gen_ai.request.model'], 'mock/echo');
    assert.equal(a['gen_ai.response.model'], 'mock/echo');
    assert.equal(a['gen_ai.request.max_tokens'], 200);
    assert.equal(a['gen_ai.request.temperature'], 0);
    assert.ok((a['gen_ai.usage.input_tokens'] as number) > 0);
    assert.ok((a['gen_ai.usage.output_tokens'] as number) > 0);
    assert.equal(a['agentd.cost_usd'], 0);
    assert.equal(a['agentd.attempts'], 1);
    assert.equal(a['agentd.circuit_state'], 'closed', 'the circuit state of the model at the call');
    assert.equal(a['agentd.fallback'], false);
    assert.equal(a['agentd.cache_hit'], false);
    assert.equal(a['agentd.replayed'], false);
    assert.equal(a['agentd.seq'], 1);

    const tool = only(spans, 'tool');
    assert.equal(tool.name, 'execute_tool lookup');
    assert.equal(tool.attributes['agentd.tool.name'], 'lookup');
    assert.equal(tool.attributes['agentd.tool.effect'], 'read');
    assert.equal(tool.attributes['agentd.seq'], 2);
    assert.equal(only(spans, 'checkpoint').attributes['agentd.seq'], 2);
    assert.deepEqual(spans.slice(0, 3).map((s) => s.kind), ['model', 'tool', 'checkpoint'], 'spans are written as they end');
  });

  it('redacts emails and keys in prompts, responses and tool payloads', async () => {
    const [runId] = (await home.list('state/refunds/traces')).map((f) => f.replace(/\.jsonl$/, ''));
    const text = await fs.readFile(home.path(`state/refunds/traces/${runId}.jsonl`), 'utf8');
    assert.ok(!text.includes(EMAIL), 'no email address anywhere in the trace');
    assert.ok(!text.includes(KEY), 'no key anywhere in the trace');
    const spans = await spansOf(home, 'refunds', runId!);
    const input = only(spans, 'model').attributes['gen_ai.input.messages'] as { role: string; content: string }[];
    assert.deepEqual(input, [{ role: 'user', content: 'Refund the customer [redacted:email]; use key [redacted:key]' }]);
    const output = only(spans, 'model').attributes['gen_ai.output.messages'] as { role: string; content: string }[];
    assert.equal(output[0]?.role, 'assistant');
    assert.match(output[0]?.content ?? '', /\[redacted:email\]/);
    assert.deepEqual(only(spans, 'tool').attributes['agentd.tool.args'], { email: '[redacted:email]' });
    assert.deepEqual(only(spans, 'tool').attributes['agentd.tool.result'], { customer: '[redacted:email]', plan: 'pro' });
  });

  it('agentd trace prints the run as a tree; --json prints the spans; an unknown run exits 1', async () => {
    const [runId] = (await home.list('state/refunds/traces')).map((f) => f.replace(/\.jsonl$/, ''));
    const tree = await home.cli(['trace', runId!]);
    assert.equal(tree.code, 0, tree.stderr);
    const lines = tree.stdout.trimEnd().split('\n');
    // A duration as formatDuration prints it: 850ms, or 2.0s on a slow machine.
    const D = String.raw`\d+(?:\.\d)?(?:ms|s|m)`;
    assert.match(lines[0]!, new RegExp(String.raw`^run refunds +${D} +tokens \d+ in \/ \d+ out +\$0\.0000 +done +agent refunds +task r1`));
    assert.match(lines[1]!, new RegExp(String.raw`^├─ chat mock\/echo +${D} +tokens \d+ in \/ \d+ out +\$0\.0000$`));
    assert.match(lines[2]!, new RegExp(String.raw`^├─ execute_tool lookup +${D} +read$`));
    assert.match(lines[3]!, new RegExp(String.raw`^└─ checkpoint +${D}$`));
    assert.equal(lines.length, 4);

    const json = await home.cli(['trace', runId!, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), await spansOf(home, 'refunds', runId!));

    const unknown = await home.cli(['trace', 'r-20990101000000-deadbeef']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no trace of run "r-20990101000000-deadbeef"/);
    const bad = await home.cli(['trace', '../x']);
    assert.equal(bad.code, 2, 'a run id that is not a name is bad usage');
  });

  it('an escalation is a span; the run resumed under a changed definition says so', async () => {
    await home.scriptedAgent('asker');
    await home.inbox('asker', 'q1', {
      goal: 'ask',
      input: { script: [{ checkpoint: { page: 1 } }, { uncertain: { reason: `unsure about ${EMAIL}`, question: 'Which total?' } }], after_resolution: [{ result: 'answered' }] },
    });
    const first = await daemon.runEnded('asker');
    assert.equal(first.outcome, 'escalated');
    const spans = await spansOf(home, 'asker', first.run_id as string);
    const escalation = only(spans, 'escalation');
    assert.equal(escalation.attributes['agentd.escalation.kind'], 'uncertain');
    assert.deepEqual(escalation.attributes['agentd.escalation.reason'], { reason: 'unsure about [redacted:email]', question: 'Which total?' });
    assert.equal(spans.at(-1)?.attributes['agentd.outcome'], 'escalated');

    await home.scriptedAgent('asker', { version: '2' });
    await daemon.waitForLog((l) => l.msg === 'agent definition loaded' && l.agent === 'asker' && l.version === '2', 'the new definition');
    const { items } = await home.readJson<{ items: { id: string; kind: string }[] }>('outbox/asker/outbox.json');
    // Not items[0]: a definition read while half-written leaves a config_error item, closed once it loads.
    const resolved = await home.cli(['resolve', items.find((i) => i.kind === 'uncertain')!.id, '--answer', '120']);
    assert.equal(resolved.code, 0, resolved.stderr);
    const second = await daemon.runEnded('asker', 2);
    assert.equal(second.outcome, 'done');
    const run = (await spansOf(home, 'asker', second.run_id as string)).at(-1)!;
    assert.equal(run.kind, 'run');
    assert.equal(run.attributes['agentd.definition_changed'], true);
    assert.equal(run.attributes['agentd.agent_version'], '2');
    assert.equal(run.attributes['agentd.trigger'], 'resume');
    assert.equal(run.attributes['agentd.attempt'], 1);
  });

  it('a call held for approval leaves an approval_wait span; the approving run records the wait and the replayed call', async () => {
    await home.scriptedAgent('payer', { tools: { pay: { command: ['node', '-e', "process.stdout.write('{\"paid\":true}')"], effect: 'write', approval: 'always' } } });
    await home.inbox('payer', 'p1', { goal: 'pay', input: { script: [{ model: { messages: [{ role: 'user', content: 'pay 10' }] } }, { tool: 'pay', args: { amount: 10 } }, { result: '$last' }] } });
    const first = await daemon.runEnded('payer');
    assert.equal(first.outcome, 'approval');
    const held = await spansOf(home, 'payer', first.run_id as string);
    const pending = only(held, 'approval_wait');
    assert.equal(pending.attributes['agentd.approval.decision'], 'pending');
    assert.equal(pending.attributes['agentd.tool.name'], 'pay');
    assert.equal(only(held, 'escalation').attributes['agentd.escalation.kind'], 'approval');
    assert.equal(held.filter((s) => s.kind === 'tool').length, 0, 'the held call did not run');

    const { items } = await home.readJson<{ items: { id: string; kind: string }[] }>('outbox/payer/outbox.json');
    const resolved = await home.cli(['resolve', items.find((i) => i.kind === 'approval')!.id, '--approve']);
    assert.equal(resolved.code, 0, resolved.stderr);
    const second = await daemon.runEnded('payer', 2);
    assert.equal(second.outcome, 'done');
    const spans = await spansOf(home, 'payer', second.run_id as string);
    const wait = only(spans, 'approval_wait');
    assert.equal(wait.attributes['agentd.approval.decision'], 'approve');
    assert.ok(wait.duration_ms >= 0 && Date.parse(wait.end) <= Date.parse(spans.at(-1)!.start), 'the wait ended before the run began');
    assert.equal(only(spans, 'model').attributes['agentd.replayed'], true, 'the model call is answered from the journal');
    assert.equal(only(spans, 'tool').attributes['agentd.replayed'], false, 'the approved call runs now');
    assert.deepEqual(only(spans, 'tool').attributes['agentd.tool.result'], { paid: true });
  });
});

describe('trace.capture', () => {
  it('none leaves prompts, responses and tool payloads out', async () => {
    const home = await TestHome.create(`${FAST}trace: { capture: none }\n`);
    const daemon = home.startDaemon();
    try {
      await agentWithTool(home, 'quiet');
      await home.inbox('quiet', 'n1', callingTask);
      const ended = await daemon.runEnded('quiet');
      const spans = await spansOf(home, 'quiet', ended.run_id as string);
      const model = only(spans, 'model');
      assert.equal(model.attributes['gen_ai.input.messages'], undefined);
      assert.equal(model.attributes['gen_ai.output.messages'], undefined);
      assert.equal(model.attributes['gen_ai.request.model'], 'mock/echo', 'the rest of the span is there');
      assert.equal(only(spans, 'tool').attributes['agentd.tool.args'], undefined);
      assert.equal(only(spans, 'tool').attributes['agentd.tool.result'], undefined);
      const text = await fs.readFile(home.path(`state/quiet/traces/${ended.run_id as string}.jsonl`), 'utf8');
      assert.ok(!text.includes('Refund the customer') && !text.includes('[redacted'), 'no payload at all');
    } finally {
      await daemon.stop();
      await home.remove();
    }
  });

  it('full keeps them as they were', async () => {
    const home = await TestHome.create(`${FAST}trace: { capture: full }\n`);
    try {
      await agentWithTool(home, 'open');
      await home.write('task.json', { id: 'f1', ...callingTask });
      const ran = await home.cli(['run', 'open', '--task', home.path('task.json')]);
      assert.equal(ran.code, 0, ran.stderr);
      const [file] = await home.list('state/open/traces');
      const spans = await home.readLines<SpanLine>(`state/open/traces/${file!}`);
      assert.deepEqual(only(spans, 'model').attributes['gen_ai.input.messages'], [{ role: 'user', content: PROMPT }]);
      assert.deepEqual(only(spans, 'tool').attributes['agentd.tool.args'], { email: EMAIL });
    } finally {
      await home.remove();
    }
  });
});

describe('the trace tree', () => {
  it('renders the fixture trace (format v1) with children under their parent, in start order', async () => {
    const text = await fs.readFile(path.join(REPO_ROOT, 'test', 'fixtures', 'v1', 'trace.jsonl'), 'utf8');
    const spans = text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as SpanLine);
    assert.equal(
      formatTraceTree(spans),
      [
        'run billing  2.5s  ERROR budget  tokens 300 in / 60 out  $0.0021  limit  agent billing  task inv-7  2 steps, 1 tool calls  definition changed',
        '├─ approval refund  1m  decision approve',
        '├─ chat openai/gpt-4o-mini  2ms  tokens 0 in / 0 out  $0.0000  replayed',
        '├─ chat openai/gpt-4o-mini  1.2s  tokens 300 in / 60 out  $0.0021  answered by local/llama  3 attempts',
        '├─ execute_tool refund  300ms  ERROR tool_failed  write',
        '├─ checkpoint  5ms',
        '└─ escalate limit  0ms',
        '',
      ].join('\n'),
    );
    assert.match(formatTraceTree(spans.filter((s) => s.kind !== 'run')), /^\(no run span: the run has not ended, or the daemon stopped during it\)\napproval refund  1m/);
  });
});
