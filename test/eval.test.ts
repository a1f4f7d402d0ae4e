import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { EvalReport } from '../src/eval/report.js';
import { runCli, TestHome, REPO_ROOT } from './helpers/home.js';
import { useCleanup } from './helpers/hooks.js';
import { copyTracked } from './helpers/demo.js';

/**
 * `agentd eval` end to end through the built CLI: golden sets in a temp home,
 * a scripted agent (test/fixtures/scripted-agent.mjs follows its task's
 * input.script), the mock provider as the judge, exit codes, and the real
 * home's files before and after.
 */

const TIMEOUT = { timeout: 60_000 };
const cleanup = useCleanup();

const CONFIG = `
providers:
  judges: { kind: mock, script: judge-script.yaml }
`;

const JUDGE_SCRIPT = `
v: 1
replies:
  - model: strict
    match: Rubric
    reply: { content: '{"score": 0.8, "reason": "greets, but not by name"}' }
`;

/** A write tool whose side effect is a file: args.path gets written. */
const TOUCH_TOOL = `
import fs from 'node:fs';
const args = JSON.parse(fs.readFileSync(0, 'utf8'));
fs.writeFileSync(args.path, 'written by the tool');
process.stdout.write(JSON.stringify({ written: args.path }));
`;

/** A read tool that counts its calls in args.counter (outside any home), so repeats of one case differ. */
const COUNTER_TOOL = `
import fs from 'node:fs';
const args = JSON.parse(fs.readFileSync(0, 'utf8'));
const n = (fs.existsSync(args.counter) ? Number(fs.readFileSync(args.counter, 'utf8')) : 0) + 1;
fs.writeFileSync(args.counter, String(n));
process.stdout.write(JSON.stringify({ n }));
`;

const pathArgs = { type: 'object', required: ['path'], properties: { path: { type: 'string' } } };

async function home(): Promise<TestHome> {
  const h = await cleanup.home(CONFIG);
  await h.write('judge-script.yaml', JUDGE_SCRIPT);
  await h.scriptedAgent('bot', {
    tools: {
      touch: { command: ['node', 'tools/touch.mjs'], effect: 'write', input_schema: pathArgs },
      launch: { command: ['node', 'tools/touch.mjs'], effect: 'irreversible', input_schema: pathArgs },
      counter: { command: ['node', 'tools/counter.mjs'], effect: 'read', input_schema: { type: 'object' } },
    },
    max_attempts: 2,
    budget: { max_steps: 5, max_runtime: '30s' },
  });
  await h.write('agents/bot/tools/touch.mjs', TOUCH_TOOL);
  await h.write('agents/bot/tools/counter.mjs', COUNTER_TOOL);
  return h;
}

function tempDir(): Promise<string> {
  return cleanup.tempDir('agentd-eval-test-');
}

type Step = Record<string, unknown>;
function evalCase(name: string, script: Step[], expect: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, task: { goal: `case ${name}`, input: { script } }, expect, ...extra };
}

async function writeSet(h: TestHome, cases: Record<string, unknown>[], file = 'set.jsonl'): Promise<void> {
  await h.write(`agents/bot/evals/${file}`, cases.map((c) => JSON.stringify(c)).join('\n') + '\n');
}

async function evalJson(h: TestHome, args: string[] = []): Promise<{ code: number | null; report: EvalReport; stderr: string }> {
  const r = await h.cli(['eval', 'bot', '--json', ...args]);
  assert.ok(r.stdout.trim().startsWith('{'), `no JSON report (exit ${r.code}): ${r.stderr}`);
  return { code: r.code, report: JSON.parse(r.stdout) as EvalReport, stderr: r.stderr };
}

const done = (answer: string): Step[] => [{ result: { answer } }];

