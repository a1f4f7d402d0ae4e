import assert from 'node:assert/strict';
import test from 'node:test';
import { startStandIn, TestHome } from './helpers/home.js';
import { byoConfig, doneOutput, lastFirst, PROVIDER_KEY, toolLoopProvider } from './helpers/byo.js';

/** A protocol agent's `model` message carries the same fields as a chat completion, and it gets the endpoint too. */

test('a protocol model message passes every field through, its max_completion_tokens clamped to the budget; a protocol agent gets the endpoint variables and no key', async (t) => {
  const undo = lastFirst(t);
  const standIn = await startStandIn(toolLoopProvider());
  undo(() => standIn.close());
  const home = await TestHome.create(byoConfig(standIn));
  undo(() => home.remove());
  await home.scriptedAgent('proto', { model: 'standin/gpt-test', budget: { max_tokens: 500 } });
  const fields = {
    response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { type: 'object' }, strict: true } },
    tool_choice: 'none',
    seed: 3,
    top_p: 0.9,
    stop: ['END'],
  };
  const script = [
    { env_dump: 'env.json' },
    { model: { messages: [{ role: 'user', content: 'rounds:0 answer' }], ...fields, max_completion_tokens: 100_000 } },
    { result: '$last' },
  ];
  await home.inbox('proto', 'm1', { goal: 'fields', input: { script } });
  const daemon = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
  undo(() => daemon.stop());
  const output = await doneOutput(home, 'proto', 'm1');
  assert.deepEqual(output.response, { content: '{"answer":"42","rounds":0}', tool_calls: [] }, 'the reply the protocol agent got');

  assert.equal(standIn.requests.length, 1);
  const { model, messages, max_completion_tokens: maxOut, ...rest } = standIn.requests[0]!.body;
  assert.equal(model, 'gpt-test');
  assert.ok(Array.isArray(messages));
  assert.deepEqual(rest, fields, 'every field reaches the provider');
  assert.ok(typeof maxOut === 'number' && maxOut < 500, `max_completion_tokens clamped to what the budget leaves (got ${String(maxOut)})`);

  const env = await home.readJson<Record<string, string>>('agents/proto/env.json');
  assert.match(env.OPENAI_BASE_URL ?? '', /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  assert.match(env.OPENAI_API_KEY ?? '', /^agentd-run-/);
  assert.equal(env.AGENTD_URL, env.OPENAI_BASE_URL!.replace(/\/v1$/, ''));
  assert.ok(!Object.values(env).some((v) => v.includes(PROVIDER_KEY)), 'no provider key in the agent\'s environment');
});
