import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { decideRunRetry } from '../src/core/run-retry.js';
import { AgentdFailure, AlreadyResolvedError, BadNameError, BadTaskError, ConfigError, ERROR_CATEGORIES, failureOf, isRetryable, NotFoundError, UsageError } from '../src/errors.js';
import { EvalSetError } from '../src/eval/cases.js';
import { ModelCallError } from '../src/model/types.js';
import type { HistoryLine } from '../src/store/history.js';
import { addOutboxItem, newItemId, resolveOutboxItem } from '../src/store/outbox.js';
import { HomePaths } from '../src/store/paths.js';
import type { DeadLetterRecord } from '../src/store/dead-letters.js';
import { FAST_CONFIG, inHome, untilInFolder, withDaemon } from './helpers/support.js';
import { startStandIn, TestHome, type StandIn } from './helpers/home.js';

/** One error taxonomy (README "Errors"): category, retryable and code on every failure. */

describe('the error taxonomy', () => {
  it('every error class has a literal name, a stable code, a category from the README, retryable and context', () => {
    const errors: AgentdFailure[] = [
      new BadNameError('agent', '../x'),
      new ConfigError('agentd.yaml', ['colour is not a known key']),
      new BadTaskError('agents/a/inbox/t.json', ['goal is required']),
      new UsageError('choose one decision'),
      new NotFoundError('no outbox item a:0001'),
      new AlreadyResolvedError('a:0001', 'deny'),
      new EvalSetError(['cases.yaml: expect is required']),
      new ModelCallError('openai/x: 401', { category: 'auth', retryable: false, retryAfterMs: null, availability: false }, 'openai/x', 401),
    ];
    const seen = errors.map((e) => [e.name, e.code, e.category, e.retryable]);
    assert.deepEqual(seen, [
      ['BadNameError', 'bad_name', 'bad_input', false],
      ['ConfigError', 'config_error', 'bad_input', false],
      ['BadTaskError', 'bad_input', 'bad_input', false],
      ['UsageError', 'usage', 'bad_input', false],
      ['NotFoundError', 'not_found', 'bad_input', false],
      ['AlreadyResolvedError', 'already_resolved', 'bad_input', false],
      ['EvalSetError', 'bad_eval_set', 'bad_input', false],
      ['ModelCallError', 'model_call_failed', 'auth', false],
    ]);
    for (const e of errors) {
      assert.ok(e instanceof Error && e instanceof AgentdFailure, e.name);
      assert.ok((ERROR_CATEGORIES as readonly string[]).includes(e.category), `${e.name}: ${e.category} is in the README's list`);
      assert.deepEqual(e.toFailure(), { category: e.category, code: e.code, retryable: e.retryable, message: e.message });
    }
    assert.deepEqual(new ConfigError('agentd.yaml', ['x is bad']).context, { file: 'agentd.yaml', problems: ['x is bad'] });
    assert.deepEqual(new AlreadyResolvedError('a:0001', 'deny').context, { item_id: 'a:0001', decision: 'deny' });
    const cause = new Error('socket hang up');
    assert.equal(new ModelCallError('m: failed', { category: 'provider_error', retryable: true, retryAfterMs: null, availability: true }, 'm', null, { cause }).cause, cause);
  });

  it('a model failure keeps its classification: a 5xx provider_error is retryable, a 4xx one is not', () => {
    const fiveHundred = new ModelCallError('m: 500', { category: 'provider_error', retryable: true, retryAfterMs: null, availability: true }, 'm', 500);
    const fourOhTwo = new ModelCallError('m: 402', { category: 'provider_error', retryable: false, retryAfterMs: null, availability: false }, 'm', 402);
    assert.deepEqual([fiveHundred.retryable, fourOhTwo.retryable], [true, false]);
  });

  it('bad input, invalid args, auth and bad request are the categories that are not retryable', () => {
    assert.deepEqual(ERROR_CATEGORIES.filter((c) => !isRetryable(c)), ['auth', 'bad_request', 'invalid_args', 'bad_input']);
    assert.deepEqual(failureOf('auth', 'key refused'), { category: 'auth', code: 'auth', retryable: false, message: 'key refused' });
    assert.deepEqual(failureOf('crash', 'exit 3'), { category: 'crash', code: 'crash', retryable: true, message: 'exit 3' });
  });

  it('a failed run: a retryable one waits and tries again until max_attempts, one a person must fix dead-letters at once', () => {
    const policy = { maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 30_000 };
    const half = () => 0.5;
    assert.deepEqual(decideRunRetry('crash', 0, policy, half), { kind: 'retry', attempts: 1, delayMs: 500 });
    assert.deepEqual(decideRunRetry('timeout', 1, policy, half), { kind: 'retry', attempts: 2, delayMs: 1000 });
    assert.deepEqual(decideRunRetry('crash', 2, policy, half), { kind: 'dead_letter', attempts: 3, reason: 'attempts_used' });
    for (const category of ['auth', 'bad_request', 'invalid_args', 'bad_input']) {
      assert.deepEqual(decideRunRetry(category, 0, policy, half), { kind: 'dead_letter', attempts: 1, reason: 'not_retryable' }, category);
    }
  });

  it('resolving an item someone already resolved throws AlreadyResolvedError, not a bare Error', async () => {
    const home = await TestHome.create();
    try {
      const paths = new HomePaths(home.root);
      const id = newItemId('billing');
      await addOutboxItem(paths, { id, agent: 'billing', task_id: 't1', run_id: null, kind: 'uncertain', reason: 'which vendor?', status: 'open', created_at: new Date().toISOString() });
      await resolveOutboxItem(paths, id, { decision: 'deny', by: 'bob', at: new Date().toISOString() });
      await assert.rejects(resolveOutboxItem(paths, id, { decision: 'approve', by: 'eve', at: new Date().toISOString() }), (err: unknown) => {
        assert.ok(err instanceof AlreadyResolvedError);
        assert.equal(err.code, 'already_resolved');
        assert.equal(err.decision, 'deny');
        assert.match(err.message, new RegExp(`outbox item ${id} is already resolved \\(deny\\)`));
        return true;
      });
    } finally {
      await home.remove();
    }
  });
});