test('pass rates per property, a failing case with its reason, and the threshold deciding the exit code', TIMEOUT, async () => {
  const h = await home();
  await writeSet(h, [
    evalCase('greets', done('hello there'), { status: 'done', contains: 'hello', not_contains: 'error', max_length: 100 }),
    evalCase('should-finish', [{ uncertain: { reason: 'the amount is missing', question: 'How much?' } }], { status: 'done' }),
    evalCase('says-bye', done('bye'), { status: 'done', contains: ['hello', '/bye/i'] }),
    evalCase('asks', [{ uncertain: { reason: 'the amount is missing', question: 'How much?' } }], { status: 'escalated', contains: 'How much' }),
  ]);

  const { code, report } = await evalJson(h);
  assert.equal(code, 1, 'below the default threshold 0.9');
  assert.equal(report.pass_rate, 0.5);
  assert.deepEqual(report.by_property.status, { passed: 3, total: 4, pass_rate: 0.75 });
  assert.deepEqual(report.by_property.contains, { passed: 2, total: 3, pass_rate: 0.6667 });
  assert.deepEqual(report.by_property.not_contains, { passed: 1, total: 1, pass_rate: 1 });
  assert.deepEqual(report.by_property.max_length, { passed: 1, total: 1, pass_rate: 1 });
  const byName = new Map(report.cases.map((c) => [c.name, c]));
  assert.equal(byName.get('greets')!.pass_rate, 1);
  assert.deepEqual(byName.get('should-finish')!.failures, [{ property: 'status', reason: 'expected done, got escalated (uncertain: the amount is missing)', runs: [1] }]);
  assert.equal(byName.get('says-bye')!.failures[0]!.property, 'contains');
  assert.match(byName.get('says-bye')!.failures[0]!.reason, /^"hello" not in the output: it was "\{\\"answer\\":\\"bye\\"\}"$/);
  assert.equal(byName.get('asks')!.results[0]!.escalation!.kind, 'uncertain');

  const human = await h.cli(['eval', 'bot']);
  assert.equal(human.code, 1);
  assert.match(human.stdout, /should-finish\s+0\/1\s+0%/);
  assert.match(human.stdout, /should-finish: status: expected done, got escalated \(uncertain: the amount is missing\)/);
  assert.match(human.stdout, /status\s+3\/4\s+75%/);
  assert.match(human.stdout, /pass rate 50% \(threshold 90%\).*FAILED/);
  assert.equal(human.stderr, '', 'no progress bar when stderr is not a terminal');

  assert.equal((await h.cli(['eval', 'bot', '--threshold', '0.5'])).code, 0, 'at the threshold');
  assert.equal((await h.cli(['eval', 'bot', '--threshold', '0.51'])).code, 1);
  const bad = await h.cli(['eval', 'bot', '--threshold', '90']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--threshold "90" must be a number from 0 to 1/);
});

test('--repeat runs each case N times and reports the pass rate per case', TIMEOUT, async () => {
  const h = await home();
  const counter = path.join(await tempDir(), 'count');
  // The counter tool answers 1, 2, 3 on successive runs: only odd runs contain "n":1 or "n":3.
  await writeSet(h, [
    evalCase('flaky', [{ tool: 'counter', args: { counter } }, { result: '$last' }], { status: 'done', contains: '/"n":[13]\\b/', tools_called: ['counter'] }),
    evalCase('steady', done('ok'), { status: 'done' }),
  ]);
  const { code, report } = await evalJson(h, ['--repeat', '3', '--concurrency', '1', '--threshold', '0']);
  assert.equal(code, 0);
  assert.equal(report.repeat, 3);
  const flaky = report.cases.find((c) => c.name === 'flaky')!;
  assert.deepEqual([flaky.passed, flaky.total, flaky.pass_rate], [2, 3, 0.6667]);
  assert.deepEqual(flaky.results.map((r) => r.run), [1, 2, 3]);
  assert.deepEqual(flaky.failures.map((f) => [f.property, f.runs]), [['contains', [2]]]);
  assert.deepEqual(report.by_property.tools_called, { passed: 3, total: 3, pass_rate: 1 });
  assert.equal(report.pass_rate, 0.8333);
  await fs.rm(counter);
  const human = await h.cli(['eval', 'bot', '--repeat', '3', '--concurrency', '1', '--threshold', '0']);
  assert.equal(human.code, 0, human.stdout);
  assert.match(human.stdout, /flaky\s+2\/3\s+66\.7%/);
  assert.match(human.stdout, /flaky: contains: .* \(run 2\)/);
});

