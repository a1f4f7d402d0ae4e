import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import test from 'node:test';
import { completion, REPO_ROOT, startStandIn, TestHome, type StandIn, type StandInHandler } from './home.js';
import { FAST_CONFIG, untilInFolder } from './support.js';
import type { SpanLine } from '../../src/observe/trace.js';

/**
 * Agents written with ordinary model clients (test/fixtures/byo/), run
 * unmodified as plain agents against the run's endpoint, with a stand-in
 * OpenAI provider on 127.0.0.1 behind it. The same three scenarios for every
 * client library.
 */

export const BYO_FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'byo');
/** The provider key the daemon holds; no agent may ever see it. */
export const PROVIDER_KEY = 'sk-standin-provider-key-7f3a';

/** Text of the first user message of a request, whatever shape its content has. */
export function userText(body: Record<string, unknown>): string {
  const user = (body.messages as { role: string; content: unknown }[]).find((m) => m.role === 'user');
  const content = user?.content;
  if (typeof content === 'string') return content;
  return Array.isArray(content) ? content.map((p: { text?: string }) => p.text ?? '').join('') : '';
}

/** Tool results in a request so far: which turn of the loop this call is. */
export function turnOf(body: Record<string, unknown>): number {
  return (body.messages as { role: string }[]).filter((m) => m.role === 'tool').length;
}

/**
 * A provider that plays a tool loop: while the conversation has fewer tool
 * results than the `rounds:N` in the user's message, it asks for `lookup`;
 * then it answers JSON. `hold(body)` true: that request is never answered.
 */
export function toolLoopProvider(hold: (body: Record<string, unknown>) => boolean = () => false): StandInHandler {
  return (body) => {
    if (hold(body)) return 'hang';
    const rounds = Number(/rounds:(\d+)/.exec(userText(body))?.[1] ?? '1');
    const turn = turnOf(body);
    if (turn < rounds) {
      return { body: completion(null, { prompt_tokens: 20, completion_tokens: 5 }, [{ id: `call_${turn + 1}`, type: 'function', function: { name: 'lookup', arguments: JSON.stringify({ q: `item ${turn + 1}` }) } }]) };
    }
    return { body: completion(JSON.stringify({ answer: '42', rounds: turn }), { prompt_tokens: 30, completion_tokens: 8 }) };
  };
}

export function byoConfig(standIn: StandIn): string {
  return `${FAST_CONFIG}
providers:
  standin: { kind: openai, base_url: "${standIn.url}", api_key_env: STANDIN_KEY, timeout: 10s }
models:
  standin/gpt-test: { input_usd_per_mtok: 1, output_usd_per_mtok: 2 }
`;
}

