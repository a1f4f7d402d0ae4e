import assert from 'node:assert/strict';
import test from 'node:test';
import { chooseModel, allowedModels } from '../src/endpoint/models.js';
import { completionBody, endpointError, providerErrorStatus, sseEvents } from '../src/endpoint/openai-shape.js';

/** The run endpoint's pure parts: which model a request gets, and the OpenAI wire shapes. */

const agent = { model: 'openai/gpt-4.1-mini', fallbackModels: ['local/llama3'], models: ['openai/gpt-4.1'] };

test('a request\'s model resolves with or without its provider prefix, only within the agent\'s models; absent or default is the agent\'s model', () => {
  assert.deepEqual(allowedModels(agent), ['openai/gpt-4.1-mini', 'local/llama3', 'openai/gpt-4.1']);
  assert.deepEqual(chooseModel(agent, undefined), { ok: true, model: 'openai/gpt-4.1-mini', fallbackModels: ['local/llama3'] });
  assert.deepEqual(chooseModel(agent, 'default'), { ok: true, model: 'openai/gpt-4.1-mini', fallbackModels: ['local/llama3'] });
  assert.deepEqual(chooseModel(agent, 'gpt-4.1'), { ok: true, model: 'openai/gpt-4.1', fallbackModels: ['local/llama3'] });
  assert.deepEqual(chooseModel(agent, 'local/llama3'), { ok: true, model: 'local/llama3', fallbackModels: [] });
  const refused = chooseModel(agent, 'gpt-5');
  assert.equal(refused.ok, false);
  assert.match(!refused.ok ? refused.message : '', /"gpt-5" is not allowed for this agent \(allowed: openai\/gpt-4\.1-mini, local\/llama3, openai\/gpt-4\.1; add it to models: in agent\.yaml\)/);
  assert.equal(chooseModel({ model: null, fallbackModels: [], models: [] }, undefined).ok, false);
});

test('refusals use statuses no client retries, and OpenAI\'s error shape with agentd\'s code', () => {
  for (const code of ['budget_exhausted', 'stopping', 'model_not_allowed', 'provider_unavailable', 'provider_error', 'invalid_request', 'invalid_run_token', 'not_found'] as const) {
    const error = endpointError(code, 'why');
    assert.ok(error.status >= 400 && error.status <= 407, `${code}: ${error.status} is not retried by openai, the AI SDK or LangChain`);
    assert.deepEqual(Object.keys(error.body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(error.body.error.code, code);
  }
  assert.equal(endpointError('model_not_allowed', 'x').status, 404);
  assert.deepEqual([providerErrorStatus(422), providerErrorStatus(404), providerErrorStatus(null)], [400, 404, 400]);
});

test('a reply keeps the provider\'s body; without one, an OpenAI completion is built from the response', () => {
  const raw = { id: 'x', object: 'chat.completion', system_fingerprint: 'fp', choices: [], usage: { prompt_tokens: 1 } };
  assert.equal(completionBody({ response: { content: 'a', tool_calls: [] }, model: 'm', raw }, { input_tokens: 0, output_tokens: 0 }, { created: 1, id: 'y' }), raw);
  const built = completionBody({ response: { content: null, tool_calls: [{ id: 'c1', function: { name: 'f', arguments: '{}' } }] }, model: 'mock/echo' }, { input_tokens: 3, output_tokens: 4 }, { created: 5, id: 'chatcmpl-1' });
  assert.deepEqual(built, {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 5,
    model: 'mock/echo',
    choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, finish_reason: 'tool_calls', logprobs: null }],
    usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
  });
});

test('a streamed reply is the role chunk, the content, each tool call whole, the finish reason, the usage chunk when asked, and [DONE]', () => {
  const body = {
    id: 'c',
    created: 9,
    model: 'gpt',
    choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: 'thinking', tool_calls: [{ id: 't1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] } }],
    usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
  };
  const events = sseEvents(body, true);
  assert.equal(events.at(-1), 'data: [DONE]\n\n');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')) as { object: string; choices: { delta: Record<string, unknown>; finish_reason: unknown }[]; usage?: unknown });
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
  assert.deepEqual(chunks.map((c) => c.choices[0]?.delta ?? null), [
    { role: 'assistant', content: '' },
    { content: 'thinking' },
    { tool_calls: [{ index: 0, id: 't1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
    {},
    null,
  ]);
  assert.equal(chunks[3]!.choices[0]!.finish_reason, 'tool_calls');
  assert.deepEqual(chunks[4]!.usage, body.usage);
  assert.equal(sseEvents(body, false).length, events.length - 1, 'no usage chunk unless include_usage');
});
