import assert from 'node:assert/strict';
import { pino } from 'pino';
import { test, type TestContext } from 'node:test';
import { ModelGateway, type GatewayClock } from '../src/model/gateway.js';
import { ModelCallError, type GatewayCall } from '../src/model/types.js';
import { activeTimers, InstantClock } from './helpers/clock.js';
import { daemonConfig, openaiProvider } from './helpers/model-config.js';
import { chatCompletion as completion, startFakeProvider, type FakeReply } from './helpers/provider.js';

const request = { messages: [{ role: 'user' as const, content: 'Invoice 42 from ACME' }] };
const ok = (content = 'done'): FakeReply => ({ body: completion({ content, usage: { prompt_tokens: 1000, completion_tokens: 200 } }) });
const status = (code: number, headers: Record<string, string> = {}): FakeReply => ({ status: code, headers, body: { error: { message: `status ${code}` } } });

function callOf(overrides: Partial<GatewayCall> = {}): GatewayCall {
  return { agent: 'billing', model: 'primary/m', fallbackModels: [], critical: false, request, signal: new AbortController().signal, ...overrides };
}

/** A primary and a fallback provider, each its own fake server, behind one gateway with a manual clock. */
async function setup(t: TestContext, primary: FakeReply[], fallback: FakeReply[] = [], options: { clock?: GatewayClock; timeoutMs?: number; circuit?: { failureThreshold: number; windowMs: number; cooldownMs: number } } = {}) {
  const a = await startFakeProvider(primary);
  const b = await startFakeProvider(fallback);
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const clock = new InstantClock();
  const config = daemonConfig([openaiProvider('primary', a.baseUrl, { timeoutMs: options.timeoutMs ?? 5000 }), openaiProvider('backup', b.baseUrl)], {
    'primary/m': { inputUsdPerMtok: 2, outputUsdPerMtok: 8, contextWindow: null },
  });
  const gateway = new ModelGateway({ config, clock: options.clock ?? clock, random: () => 0.5, ...(options.circuit ? { circuit: options.circuit } : {}) });
  return { gateway, clock, primary: a, fallback: b };
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

test('a successful call returns the response, usage priced from the table, and the model that answered', async (t) => {
  const { gateway, primary } = await setup(t, [ok('hello')]);
  const { raw, ...result } = await gateway.call(callOf());
  // The provider's own body is kept for the run's OpenAI-compatible endpoint (README "Bring your own agent").
  assert.equal((raw as { id?: string } | undefined)?.id, 'chatcmpl-1');
  // 1000·2/1e6 + 200·8/1e6
  assert.deepEqual(result, { response: { content: 'hello', tool_calls: [] }, usage: { input_tokens: 1000, output_tokens: 200, cost_usd: 0.0036 }, model: 'primary/m', degraded: false, attempts: 1, cached: false });
  assert.equal(primary.requests[0]!.body.model, 'm');
});

for (const code of [408, 409, 425, 429, 500, 503]) {
  test(`HTTP ${code} is retried with backoff until the provider answers`, async (t) => {
    const { gateway, clock, primary } = await setup(t, [status(code), status(code), ok()]);
    const result = await gateway.call(callOf());
    assert.equal(primary.requests.length, 3);
    assert.equal(result.attempts, 3);
    // random 0.5 of the ceilings 1s and 2s
    assert.deepEqual(clock.sleeps, [500, 1000]);
  });
}

for (const [code, category] of [[400, 'bad_request'], [401, 'auth'], [403, 'auth'], [404, 'bad_request'], [422, 'bad_request']] as const) {
  test(`HTTP ${code} fails at once as ${category}, with no retry and no fallback`, async (t) => {
    const { gateway, clock, primary, fallback } = await setup(t, [status(code)], [ok()]);
    const err = await rejection(gateway.call(callOf({ fallbackModels: ['backup/m'] })));
    assert.equal(err.failure.category, category);
    assert.equal(err.status, code);
    assert.equal(err.message, `primary/m: HTTP ${code}: status ${code}`);
    assert.equal(primary.requests.length, 1);
    assert.equal(fallback.requests.length, 0);
    assert.deepEqual(clock.sleeps, []);
  });
}

test('Retry-After is honoured, in seconds or as a date, and capped at max_delay', async (t) => {
  const { gateway, clock, primary } = await setup(t, [status(429, { 'retry-after': '7' }), status(503, { 'retry-after': 'Thu, 01 Jan 2026 00:00:20 GMT' }), status(429, { 'retry-after': '3600' }), ok()]);
  const result = await gateway.call(callOf({ retry: { attempts: 4, baseDelayMs: 1000, maxDelayMs: 30_000 } }));
  assert.equal(result.attempts, 4);
  assert.equal(primary.requests.length, 4);
  // The date is 20s after the manual clock's start, which had advanced 7s by then.
  assert.deepEqual(clock.sleeps, [7000, 13_000, 30_000]);
});

test('a provider that never answers fails with timeout within its timeout and leaves no timer behind', async (t) => {
  const { gateway, primary } = await setup(t, ['hang'], [], { timeoutMs: 150 });
  const timersBefore = activeTimers();
  // The provider never answers: only the 150 ms timeout can end this call.
  const err = await rejection(gateway.call(callOf({ critical: true, retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } })));
  assert.equal(err.failure.category, 'provider_error');
  assert.equal(err.failure.availability, true);
  assert.ok(err.cause instanceof ModelCallError && err.cause.failure.category === 'timeout');
  assert.match(err.message, /no complete reply within 150ms/);
  await primary.requests[0]!.closed;
  assert.equal(activeTimers(), timersBefore);
});

