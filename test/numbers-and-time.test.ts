import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { MAX_ARMED_MS, MAX_TIMER_MS, timerDelay } from '../src/config/delay-bounds.js';
import { FAST_CONFIG, inHome, untilInFolder, withDaemon } from './helpers/support.js';

/** Numbers an agent reports and times the daemon waits for: nothing overflows. */

describe('absurd usage', () => {
  it('a usage report of 1e308 is counted as the budget maximum, stops the run on that budget, and is logged and traced', async () => {
    await inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('a', { budget: { max_cost_usd: 1, max_tokens: 1000 } });
      const huge = { usage: { input_tokens: 1e308, output_tokens: 1e308, cost_usd: 1e308 } };
      await home.inbox('a', 't1', { goal: 'x', input: { script: [huge, { sleep: 60_000 }, { result: 'never' }] } });
      await withDaemon(home, async (daemon) => {
        const warn = await daemon.waitForLog((l) => l.msg === 'absurd usage counted as the budget maximum', 'the warning');
        assert.deepEqual(warn.counted, { input_tokens: 1000, output_tokens: 0, cost_usd: 1 });
        const ended = await daemon.runEnded('a');
        assert.equal(ended.outcome, 'limit', JSON.stringify(ended));
        const spend = await untilInFolder(home.path('state/a'), () => home.readJson<{ cost_usd: unknown }>('state/a/daily-spend.json'), () => true, 'daily-spend.json');
        assert.equal(spend.cost_usd, 1, 'the day spend is the cap, never null (Infinity) read back as 0');
        const [history] = await home.readLines<{ cost_usd: unknown; status: string }>('state/a/history.jsonl');
        assert.equal(history?.cost_usd, 1);
        const traces = await home.list('state/a/traces');
        const spans = (await fs.readFile(home.path('state/a/traces', traces[0]!), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { name: string; attributes: Record<string, unknown> });
        const refused = spans.filter((s) => s.name === 'usage refused');
        assert.ok(refused.length >= 1, 'the trace says the usage was refused');
        assert.equal(refused[0]!.attributes['agentd.usage.source'], 'usage message');
      });
    });
  });
});

describe('long waits', () => {
  it('timerDelay keeps every delay within setTimeout range', () => {
    assert.equal(timerDelay(-5), 0);
    assert.equal(timerDelay(Number.NaN), 0);
    assert.equal(timerDelay(1500), 1500);
    assert.equal(timerDelay(40 * 86_400_000), MAX_ARMED_MS);
    assert.equal(timerDelay(Infinity), MAX_ARMED_MS);
    assert.ok(MAX_ARMED_MS < MAX_TIMER_MS);
  });

  it('retry.max_delay over 24h is a config error naming the file and field', async () => {
    await inHome('defaults:\n  retry: { max_delay: 30d }\n', async (home) => {
      await home.scriptedAgent('a', { retry: { base_delay: '2d' } });
      const r = await home.cli(['validate']);
      assert.equal(r.code, 1);
      assert.match(r.stdout + r.stderr, /agentd\.yaml: defaults\.retry\.max_delay "30d" is longer than the largest retry delay, 24h/);
    });
    await inHome(undefined, async (home) => {
      await home.scriptedAgent('a', { retry: { base_delay: '2d' } });
      const r = await home.cli(['validate']);
      assert.equal(r.code, 1);
      assert.match(r.stdout + r.stderr, /agents\/a\/agent\.json: retry\.base_delay "2d" is longer than the largest retry delay, 24h/);
    });
  });

  it('a next attempt years ahead (the clock was set back) waits on one bounded timer: no overflow warning, no busy loop', async () => {
    await inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('a');
      await home.scriptedAgent('b');
      await home.write('agents/a/current-task.json', { id: 't1', created_at: new Date().toISOString(), goal: 'x', input: { script: [{ result: 'ok' }] } });
      const checkpoint = { v: 1, task_id: 't1', attempts: 1, runs: ['r-1'], active_run: null, state: null, checkpoint_at: null, checkpoint_seq: 0, runtime_ms: 0, next_attempt_at: '2100-01-01T00:00:00.000Z', last_error: { category: 'crash', message: 'exit 1' }, agent_version: null, definition_hash: null };
      await home.write('state/a/checkpoint.json', checkpoint);
      const daemon = home.startDaemon();
      try {
        const waits = await daemon.waitForLog((l) => l.msg === 'claim waits' && l.agent === 'a', 'the claim of a to wait');
        assert.equal(waits.delayMs, MAX_ARMED_MS);
        // Another agent's task runs to the end meanwhile: by then a busy loop would have claimed a hundreds of times.
        await home.inbox('b', 'tb', { goal: 'y', input: { script: [{ result: 'ok' }] } });
        await daemon.runEnded('b');
        assert.equal(daemon.logs.filter((l) => l.msg === 'claim waits' && l.agent === 'a').length, 1);
        assert.equal(await home.exists('agents/a/current-task.json'), true);
      } finally {
        await daemon.stop();
      }
      assert.doesNotMatch(daemon.stderrText, /TimeoutOverflowWarning/);
    });
  });
});
