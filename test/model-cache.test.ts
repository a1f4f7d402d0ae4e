import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { HomePaths } from '../src/store/paths.js';
import { ModelCache, cacheKey } from '../src/model/cache.js';
import { ModelGateway } from '../src/model/gateway.js';
import type { ModelProvider, ProviderReply } from '../src/model/types.js';
import type { ModelRequest } from '../src/protocol/messages.js';
import { ManualClock } from './helpers/clock.js';
import { useCleanup } from './helpers/hooks.js';
import { daemonConfig } from './helpers/model-config.js';
import { FIXTURES } from './helpers/paths.js';

const HOUR = 3_600_000;
const cleanup = useCleanup();

async function cacheDir(): Promise<string> {
  const dir = await cleanup.tempDir('agentd-cache-');
  return path.join(dir, 'state', 'cache');
}

/** The cache folder `dir` (…/state/cache) as the home lays it out. */
function entriesIn(dir: string): HomePaths {
  return new HomePaths(path.resolve(dir, '..', '..'));
}

/** `temperature: null` leaves it out, as an agent that sets none does. */
function ask(content: string, temperature: number | null = 0): ModelRequest {
  return { messages: [{ role: 'user', content }], ...(temperature === null ? {} : { temperature }) };
}

const ANSWER = { content: '4', tool_calls: [] };

test('a stored temperature-0 response is a hit for the same model and request, whatever the key order', async () => {
  const cache = new ModelCache(entriesIn(await cacheDir()), HOUR, new ManualClock());
  assert.equal(await cache.get('mock/m', ask('2+2?')), null);
  await cache.set('mock/m', ask('2+2?'), ANSWER);
  assert.deepEqual(await cache.get('mock/m', { temperature: 0, messages: [{ content: '2+2?', role: 'user' }] }), ANSWER);
  assert.equal(await cache.get('mock/m', ask('2+3?')), null, 'another request misses');
  assert.equal(await cache.get('mock/other', ask('2+2?')), null, 'another model misses');
});

test('an entry answers until its ttl has passed, then misses', async () => {
  const clock = new ManualClock();
  const cache = new ModelCache(entriesIn(await cacheDir()), HOUR, clock);
  await cache.set('mock/m', ask('2+2?'), ANSWER);
  clock.advance(HOUR - 1);
  assert.deepEqual(await cache.get('mock/m', ask('2+2?')), ANSWER);
  clock.advance(1);
  assert.equal(await cache.get('mock/m', ask('2+2?')), null);
});

test('only temperature-0 requests are stored or answered', async () => {
  const dir = await cacheDir();
  const cache = new ModelCache(entriesIn(dir), HOUR, new ManualClock());
  for (const temperature of [0.7, null]) {
    await cache.set('mock/m', ask('2+2?', temperature), ANSWER);
    assert.equal(await cache.get('mock/m', ask('2+2?', temperature)), null);
  }
  assert.deepEqual(await fs.readdir(dir).catch(() => []), []);
});

test('an entry in the version-1 format on disk is read; a corrupt one is a miss', async () => {
  const dir = await cacheDir();
  await fs.mkdir(dir, { recursive: true });
  const request = ask('What is 2+2?');
  await fs.copyFile(path.join(FIXTURES, 'v1', 'model-cache-entry.json'), path.join(dir, `${cacheKey('mock/fixture', request)}.json`));
  const cache = new ModelCache(entriesIn(dir), HOUR, new ManualClock(Date.parse('2026-01-01T00:30:00Z')));
  assert.deepEqual(await cache.get('mock/fixture', request), { content: '4', tool_calls: [] });

  await fs.writeFile(path.join(dir, `${cacheKey('mock/fixture', request)}.json`), '{"v":1,"model":');
  assert.equal(await cache.get('mock/fixture', request), null);
});

/** A provider that counts its calls and always answers the same. */
function countingProvider(): ModelProvider & { calls: number } {
  const provider = {
    calls: 0,
    async complete(): Promise<ProviderReply> {
      provider.calls++;
      return { response: { content: `answer ${provider.calls}`, tool_calls: [] }, usage: { input_tokens: 100, output_tokens: 10 } };
    },
  };
  return provider;
}

test('through the gateway a hit is marked cached, costs nothing and does not call the provider', async () => {
  const clock = new ManualClock();
  const provider = countingProvider();
  const config = daemonConfig([], { 'fake/m': { inputUsdPerMtok: 1, outputUsdPerMtok: 2, contextWindow: null } });
  const gateway = new ModelGateway({ config, providers: { fake: provider }, clock, random: () => 0.5, cache: new ModelCache(entriesIn(await cacheDir()), HOUR, clock) });
  const call = (request: ModelRequest) => gateway.call({ agent: 'a', model: 'fake/m', fallbackModels: [], critical: false, request, signal: new AbortController().signal });

  const first = await call(ask('2+2?'));
  assert.equal(first.cached, false);
  assert.ok(first.usage.cost_usd > 0);
  const second = await call(ask('2+2?'));
  assert.deepEqual(
    { response: second.response, usage: second.usage, cached: second.cached, attempts: second.attempts, model: second.model },
    { response: first.response, usage: { input_tokens: 0, output_tokens: 0, cost_usd: 0 }, cached: true, attempts: 0, model: 'fake/m' },
  );
  assert.equal(provider.calls, 1);

  await call(ask('2+2?', 0.7));
  await call(ask('2+2?', 0.7));
  assert.equal(provider.calls, 3, 'a non-zero temperature always calls the provider');
});