test('a lower pass rate than the last recorded run on the same cases is a regression: exit 1', TIMEOUT, async () => {
  const h = await home();
  const cases = [evalCase('one', done('yes'), { status: 'done', contains: 'yes' }), evalCase('two', done('yes'), { status: 'done', contains: 'yes' })];
  await writeSet(h, cases);
  assert.equal((await evalJson(h, ['--threshold', '0'])).code, 0);

  cases[1] = evalCase('two', done('no'), { status: 'done', contains: 'yes' });
  await writeSet(h, cases);
  const second = await evalJson(h, ['--threshold', '0']);
  assert.equal(second.code, 1, 'above the threshold, but lower than last time');
  assert.equal(second.report.regression, true);
  assert.deepEqual(second.report.previous && [second.report.previous.pass_rate, second.report.previous.same_cases], [1, true]);

  // The same rate again is no regression; another set of cases is not compared.
  assert.equal((await evalJson(h, ['--threshold', '0'])).code, 0);
  await writeSet(h, [evalCase('renamed', done('no'), { status: 'done', contains: 'yes' })]);
  const other = await evalJson(h, ['--threshold', '0']);
  assert.equal(other.code, 0);
  assert.equal(other.report.previous!.same_cases, false);

  const lines = await h.readLines<{ v: number; agent: string; pass_rate: number; cases: { name: string }[]; definition_hash: string; version: string; by_property: object }>('state/bot/evals.jsonl');
  assert.deepEqual(lines.map((l) => l.pass_rate), [1, 0.5, 0.5, 0]);
  assert.deepEqual(Object.keys(lines[0]!).sort(), ['agent', 'at', 'by_property', 'cases', 'definition_hash', 'pass_rate', 'repeat', 'v', 'version']);
  assert.equal(lines[0]!.v, 1);
  assert.equal(lines[0]!.version, '1');
  assert.match(lines[0]!.definition_hash, /^[0-9a-f]{64}$/);
});

test("the real home's state, outbox and agent folder are untouched but for state/<agent>/evals.jsonl", TIMEOUT, async () => {
  const h = await home();
  await h.inbox('bot', 'queued', { goal: 'a real task, not for the eval', input: { script: done('real') } });
  await writeSet(h, [
    evalCase('finishes', [{ checkpoint: { step: 1 }, context: { learned: true } }, { model: { messages: [{ role: 'user', content: 'hi' }] } }, { result: '$last' }], { status: 'done' }),
    evalCase('escalates', [{ uncertain: { reason: 'unsure', question: 'What now?' } }], { status: 'escalated' }),
    evalCase('fails', [{ exit: 3 }], { status: 'done' }),
  ]);
  const before = await listTree(h.root);
  const { report } = await evalJson(h, ['--threshold', '0']);
  assert.deepEqual(report.cases.map((c) => c.results[0]!.status), ['done', 'escalated', 'dead_letter']);
  assert.equal(report.cases[2]!.results[0]!.attempts, 2, 'retried up to max_attempts, without waiting out the backoff');

  const after = await listTree(h.root);
  assert.deepEqual(
    after.filter((f) => !before.includes(f)),
    ['state', 'state/bot', 'state/bot/evals.jsonl'],
  );
  assert.deepEqual(before.filter((f) => !after.includes(f)), []);
  assert.equal(await h.exists('outbox'), false);
  assert.equal(await h.exists('agents/bot/current-task.json'), false);
  assert.deepEqual(await h.list('agents/bot/inbox'), ['queued.json']);
});

