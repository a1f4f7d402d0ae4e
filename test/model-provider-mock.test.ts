import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ProviderConfig } from '../src/config/types.js';
import { ModelGateway } from '../src/model/gateway.js';
import { MockProvider } from '../src/model/provider-mock.js';
import { ModelCallError } from '../src/model/types.js';
import type { ChatMessage, ModelRequest } from '../src/protocol/messages.js';
import { InstantClock } from './helpers/clock.js';
import { daemonConfig } from './helpers/model-config.js';

const live = () => ({ signal: new AbortController().signal, timeoutMs: 1000 });
const ask = (content: string, earlier: ChatMessage[] = []): ModelRequest => ({ messages: [{ role: 'system', content: 'sys' }, ...earlier, { role: 'user', content }] });
const mockConfig = (script: string | null): ProviderConfig => ({ name: 'mock', kind: 'mock', baseUrl: null, apiKeyEnv: null, timeoutMs: 1000, script });

async function home(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'agentd-mock-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function rejection(promise: Promise<unknown>): Promise<ModelCallError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof ModelCallError, `expected ModelCallError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

test('without a script the mock echoes the first 200 characters of the last user message', async () => {
  const provider = new MockProvider(mockConfig(null));
  const long = 'x'.repeat(300);
  const reply = await provider.complete('any', ask(long, [{ role: 'user', content: 'earlier' }]), live());
  assert.deepEqual(reply.response, { content: `mock reply: ${'x'.repeat(200)}`, tool_calls: [] });
  // 3 + 7 + 300 characters of content in, 12 + 200 out
  assert.deepEqual(reply.usage, { input_tokens: Math.ceil(310 / 4), output_tokens: Math.ceil(212 / 4) });
});

test('a JSON script answers with the first matching rule and numbers tool calls from the conversation', async (t) => {
  const file = join(await home(t), 'script.json');
  await writeFile(
    file,
    JSON.stringify({
      replies: [
        { match: 'vendor', reply: { tool_calls: [{ name: 'lookup_vendor', arguments: { name: 'ACME' } }, { name: 'send_email' }] }, usage: { input_tokens: 50, output_tokens: 7 } },
        { reply: { content: 'fallthrough' } },
      ],
    }),
  );
  const provider = new MockProvider(mockConfig(file));
  const first = await provider.complete('m', ask('find the vendor'), live());
  assert.deepEqual(first.response.tool_calls, [
    { id: 'call_1', type: 'function', function: { name: 'lookup_vendor', arguments: '{"name":"ACME"}' } },
    { id: 'call_2', type: 'function', function: { name: 'send_email', arguments: '{}' } },
  ]);
  assert.equal(first.response.content, null);
  assert.deepEqual(first.usage, { input_tokens: 50, output_tokens: 7 });
  // A conversation that already holds two tool calls continues at call_3.
  const earlier: ChatMessage[] = [{ role: 'assistant', content: null, tool_calls: first.response.tool_calls }];
  const again = await provider.complete('m', ask('vendor again', earlier), live());
  assert.deepEqual(again.response.tool_calls.map((c) => c.id), ['call_3', 'call_4']);
  assert.equal((await provider.complete('m', ask('something else'), live())).response.content, 'fallthrough');
});

test('a YAML script matches /regex/flags against the last tool result and can be restricted to a model', async (t) => {
  const file = join(await home(t), 'script.yaml');
  await writeFile(
    file,
    ['replies:', '  - match: "/total: \\\\d+/i"', '    model: big', '    reply: { content: "big saw a total" }', '  - match: "/total/i"', '    reply: { content: "any model saw a total" }', ''].join('\n'),
  );
  const provider = new MockProvider(mockConfig(file));
  const tool: ChatMessage = { role: 'tool', content: 'TOTAL: 42', tool_call_id: 'call_1' };
  const request: ModelRequest = { messages: [{ role: 'user', content: 'sum it' }, tool] };
  assert.equal((await provider.complete('big', request, live())).response.content, 'big saw a total');
  assert.equal((await provider.complete('small', request, live())).response.content, 'any model saw a total');
});

test('an error rule fails like an HTTP error, and `times` lets a later rule answer', async (t) => {
  const file = join(await home(t), 'script.json');
  await writeFile(file, JSON.stringify({ replies: [{ times: 2, error: { status: 503, message: 'overloaded', retry_after: 2 } }, { reply: { content: 'recovered' } }] }));
  const provider = new MockProvider(mockConfig(file));
  const err = await rejection(provider.complete('m', ask('hi'), live()));
  assert.equal(err.message, 'mock/m: HTTP 503: overloaded');
  assert.equal(err.status, 503);
  assert.deepEqual(err.failure, { category: 'provider_error', retryable: true, retryAfterMs: 2000, availability: true });

  // Through the gateway the second 503 is retried and the third call gets the reply.
  const clock = new InstantClock();
  const gateway = new ModelGateway({ config: daemonConfig([mockConfig(file)]), providers: { mock: provider }, clock, random: () => 0.5 });
  const result = await gateway.call({ agent: 'demo', model: 'mock/m', fallbackModels: [], critical: false, request: ask('hi'), signal: new AbortController().signal });
  assert.equal(result.response.content, 'recovered');
  assert.equal(result.attempts, 2);
  assert.deepEqual(clock.sleeps, [2000]);
});

test('the script is re-read when the file changes', async (t) => {
  const file = join(await home(t), 'script.json');
  await writeFile(file, JSON.stringify({ replies: [{ reply: { content: 'before' } }] }));
  const provider = new MockProvider(mockConfig(file));
  assert.equal((await provider.complete('m', ask('hi'), live())).response.content, 'before');
  await writeFile(file, JSON.stringify({ replies: [{ reply: { content: 'after!' } }] }));
  // Same size and possibly the same mtime tick: set the mtime explicitly so the change is visible.
  const later = new Date(Date.now() + 5000);
  await utimes(file, later, later);
  assert.equal((await provider.complete('m', ask('hi'), live())).response.content, 'after!');
});

test('a message no rule matches fails loudly as bad_request', async (t) => {
  const file = join(await home(t), 'script.json');
  await writeFile(file, JSON.stringify({ replies: [{ match: 'invoice', reply: { content: 'ok' } }] }));
  const err = await rejection(new MockProvider(mockConfig(file)).complete('m', ask('weather'), live()));
  assert.equal(err.failure.category, 'bad_request');
  assert.equal(err.message, `mock/m: no rule of ${file} matches the last message "weather"`);
});

test('an invalid script names the file and the field', async (t) => {
  const file = join(await home(t), 'script.json');
  await writeFile(file, JSON.stringify({ replies: [{ reply: { content: 'ok', tool_cals: [] } }] }));
  const err = await rejection(new MockProvider(mockConfig(file)).complete('m', ask('hi'), live()));
  assert.deepEqual(err.failure, { category: 'provider_error', retryable: false, retryAfterMs: null, availability: false });
  assert.ok(err.message.startsWith(`mock/m: mock script ${file}: replies[0].reply.tool_cals is not a known key`));
});

test('a missing script file is reported, not retried', async (t) => {
  const file = join(await home(t), 'absent.yaml');
  const err = await rejection(new MockProvider(mockConfig(file)).complete('m', ask('hi'), live()));
  assert.equal(err.failure.retryable, false);
  assert.equal(err.message, `mock/m: mock script ${file}: cannot be read`);
});

test('the mock copes with what OpenAI-style clients send: extra fields are ignored and content parts are read as text', async () => {
  const provider = new MockProvider(mockConfig(null));
  const request: ModelRequest = {
    messages: [{ role: 'user', content: [{ type: 'text', text: 'hello ' }, { type: 'text', text: 'parts' }] as unknown as string }],
    response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { type: 'object' } } },
    tool_choice: 'auto',
    seed: 1,
    top_p: 0.5,
    max_completion_tokens: 10,
  };
  const reply = await provider.complete('any', request, live());
  assert.deepEqual(reply.response, { content: 'mock reply: hello parts', tool_calls: [] });
});
