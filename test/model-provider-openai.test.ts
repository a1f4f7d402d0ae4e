import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { OpenAIProvider } from '../src/model/provider-openai.js';
import { ModelCallError } from '../src/model/types.js';
import type { ModelRequest } from '../src/protocol/messages.js';
import { activeTimers } from './helpers/clock.js';
import { openaiProvider } from './helpers/model-config.js';
import { chatCompletion as completion, startFakeProvider } from './helpers/provider.js';

const request: ModelRequest = {
  messages: [
    { role: 'system', content: 'You extract invoices.' },
    { role: 'user', content: 'Invoice 42 from ACME' },
  ],
  tools: [{ type: 'function', function: { name: 'lookup_vendor', parameters: { type: 'object' } } }],
  max_tokens: 256,
  temperature: 0,
};
const KEY = 'sk-test-secret-123';
const live = () => ({ signal: new AbortController().signal, timeoutMs: 5000 });

async function rejection(promise: Promise<unknown>): Promise<ModelCallError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ModelCallError, `expected ModelCallError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

test('a completion with tool calls and usage comes back normalised, sent with the key and the bare model name, and its timer cleared', async (t) => {
  const reply = completion({ content: null, tool_calls: [{ id: 'call_a', name: 'lookup_vendor', arguments: '{"name":"ACME"}' }], usage: { prompt_tokens: 31, completion_tokens: 9 } });
  const server = await startFakeProvider([{ body: reply }]);
  t.after(() => server.close());
  const provider = new OpenAIProvider(openaiProvider('local', server.baseUrl, { apiKeyEnv: 'TEST_KEY' }), { env: { TEST_KEY: KEY } });
  const timersBefore = activeTimers();
  const result = await provider.complete('llama3', request, live());
  assert.equal(activeTimers(), timersBefore, 'the timeout timer is cleared once the reply is in');
  assert.deepEqual(result, {
    response: { content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'lookup_vendor', arguments: '{"name":"ACME"}' } }] },
    usage: { input_tokens: 31, output_tokens: 9 },
    raw: reply,
  });
  assert.equal(server.requests.length, 1);
  const seen = server.requests[0]!;
  assert.equal(seen.path, '/v1/chat/completions');
  assert.equal(seen.headers.authorization, `Bearer ${KEY}`);
  assert.deepEqual(seen.body, { model: 'llama3', messages: request.messages, tools: request.tools, max_tokens: 256, temperature: 0 });
});

test('every request field reaches the provider as the agent wrote it; stream and stream_options do not', async (t) => {
  const server = await startFakeProvider([{ body: completion({ content: '{"a":1}' }) }]);
  t.after(() => server.close());
  const provider = new OpenAIProvider(openaiProvider('local', server.baseUrl));
  const extra = {
    response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { type: 'object' }, strict: true } },
    tool_choice: 'required',
    parallel_tool_calls: false,
    seed: 7,
    stop: ['END'],
    top_p: 0.5,
    max_completion_tokens: 99,
  };
  await provider.complete('m', { ...request, ...extra, stream: true, stream_options: { include_usage: true }, model: 'ignored' }, live());
  const { model, ...sent } = server.requests[0]!.body as Record<string, unknown>;
  assert.equal(model, 'm', 'the provider gets its own model name');
  assert.deepEqual(sent, { messages: request.messages, tools: request.tools, max_tokens: 256, temperature: 0, ...extra });
});

test('a reply without tool_calls gets an empty list, and missing usage is estimated', async (t) => {
  const server = await startFakeProvider([{ body: completion({ content: 'twelve chars', usage: null }) }]);
  t.after(() => server.close());
  const provider = new OpenAIProvider(openaiProvider('local', server.baseUrl));
  const result = await provider.complete('m', request, live());
  assert.deepEqual(result.response, { content: 'twelve chars', tool_calls: [] });
  assert.equal(result.usage.output_tokens, 3);
  assert.ok(result.usage.input_tokens > 0);
  assert.equal(server.requests[0]!.headers.authorization, undefined, 'no api_key_env, no Authorization header');
});

test('an HTTP error carries its status, the classified failure and the provider message, with the key redacted', async (t) => {
  const server = await startFakeProvider([{ status: 401, body: { error: { message: `Incorrect API key provided: ${KEY}` } } }]);
  t.after(() => server.close());
  const provider = new OpenAIProvider(openaiProvider('local', server.baseUrl, { apiKeyEnv: 'TEST_KEY' }), { env: { TEST_KEY: KEY } });
  const err = await rejection(provider.complete('m', request, live()));
  assert.equal(err.status, 401);
  assert.equal(err.model, 'local/m');
  assert.deepEqual(err.failure, { category: 'auth', retryable: false, retryAfterMs: null, availability: false });
  assert.equal(err.message, 'local/m: HTTP 401: Incorrect API key provided: [redacted]');
});

test('a missing API key variable fails as auth before any request, naming the variable', async (t) => {
  const server = await startFakeProvider([]);
  t.after(() => server.close());
  const provider = new OpenAIProvider(openaiProvider('local', server.baseUrl, { apiKeyEnv: 'TEST_KEY' }), { env: {} });
  const err = await rejection(provider.complete('m', request, live()));
  assert.equal(err.failure.category, 'auth');
  assert.match(err.message, /environment variable TEST_KEY .* is not set/);
  assert.equal(server.requests.length, 0);
});

test('a 200 whose body is an error, not JSON, or has no message fails as a retryable provider error', async (t) => {
  const server = await startFakeProvider([{ body: { error: { message: 'overloaded' } } }, { body: '<html>bad gateway</html>' }, { body: { choices: [] } }]);
  t.after(() => server.close());
  const provider = new OpenAIProvider(openaiProvider('local', server.baseUrl));
  const expected = [/the body is an error: overloaded/, /the body is not JSON/, /no choices\[0\]\.message/];
  for (const pattern of expected) {
    const err = await rejection(provider.complete('m', request, live()));
    assert.match(err.message, pattern);
    assert.deepEqual(err.failure, { category: 'provider_error', retryable: true, retryAfterMs: null, availability: true });
  }
  assert.equal(server.requests.length, 3);
});

test('a server that never answers fails with timeout within timeoutMs, hangs up, and leaves no timer behind', async (t) => {
  const server = await startFakeProvider(['hang']);
  t.after(() => server.close());
  const provider = new OpenAIProvider(openaiProvider('local', server.baseUrl));
  const timersBefore = activeTimers();
  const started = performance.now();
  const err = await rejection(provider.complete('m', request, { signal: new AbortController().signal, timeoutMs: 150 }));
  const elapsed = performance.now() - started;
  assert.equal(err.failure.category, 'timeout');
  assert.equal(err.failure.retryable, true);
  assert.equal(err.message, 'local/m: no complete reply within 150ms');
  // Not before its time (timers never fire early); the server never answers, so nothing but the timeout ends the call.
  assert.ok(elapsed >= 140, `failed after ${elapsed}ms`);
  await server.requests[0]!.closed; // the client closed its socket: resolves only if it hung up
  assert.equal(activeTimers(), timersBefore);
});

test('aborting the caller signal cancels the request in flight', async (t) => {
  const server = await startFakeProvider(['hang']);
  t.after(() => server.close());
  const provider = new OpenAIProvider(openaiProvider('local', server.baseUrl));
  const controller = new AbortController();
  const pending = rejection(provider.complete('m', request, { signal: controller.signal, timeoutMs: 5000 }));
  await server.seen(1);
  controller.abort();
  const err = await pending;
  assert.deepEqual(err.failure, { category: 'cancelled', retryable: false, retryAfterMs: null, availability: false });
  await server.requests[0]!.closed;
});

test('a refused connection is a retryable provider error naming the cause', async () => {
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const { port } = closed.address() as AddressInfo;
  closed.close();
  await once(closed, 'close');
  const provider = new OpenAIProvider(openaiProvider('local', `http://127.0.0.1:${port}/v1`));
  const err = await rejection(provider.complete('m', request, live()));
  assert.deepEqual(err.failure, { category: 'provider_error', retryable: true, retryAfterMs: null, availability: true });
  assert.equal(err.message, 'local/m: connection failed: ECONNREFUSED');
});