test('write and irreversible tools are recorded, not run; --live-tools runs them', TIMEOUT, async () => {
  const h = await home();
  const dir = await tempDir();
  const file = path.join(dir, 'side-effect.txt');
  const launched = path.join(dir, 'launched.txt');
  await writeSet(h, [
    evalCase('writes', [{ tool: 'touch', args: { path: file } }, { result: '$last' }], { status: 'done', tools_called: ['touch'], tools_not_called: ['launch'] }),
    // irreversible: approval always by default; under recorders it counts as called and recorded.
    evalCase('launches', [{ tool: 'launch', args: { path: launched } }, { result: '$last' }], { status: 'done', tools_called: ['launch'] }),
  ]);

  const recorded = await evalJson(h);
  assert.equal(recorded.code, 0, JSON.stringify(recorded.report.cases.map((c) => c.failures)));
  assert.equal(await exists(file), false, 'the write tool did not run');
  assert.equal(await exists(launched), false, 'the irreversible tool did not run');
  const [writes, launches] = recorded.report.cases;
  assert.deepEqual((writes!.results[0]!.output as { result: unknown }).result, { recorded: true });
  assert.deepEqual(writes!.results[0]!.recorded.map((c) => [c.name, c.args]), [['touch', { path: file }]]);
  assert.deepEqual(launches!.results[0]!.recorded.map((c) => c.name), ['launch']);
  assert.deepEqual(launches!.results[0]!.tools_called, ['launch']);

  const live = await evalJson(h, ['--live-tools', '--threshold', '0']);
  assert.equal(await fs.readFile(file, 'utf8'), 'written by the tool');
  assert.deepEqual((live.report.cases[0]!.results[0]!.output as { result: unknown }).result, { written: file });
  assert.deepEqual(live.report.cases[0]!.results[0]!.recorded, []);
  // Live, the irreversible call waits for a person's approval: not run, the case ends escalated.
  assert.equal(await exists(launched), false);
  assert.equal(live.report.cases[1]!.results[0]!.status, 'escalated');
  assert.equal(live.report.cases[1]!.results[0]!.escalation!.kind, 'approval');
  assert.deepEqual(live.report.cases[1]!.results[0]!.tools_called, ['launch']);
  assert.equal(live.report.live_tools, true);
});

test('a judge model scores rubrics apart from the pass rate; without one judge is skipped', TIMEOUT, async () => {
  const h = await home();
  await writeSet(h, [
    evalCase('judged', done('hello'), { status: 'done', judge: 'Greets the operator by name.' }),
    evalCase('plain', done('no'), { status: 'done', contains: 'yes' }),
  ]);
  const judged = await evalJson(h, ['--judge-model', 'judges/strict', '--threshold', '0']);
  assert.equal(judged.report.pass_rate, 0.5, 'the judge does not count toward the pass rate');
  assert.equal(judged.report.by_property.judge, undefined);
  assert.deepEqual(judged.report.judge, { model: 'judges/strict', scored: 1, errors: 0, skipped: 0, mean_score: 0.8 });
  assert.deepEqual(judged.report.cases[0]!.results[0]!.judge, { score: 0.8, reason: 'greets, but not by name' });
  const lines = await h.readLines<{ judge?: { mean_score: number } }>('state/bot/evals.jsonl');
  assert.equal(lines.at(-1)!.judge!.mean_score, 0.8);

  const human = await h.cli(['eval', 'bot', '--judge-model', 'judges/strict', '--threshold', '0']);
  assert.match(human.stdout, /judge judges\/strict: mean score 0\.80 over 1 run\(s\) \(not part of the pass rate\)/);
  assert.match(human.stdout, /judged: 0\.80 greets, but not by name/);

  const skipped = await evalJson(h, ['--threshold', '0']);
  assert.deepEqual(skipped.report.judge, { model: null, scored: 0, errors: 0, skipped: 1, mean_score: null });
  assert.deepEqual(skipped.report.cases[0]!.judge, { skipped: 'no judge model (--judge-model or judge_model)' });

  // A case may name its judge itself.
  await writeSet(h, [evalCase('judged', done('hello'), { status: 'done', judge: 'Greets the operator by name.' }, { judge_model: 'judges/strict' })]);
  assert.equal((await evalJson(h)).report.judge!.mean_score, 0.8);
});

