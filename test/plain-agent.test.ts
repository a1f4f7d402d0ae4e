import assert from 'node:assert/strict';
import path from 'node:path';
import test from 'node:test';
import { startStandIn, TestHome } from './helpers/home.js';
import { BYO_FIXTURES, byoConfig, doneOutput, lastFirst, PROVIDER_KEY, toolLoopProvider } from './helpers/byo.js';
import { untilInFolder } from './helpers/support.js';

/** Plain agents (protocol: none): the task on stdin, the result on stdout, agentd's calls over HTTP at $AGENTD_URL. */

interface OutboxFile {
  items: { id: string; kind: string; status: string; question?: string; task_id: string }[];
}

test('a curl-only plain agent checkpoints and escalates over HTTP, and its task resumes with the person\'s answer', async (t) => {
  const undo = lastFirst(t);
  const standIn = await startStandIn(toolLoopProvider());
  undo(() => standIn.close());
  const home = await TestHome.create(byoConfig(standIn));
  undo(() => home.remove());
  await home.write('agents/curly/agent.yaml', `version: 1
protocol: none
command: [sh, ${path.join(BYO_FIXTURES, 'curl-agent.sh')}]
model: standin/gpt-test
env: [PATH]
`);
  await home.inbox('curly', 'bill-1', { goal: 'bill the customer' });
  const daemon = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
  undo(() => daemon.stop());

  const outbox = await untilInFolder(home.path('outbox/curly'), () => home.readJson<OutboxFile>('outbox/curly/outbox.json').catch(() => null), (o) => o?.items.some((i) => i.kind === 'uncertain') ?? false, 'the escalation', 30_000);
  const item = outbox!.items.find((i) => i.kind === 'uncertain')!;
  assert.deepEqual({ question: item.question, task: item.task_id, status: item.status }, { question: 'Which account should I bill?', task: 'bill-1', status: 'open' });
  assert.equal(standIn.requests.length, 0, 'no model call before the answer');

  const resolved = await home.cli(['resolve', item.id, '--answer', 'acct-7']);
  assert.equal(resolved.code, 0, resolved.stderr);
  const output = await doneOutput(home, 'curly', 'bill-1');
  assert.deepEqual(output, { answer: 'acct-7', rounds: 0, had_checkpoint: true });
  assert.equal(standIn.requests.length, 1);
  assert.equal(standIn.requests[0]!.headers.authorization, `Bearer ${PROVIDER_KEY}`);
});

test('the endpoint answers refusals in OpenAI\'s error shape with statuses clients do not retry, lists the allowed models, and refuses a token once its run ended', async (t) => {
  const undo = lastFirst(t);
  const standIn = await startStandIn(toolLoopProvider());
  undo(() => standIn.close());
  const home = await TestHome.create(byoConfig(standIn));
  undo(() => home.remove());
  await home.write('agents/probe/agent.json', {
    version: '1',
    protocol: 'none',
    command: ['node', path.join(BYO_FIXTURES, 'probe-agent.mjs')],
    model: 'standin/gpt-test',
    models: ['standin/gpt-other'],
  });
  await home.inbox('probe', 'p1', { goal: 'probe' });
  const daemon = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
  undo(() => daemon.stop());
  const out = (await doneOutput(home, 'probe', 'p1')) as Record<string, any>;

  assert.equal(out.same_task, true, 'stdin and $AGENTD_TASK_FILE hold the same task');
  assert.deepEqual(out.models, ['standin/gpt-test', 'standin/gpt-other']);
  assert.equal(out.notAllowed.status, 404);
  assert.equal(out.notAllowed.body.error.code, 'model_not_allowed');
  assert.match(out.notAllowed.body.error.message, /"gpt-nope" is not allowed for this agent \(allowed: standin\/gpt-test, standin\/gpt-other/);
  assert.deepEqual([out.badToken.status, out.badToken.body.error.code], [401, 'invalid_run_token']);
  assert.deepEqual([out.notJson.status, out.notJson.body.error.code], [400, 'invalid_request']);
  assert.deepEqual([out.badEscalation.status, out.badEscalation.body.error.code], [400, 'invalid_request']);
  assert.match(out.badEscalation.body.error.message, /reason/);
  assert.deepEqual([out.otherStatus, out.byDefaultStatus], [200, 200]);
  assert.deepEqual(standIn.requests.map((r) => r.body.model), ['gpt-other', 'gpt-test'], 'a listed model by full name, and `default` as the agent\'s model');

  const after = await fetch(`${out.url}/v1/models`, { headers: { authorization: `Bearer ${out.token}` } });
  assert.equal(after.status, 401, 'the run ended: its token is refused');
  assert.equal(((await after.json()) as { error: { code: string } }).error.code, 'invalid_run_token');
});

test('a plain agent that exits non-zero fails its run, and one whose stdout breaks output_schema fails as invalid_output', async (t) => {
  const undo = lastFirst(t);
  const home = await TestHome.create('defaults: { max_attempts: 1 }\n');
  undo(() => home.remove());
  await home.write('agents/crash/agent.json', { version: '1', protocol: 'none', command: ['node', '-e', 'process.stdin.resume(); process.stdin.on("end", () => { console.error("boom"); process.exit(3) })'], model: 'mock/echo' });
  await home.write('agents/wrong/agent.json', { version: '1', protocol: 'none', command: ['node', '-e', 'console.log("just text")'], model: 'mock/echo', output_schema: { type: 'object' } });
  await home.write('agents/text/agent.json', { version: '1', protocol: 'none', command: ['node', '-e', 'console.log("just text")'], model: 'mock/echo' });
  await home.inbox('crash', 'c1', { goal: 'crash' });
  await home.inbox('wrong', 'w1', { goal: 'wrong' });
  await home.inbox('text', 'x1', { goal: 'text' });
  const daemon = home.startDaemon();
  undo(() => daemon.stop());
  const text = await doneOutput(home, 'text', 'x1');
  assert.equal(text as unknown, 'just text', 'stdout that is not JSON is the result as text');
  const dead = async (agent: string, id: string) =>
    (await untilInFolder(home.path(`state/dead-letter/${agent}`), () => home.readJson<{ error: { category: string; message: string } }>(`state/dead-letter/${agent}/${id}.json`).catch(() => null), (d) => d !== null, `${agent} dead-lettered`, 30_000))!;
  const crashed = await dead('crash', 'c1');
  assert.match(crashed.error.message, /exited with code 3/);
  const wrong = await dead('wrong', 'w1');
  assert.equal(wrong.error.category, 'invalid_output');
});