test('a 200 that is not a completion is retried', async (t) => {
  const { gateway, primary } = await setup(t, [{ body: '{"choices": "nope"' }, ok('second time')]);
  const result = await gateway.call(callOf());
  assert.equal(result.response.content, 'second time');
  assert.equal(primary.requests.length, 2);
});

test('exhausted retries fall back to the next model, which answers, and the result is degraded', async (t) => {
  const { gateway, primary, fallback } = await setup(t, [status(503), status(503)], [ok('from backup')], { circuit: { failureThreshold: 10, windowMs: 60_000, cooldownMs: 30_000 } });
  const result = await gateway.call(callOf({ fallbackModels: ['backup/m'], retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 10 } }));
  assert.equal(result.model, 'backup/m');
  assert.equal(result.degraded, true);
  assert.equal(result.attempts, 3);
  assert.equal(result.usage.cost_usd, 0, 'backup/m has no price');
  assert.equal(primary.requests.length, 2);
  assert.equal(fallback.requests.length, 1);
});

test('a critical call never falls back and fails as provider_error with availability', async (t) => {
  const { gateway, primary, fallback } = await setup(t, [status(503), status(503), status(503)], [ok()]);
  const err = await rejection(gateway.call(callOf({ critical: true, fallbackModels: ['backup/m'] })));
  assert.deepEqual(err.failure, { category: 'provider_error', retryable: false, retryAfterMs: null, availability: true });
  assert.equal(err.message, 'model unavailable after 3 attempt(s) (critical: no fallback): primary/m: HTTP 503: status 503');
  assert.equal(err.model, 'primary/m');
  assert.equal(primary.requests.length, 3);
  assert.equal(fallback.requests.length, 0);
});

test('the circuit opens after repeated failures, half-opens after the cooldown, and a good probe closes it', async (t) => {
  const circuit = { failureThreshold: 2, windowMs: 60_000, cooldownMs: 30_000 };
  const { gateway, clock, primary } = await setup(t, [status(503), status(503), ok('back')], [], { circuit });
  const once = { retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } };
  await rejection(gateway.call(callOf(once)));
  await rejection(gateway.call(callOf({ ...once, agent: 'other-agent' })));
  const openedAt = clock.now();
  assert.deepEqual(gateway.circuits(), [{ model: 'primary/m', state: 'open', failures: 2, opened_at: openedAt }]);

  const fastFail = await rejection(gateway.call(callOf(once)));
  assert.match(fastFail.message, /primary\/m: circuit open after 2 failure\(s\), not calling/);
  assert.equal(primary.requests.length, 2, 'an open circuit sends nothing');

  clock.advance(30_000);
  assert.equal(gateway.circuits()[0]!.state, 'half_open');
  const result = await gateway.call(callOf(once));
  assert.equal(result.response.content, 'back');
  assert.deepEqual(gateway.circuits(), [{ model: 'primary/m', state: 'closed', failures: 0, opened_at: null }]);
});