/** A plain agent running `script` from test/fixtures/byo, on the stand-in's model. */
export async function plainAgent(home: TestHome, name: string, script: string, extra: Record<string, unknown> = {}): Promise<void> {
  // A sandboxed agent sees only its own folder of the home and none of /tmp, where a clone may
  // live: its scripts are copied in, and its node_modules links to the repository's, which the
  // sandbox shows read-only as agentd's own (security/sandbox.ts).
  let dir = BYO_FIXTURES;
  if (extra.sandbox === true) {
    dir = home.path(`agents/${name}`);
    await fs.mkdir(dir, { recursive: true });
    for (const file of await fs.readdir(BYO_FIXTURES)) await fs.copyFile(path.join(BYO_FIXTURES, file), path.join(dir, file));
    await fs.symlink(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  }
  await home.write(`agents/${name}/agent.json`, {
    version: '1',
    protocol: 'none',
    command: [script.endsWith('.py') ? 'python3' : 'node', path.join(dir, script)],
    model: 'standin/gpt-test',
    output_schema: { type: 'object', required: ['answer', 'rounds'] },
    ...extra,
  });
}

export async function doneOutput(home: TestHome, agent: string, task: string): Promise<Record<string, unknown>> {
  const done = await untilInFolder(home.path(`state/${agent}/done`), () => home.readJson<{ status: string; output: Record<string, unknown> }>(`state/${agent}/done/${task}.json`).catch(() => null), (d) => d !== null, `${agent} done`, 90_000);
  assert.equal(done!.status, 'done');
  return done!.output;
}

/**
 * The scenarios every client library passes: a task to done (and streamed,
 * when `streamed`), a stop by max_steps with the agent's handoff, and a
 * kill -9 of the daemon mid-task whose finished calls are replayed.
 */
export function libraryScenarios(
  label: string,
  script: string,
  /** `streamed`: one more agent streams its calls, and the crash scenario streams (its replay is streamed too). */
  options: { streamed?: boolean; request?: (body: Record<string, unknown>) => void } = {},
): void {
  test(`${label}: a task runs to done through the run's endpoint, and max_steps stops another with its handoff; no agent sees the provider key`, async (t) => {
    const undo = lastFirst(t);
    const standIn = await startStandIn(toolLoopProvider());
    undo(() => standIn.close());
    const home = await TestHome.create(byoConfig(standIn));
    undo(() => home.remove());
    await plainAgent(home, 'done', script);
    await plainAgent(home, 'limited', script, { budget: { max_steps: 3 } });
    await home.inbox('done', 't1', { goal: 'rounds:2 what is it?' });
    await home.inbox('limited', 't2', { goal: 'rounds:100 what is it?' });
    if (options.streamed) {
      await plainAgent(home, 'streamed', script);
      await home.inbox('streamed', 't3', { goal: 'rounds:1 streamed please', input: { stream: true } });
    }
    const daemon = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
    undo(() => daemon.stop());

    const output = await doneOutput(home, 'done', 't1');
    assert.deepEqual({ answer: output.answer, rounds: output.rounds, keyless: output.keyless, token: output.key_is_run_token }, { answer: '42', rounds: 2, keyless: true, token: true });
    const doneCalls = standIn.requests.filter((r) => userText(r.body).startsWith('rounds:2'));
    assert.equal(doneCalls.length, 3, 'two tool turns and the answer: three calls');
    for (const r of standIn.requests) assert.equal(r.headers.authorization, `Bearer ${PROVIDER_KEY}`, 'the daemon calls the provider with its key');
    assert.equal(doneCalls[0]!.body.model, 'gpt-test', 'the provider gets its own model name');
    options.request?.(doneCalls[0]!.body);
    const journal = await home.readLines<{ kind: string; phase: string; name: string }>('state/done/journal/t1.jsonl');
    assert.equal(journal.filter((e) => e.kind === 'model' && e.phase === 'completed' && e.name === 'standin/gpt-test').length, 3, 'each call is a journaled step');
    const spans = await modelSpans(home, 'done');
    assert.equal(spans.length, 3, 'each call is a model span in the run\'s trace');
    // 20 in + 5 out twice, 30 in + 8 out once, at $1 and $2 per million tokens.
    assert.deepEqual(sumSpans(spans), { input: 70, output: 18, cost: 0.000106, replayed: 0 }, 'traced with tokens and cost');

    const handoff = await untilInFolder(home.path('outbox/limited'), () => home.readJson<{ reason: string; summary: string | null }>('outbox/limited/handoff.json').catch(() => null), (h) => h !== null, 'handoff', 90_000);
    assert.equal(handoff!.reason, 'max_steps');
    assert.match(handoff!.summary ?? '', /stopped after a refused call \(403\)/);
    assert.equal(standIn.requests.filter((r) => userText(r.body).startsWith('rounds:100')).length, 3, 'the fourth call was refused, never sent');

    if (options.streamed) {
      const streamed = await doneOutput(home, 'streamed', 't3');
      assert.deepEqual({ answer: streamed.answer, streamed: streamed.streamed, usage: streamed.usage_seen }, { answer: '42', streamed: true, usage: 2 }, 'streamed replies carry usage when asked');
    }
  });

  test(`${label}: after a kill -9 of the daemon mid-task, the restarted agent's finished calls are replayed and the provider sees none twice`, async (t) => {
    let holding = true;
    // The third call (two tool results in) hangs until the daemon is killed.
    const undo = lastFirst(t);
    const standIn = await startStandIn(toolLoopProvider((body) => holding && turnOf(body) === 2));
    undo(() => standIn.close());
    const home = await TestHome.create(byoConfig(standIn));
    undo(() => home.remove());
    await plainAgent(home, 'crashy', script);
    await home.inbox('crashy', 'c1', { goal: 'rounds:3 survive a crash', ...(options.streamed ? { input: { stream: true } } : {}) });
    const first = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
    undo(() => first.stop('SIGKILL'));
    await untilTrue(() => standIn.requests.length >= 3, 'the third call to reach the provider');
    await first.stop('SIGKILL');
    holding = false;

    const second = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
    undo(() => second.stop());
    const output = await doneOutput(home, 'crashy', 'c1');
    assert.equal(output.rounds, 3);
    if (options.streamed) assert.deepEqual([output.streamed, output.usage_seen], [true, 4], 'replayed calls stream too, with their usage chunk');
    const byTurn = [0, 1, 2, 3].map((turn) => standIn.requests.filter((r) => turnOf(r.body) === turn).length);
    assert.deepEqual(byTurn, [1, 1, 2, 1], 'calls 1 and 2 were replayed from the journal; only the unanswered third went out again');
    const journal = await home.readLines<{ kind: string; phase: string }>('state/crashy/journal/c1.jsonl');
    assert.equal(journal.filter((e) => e.kind === 'model' && e.phase === 'completed').length, 4);
    const spans = await modelSpans(home, 'crashy');
    assert.equal(spans.filter((s) => s.attributes['agentd.replayed'] === true && s.attributes['agentd.cost_usd'] === 0).length, 2, 'the restarted run traces the two replayed calls, at no cost');
  });
}

/** The model spans of every trace file of `agent` (one per run), oldest run first. */
export async function modelSpans(home: TestHome, agent: string): Promise<SpanLine[]> {
  const files = (await home.list(`state/${agent}/traces`)).sort();
  const spans: SpanLine[] = [];
  for (const file of files) spans.push(...(await home.readLines<SpanLine>(`state/${agent}/traces/${file}`)));
  return spans.filter((s) => s.kind === 'model');
}

/** Tokens and cost of spans that went to the provider, and how many were replayed instead. */
export function sumSpans(spans: SpanLine[]): { input: number; output: number; cost: number; replayed: number } {
  const sent = spans.filter((s) => s.attributes['agentd.replayed'] !== true);
  const sum = (key: string) => sent.reduce((n, s) => n + Number(s.attributes[key] ?? 0), 0);
  return { input: sum('gen_ai.usage.input_tokens'), output: sum('gen_ai.usage.output_tokens'), cost: Math.round(sum('agentd.cost_usd') * 1e9) / 1e9, replayed: spans.length - sent.length };
}

/**
 * Kill -9 of the daemon while the agent's third call (`call 3` in its user
 * message) hangs at the provider; after a restart, calls 1 and 2 are answered
 * from the journal and only call 3 goes out again. For agents that make three
 * calls in a row (test/fixtures/byo/curl-calls.sh, the Python module agent).
 */
export async function threeCallCrash(t: { after(fn: () => Promise<void>): void }, writeAgent: (home: TestHome) => Promise<void>, agent: string): Promise<{ home: TestHome; output: unknown }> {
  let holding = true;
  const undo = lastFirst(t);
  const standIn = await startStandIn(toolLoopProvider((body) => holding && userText(body).includes('call 3')));
  undo(() => standIn.close());
  const home = await TestHome.create(byoConfig(standIn));
  undo(() => home.remove());
  await writeAgent(home);
  await home.inbox(agent, 'c1', { goal: 'three calls' });
  const first = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
  undo(() => first.stop('SIGKILL'));
  await untilTrue(() => standIn.requests.length >= 3, 'the third call to reach the provider');
  // A span is written after its reply goes to the agent, off the durable path (the journal is the
  // record); the third call is held, so waiting for the first two spans still kills mid-task.
  await untilTrue(async () => sumSpans(await modelSpans(home, agent).catch(() => [])).input >= 60, 'the two answered calls to be traced');
  await first.stop('SIGKILL');
  const firstSpans = await modelSpans(home, agent);
  assert.deepEqual(sumSpans(firstSpans), { input: 60, output: 16, cost: 0.000092, replayed: 0 }, 'the killed run traced its two answered calls with their cost');
  holding = false;

  const second = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
  undo(() => second.stop());
  const output = await doneOutput(home, agent, 'c1');
  const byCall = [1, 2, 3].map((n) => standIn.requests.filter((r) => userText(r.body).includes(`call ${n}`)).length);
  assert.deepEqual(byCall, [1, 1, 2], 'calls 1 and 2 were replayed from the journal; only the unanswered third went out again');
  for (const r of standIn.requests) assert.equal(r.headers.authorization, `Bearer ${PROVIDER_KEY}`);
  const spans = await modelSpans(home, agent);
  assert.deepEqual(sumSpans(spans), { input: 90, output: 24, cost: 0.000138, replayed: 2 }, 'the restarted run traced two replayed calls at no cost and one call to the provider');
  return { home, output };
}

/** Cleanups run last registered first (a daemon stops before its home is removed), each even if one before failed. */
export function lastFirst(t: { after(fn: () => Promise<void>): void }): (step: () => Promise<unknown>) => void {
  const steps: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const step of steps.reverse()) await step().catch(() => undefined);
  });
  return (step) => steps.push(step);
}

/** Polls a condition of the test's own (a stand-in's request count); no fixed sleep. */
export async function untilTrue(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
