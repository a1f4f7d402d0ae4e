import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
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