describe('a run that fails for a reason a person must fix', () => {
  let standIn: StandIn | undefined;
  after(() => standIn?.close());

  it('an agent that gives up after its model call was refused with 401 is dead-lettered after one run, with category auth, although max_attempts is 3', async () => {
    standIn = await startStandIn(() => ({ status: 401, body: { error: { message: 'invalid api key' } } }));
    const config = `${FAST_CONFIG}providers:\n  openai: { kind: openai, base_url: "${standIn.url}", api_key_env: OPENAI_API_KEY }\n`;
    await inHome(config, async (home) => {
      await home.scriptedAgent('keyless', { model: 'openai/gpt-test', max_attempts: 3 });
      await home.inbox('keyless', 'k1', { goal: 'ask the model', input: { script: [{ model: { messages: [{ role: 'user', content: 'hi' }] } }, { exit: 3 }] } });
      await withDaemon(
        home,
        async (daemon) => {
          await daemon.runEnded('keyless', 1);
          const record = await untilInFolder(
            home.path('state/dead-letter/keyless'),
            () => home.readJson<DeadLetterRecord>('state/dead-letter/keyless/k1.json').catch(() => null),
            (r) => r !== null,
            'the dead letter of k1',
          );
          assert.equal(record!.attempts, 1, 'not retried');
          assert.deepEqual({ ...record!.error, message: undefined }, { category: 'auth', code: 'auth', retryable: false, message: undefined });
          assert.match(record!.error.message, /401/);
          const history = await home.readLines<HistoryLine>('state/keyless/history.jsonl');
          assert.deepEqual(history.map((h) => [h.status, h.error_category]), [['dead_letter', 'auth']]);
          assert.equal(standIn!.requests.length, 1, 'a refused key is not retried either');
        },
        { OPENAI_API_KEY: 'sk-wrong' },
      );
    });
  });
});
