import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentDefinition } from '../src/config/types.js';
import { parseEvalFile } from '../src/eval/cases.js';
import { checkCase, textOf, type Observed } from '../src/eval/checks.js';
import { judgeModelProblem, parseJudgeReply } from '../src/eval/judge.js';
import { progressLine } from '../src/eval/progress.js';
import { isRegression, REGRESSION_TOLERANCE } from '../src/eval/report.js';
import { runPool } from '../src/eval/pool.js';

/** The pure parts of `agentd eval`: case parsing, checks, the judge's reply, the regression rule. */

const agent = {
  name: 'x',
  file: 'agents/x/agent.yaml',
  model: 'demo/agent',
  fallbackModels: ['demo/backup'],
  tools: { lookup: {}, send: {} },
  outputSchema: { type: 'object', required: ['total'] },
} as unknown as AgentDefinition;

const doneWith = (output: unknown, toolsCalled: string[] = []): Observed => ({ status: 'done', output, toolsCalled });

test('a case line resolves schema true to the agent output_schema and strings to lists; a default name is file stem and line', () => {
  const { cases, problems } = parseEvalFile('agents/x/evals/set.jsonl', '\n{"task":{"goal":"g"},"expect":{"status":"done","schema":true,"contains":"a","tools_called":["lookup"]}}\n', agent);
  assert.deepEqual(problems, []);
  assert.equal(cases[0]!.name, 'set:2');
  assert.equal(cases[0]!.source, 'agents/x/evals/set.jsonl:2');
  assert.equal(cases[0]!.task.id, 'eval-1');
  assert.equal(cases[0]!.expect.schema, agent.outputSchema);
  assert.deepEqual(cases[0]!.expect.contains, ['a']);
});

test('checks name what failed and why', () => {
  const expect = { status: 'done' as const, schema: { type: 'object', required: ['total'] }, contains: ['Acme', '/inv-\\d+/i'], notContains: ['unclear'], maxLength: 20, toolsCalled: ['lookup'], toolsNotCalled: ['send'] };
  const checks = checkCase(expect, doneWith({ vendor: 'unclear' }, ['send']));
  assert.deepEqual(checks.status, { pass: true });
  assert.equal(checks.schema!.reason, 'output does not match the schema: total is required');
  assert.equal(checks.contains!.reason, '"Acme", "/inv-\\\\d+/i" not in the output: it was "{\\"vendor\\":\\"unclear\\"}"');
  assert.equal(checks.not_contains!.reason, '"unclear" found in the output');
  assert.deepEqual(checks.max_length, { pass: true }, '{"vendor":"unclear"} is exactly 20 characters');
  assert.equal(checks.tools_called!.reason, 'lookup not called (called: send)');
  assert.equal(checks.tools_not_called!.reason, 'send called (called: send)');
});

test('max_length counts the text checked; an escalation is checked by its reason, question and blockers', () => {
  assert.deepEqual(checkCase({ status: 'done', maxLength: 5 }, doneWith('12345')).max_length, { pass: true });
  assert.equal(checkCase({ status: 'done', maxLength: 4 }, doneWith('12345')).max_length!.reason, 'the output is 5 characters, more than 4');
  const escalated: Observed = { status: 'escalated', escalation: { kind: 'uncertain', reason: 'no amount', question: 'How much?', blockers: ['amount'] }, toolsCalled: [] };
  assert.equal(textOf(escalated), 'no amount\nHow much?\namount');
  const checks = checkCase({ status: 'done', contains: ['How much'], schema: {} }, escalated);
  assert.equal(checks.status!.reason, 'expected done, got escalated (uncertain: no amount)');
  assert.deepEqual(checks.contains, { pass: true });
  assert.equal(checks.schema!.reason, 'no output to check (escalated)');
  assert.equal(checkCase({ status: 'done', toolsCalled: ['lookup'] }, doneWith('x')).tools_called!.reason, 'lookup not called (called: none)');
});

test('a regression is a drop of more than the tolerance on the same case names', () => {
  const line = (pass_rate: number, names = ['a', 'b']) => ({ pass_rate, cases: names.map((name) => ({ name, passed: 0, total: 1, pass_rate: 0 })) });
  assert.equal(isRegression(null, line(0)), false);
  assert.equal(isRegression(line(1), line(0.5)), true);
  assert.equal(isRegression(line(1), line(1 - REGRESSION_TOLERANCE)), false);
  assert.equal(isRegression(line(1, ['a', 'b']), line(0.5, ['b', 'a'])), true, 'order does not matter');
  assert.equal(isRegression(line(1, ['a', 'b']), line(0.5, ['a', 'c'])), false, 'other cases are not compared');
  assert.equal(isRegression(line(0.5), line(1)), false);
});

test("the judge's reply is parsed from a JSON object, fenced or not, with a score from 0 to 1", () => {
  assert.deepEqual(parseJudgeReply('{"score": 0.8, "reason": "ok"}'), { score: 0.8, reason: 'ok' });
  assert.deepEqual(parseJudgeReply('```json\n{"score": 1}\n```'), { score: 1, reason: '' });
  assert.match((parseJudgeReply('{"score": 8}') as { error: string }).error, /score 8 is not a number from 0 to 1/);
  assert.match((parseJudgeReply('looks good') as { error: string }).error, /has no JSON object/);
  assert.match((parseJudgeReply(null) as { error: string }).error, /has no JSON object/);
});

test('a judge model must be another model than the agent and its fallbacks, of a declared provider', () => {
  const config = { providers: { demo: {}, other: {} } } as never;
  assert.equal(judgeModelProblem('other/judge', agent, config), null);
  assert.match(judgeModelProblem('demo/agent', agent, config)!, /the agent's own model/);
  assert.match(judgeModelProblem('demo/backup', agent, config)!, /fallback_models/);
  assert.match(judgeModelProblem('nope/judge', agent, config)!, /does not declare/);
  assert.match(judgeModelProblem('judge', agent, config)!, /must be <provider>\/<model>/);
});

test('the pool keeps order and never runs more than its concurrency at once', async () => {
  let running = 0;
  let most = 0;
  const out = await runPool([5, 1, 3, 2], 2, async (n) => {
    most = Math.max(most, ++running);
    await new Promise((r) => setImmediate(r));
    running--;
    return n * 10;
  });
  assert.deepEqual(out, [50, 10, 30, 20]);
  assert.equal(most, 2);
});

test('the progress line shows done of total and failures', () => {
  assert.equal(progressLine(3, 4, 1, 'greets'), `[${'#'.repeat(18)}${'-'.repeat(6)}] 3/4 (1 failed) greets`);
  assert.equal(progressLine(0, 0, 0, ''), `[${'#'.repeat(24)}] 0/0 `);
});

test('a /regex/ that does not compile is a problem of its line, not a crash of the run', () => {
  const { problems } = parseEvalFile('agents/x/evals/set.jsonl', '{"task":{"goal":"g"},"expect":{"status":"done","contains":["ok","/(unclosed/"]}}', agent);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^agents\/x\/evals\/set\.jsonl:1: expect\.contains\[1\] "\/\(unclosed\/" is not a valid regular expression/);
});