test("the agent's own model cannot judge it: exit 2 before any case runs", TIMEOUT, async () => {
  const h = await home();
  await writeSet(h, [evalCase('judged', done('hello'), { status: 'done', judge: 'Greets.' })]);
  const r = await h.cli(['eval', 'bot', '--judge-model', 'mock/echo']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--judge-model: judge model mock\/echo is the agent's own model/);
  assert.equal(await h.exists('state'), false);

  await writeSet(h, [evalCase('judged', done('hello'), { status: 'done', judge: 'Greets.' }, { judge_model: 'mock/echo' })]);
  const inFile = await h.cli(['eval', 'bot']);
  assert.equal(inFile.code, 2, inFile.stderr);
  assert.match(inFile.stderr, /agents\/bot\/evals\/set\.jsonl:1: judge_model: judge model mock\/echo is the agent's own model/);

  const unknown = await h.cli(['eval', 'bot', '--judge-model', 'nowhere/x']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /names provider "nowhere", which agentd.yaml does not declare/);
});

test('a malformed case line is an error naming file, line and field: exit 2', TIMEOUT, async () => {
  const h = await home();
  await h.write(
    'agents/bot/evals/set.jsonl',
    [
      JSON.stringify(evalCase('fine', done('x'), { status: 'done' })),
      '',
      JSON.stringify(evalCase('bad-status', done('x'), { status: 'finished' })),
      JSON.stringify(evalCase('typo', done('x'), { status: 'done', containz: 'x' })),
      '{"task": {"goal": "x"}, "expect": ',
      JSON.stringify({ task: { input: {} }, expect: { status: 'done', tools_called: ['tuoch'] } }),
      JSON.stringify(evalCase('fine', done('x'), { status: 'done', schema: true })),
    ].join('\n'),
  );
  const r = await h.cli(['eval', 'bot']);
  assert.equal(r.code, 2);
  const problems = r.stderr.trim().replace(/^agentd: /, '').split('\n');
  assert.deepEqual(problems, [
    'agents/bot/evals/set.jsonl:3: expect.status must be one of "done", "escalated"',
    'agents/bot/evals/set.jsonl:4: expect.containz is not a known key (did you mean contains?)',
    problems[2],
    'agents/bot/evals/set.jsonl:6: task.goal is required',
    'agents/bot/evals/set.jsonl:7: expect.schema is true but agents/bot/agent.json has no output_schema',
  ]);
  assert.match(problems[2]!, /^agents\/bot\/evals\/set\.jsonl:5: is not valid JSON/);

  await h.write(
    'agents/bot/evals/set.jsonl',
    [
      { task: { goal: 'x' }, expect: { status: 'done' } },
      { name: 'set:1', task: { goal: 'x' }, expect: { status: 'done' } },
      { task: { goal: 'x' }, expect: { status: 'done', tools_called: ['tuoch'] } },
    ]
      .map((c) => JSON.stringify(c))
      .join('\n'),
  );
  const r2 = await h.cli(['eval', 'bot']);
  assert.equal(r2.code, 2);
  assert.deepEqual(r2.stderr.trim().replace(/^agentd: /, '').split('\n'), [
    'agents/bot/evals/set.jsonl:3: expect.tools_called[0] "tuoch" is not one of the agent\'s tools (touch, launch, counter)',
    'agents/bot/evals/set.jsonl:2: name "set:1" is already used at agents/bot/evals/set.jsonl:1',
  ]);

  await fs.rm(h.path('agents/bot/evals'), { recursive: true });
  const none = await h.cli(['eval', 'bot']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /agents\/bot\/evals has no cases/);
});

test('the bundled examples pass their golden sets', TIMEOUT, async () => {
  // A copy of the repository's demo home, so the repository's own state/ is not written.
  const dir = await tempDir();
  await copyTracked(dir, 'agents', 'agentd.yaml');
  // The examples import agentd/sdk, which resolves from the repository: link it as a dependency of the copy.
  await fs.mkdir(path.join(dir, 'node_modules'));
  await fs.symlink(REPO_ROOT, path.join(dir, 'node_modules', 'agentd'));
  await fs.writeFile(path.join(dir, 'package.json'), '{"type": "module"}\n');
  for (const agent of ['hello', 'cautious', 'invoices']) {
    const r = await runCli(['eval', agent, '--home', dir, '--json']);
    assert.equal(r.code, 0, `${agent}: ${r.stdout}${r.stderr}`);
    const report = JSON.parse(r.stdout) as EvalReport;
    assert.equal(report.pass_rate, 1, agent);
  }
});

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** Every file and folder under `root`, relative, sorted. */
async function listTree(root: string): Promise<string[]> {
  const entries = await fs.readdir(root, { recursive: true });
  return entries.map((e) => e.split(path.sep).join('/')).sort();
}