test('a failed half-open probe re-opens the circuit for another cooldown', async (t) => {
  const circuit = { failureThreshold: 1, windowMs: 60_000, cooldownMs: 30_000 };
  const { gateway, clock, primary } = await setup(t, [status(500), status(500)], [], { circuit });
  const once = { retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } };
  await rejection(gateway.call(callOf(once)));
  clock.advance(30_000);
  await rejection(gateway.call(callOf(once)));
  assert.equal(primary.requests.length, 2);
  assert.deepEqual(gateway.circuits(), [{ model: 'primary/m', state: 'open', failures: 2, opened_at: clock.now() }]);
  await rejection(gateway.call(callOf(once)));
  assert.equal(primary.requests.length, 2);
});

test('an open circuit falls back at once without spending attempts on the open model', async (t) => {
  const circuit = { failureThreshold: 1, windowMs: 60_000, cooldownMs: 30_000 };
  const { gateway, primary, fallback } = await setup(t, [status(503)], [ok('backup answer')], { circuit });
  await rejection(gateway.call(callOf({ retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 } })));
  const result = await gateway.call(callOf({ fallbackModels: ['backup/m'] }));
  assert.equal(result.model, 'backup/m');
  assert.equal(result.attempts, 1);
  assert.equal(primary.requests.length, 1);
  assert.equal(fallback.requests.length, 1);
});

test('retries and fallbacks together never make more than 10 attempts', async (t) => {
  const { gateway, primary } = await setup(t, Array.from({ length: 11 }, () => status(503)), [], { circuit: { failureThreshold: 100, windowMs: 60_000, cooldownMs: 30_000 } });
  const err = await rejection(gateway.call(callOf({ fallbackModels: ['primary/b', 'primary/c', 'primary/d'], retry: { attempts: 4, baseDelayMs: 1, maxDelayMs: 1 } })));
  assert.equal(primary.requests.length, 10);
  assert.deepEqual(primary.requests.map((r) => r.body.model), ['m', 'm', 'm', 'm', 'b', 'b', 'b', 'b', 'c', 'c']);
  assert.match(err.message, /^model unavailable after 10 attempt\(s\) \(attempt cap 10 reached\)/);
  assert.equal(err.failure.availability, true);
});

test('aborting the call during a backoff wait ends it as cancelled without another request', async (t) => {
  let entered: () => void = () => undefined;
  const waiting = new Promise<void>((resolve) => (entered = resolve));
  const blockingClock: GatewayClock = {
    now: () => 0,
    sleep: (_ms, signal) =>
      new Promise<void>((_resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        entered();
      }),
  };
  const { gateway, primary } = await setup(t, [status(503), ok()], [], { clock: blockingClock });
  const controller = new AbortController();
  const pending = rejection(gateway.call(callOf({ signal: controller.signal, fallbackModels: ['backup/m'] })));
  await waiting;
  controller.abort();
  const err = await pending;
  assert.equal(err.failure.category, 'cancelled');
  assert.equal(err.message, 'primary/m: the call was cancelled');
  assert.equal(primary.requests.length, 1);
});

test('a model whose provider is not configured fails as bad_request naming the known providers', async (t) => {
  const { gateway } = await setup(t, []);
  const err = await rejection(gateway.call(callOf({ model: 'nowhere/m' })));
  assert.equal(err.failure.category, 'bad_request');
  assert.equal(err.message, 'model "nowhere/m" names no configured provider (known: backup, primary); models are <provider>/<name>');
});

test('retries are logged with constant messages and an unpriced model is warned about once', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const server = await startFakeProvider([status(503), ok(), ok()]);
  t.after(() => server.close());
  const config = daemonConfig([openaiProvider('local', server.baseUrl)]);
  const gateway = new ModelGateway({ config, clock: new InstantClock(), random: () => 0.5, logger });
  await gateway.call(callOf({ model: 'local/free' }));
  await gateway.call(callOf({ model: 'local/free' }));
  assert.deepEqual(
    lines.map((l) => [l.msg, l.model]),
    [
      ['model call failed, retrying', 'local/free'],
      ['model has no price in agentd.yaml, its cost counts as 0', 'local/free'],
    ],
  );
  assert.equal(lines[0]!.delayMs, 500);
  assert.equal(lines[0]!.status, 503);
});
