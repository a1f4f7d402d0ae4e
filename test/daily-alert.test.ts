import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { crossesDailyAlert, dailyAlertText } from '../src/run/daily-alert.js';
import type { OutboxFile } from '../src/store/outbox.js';
import { completion, startStandIn } from './helpers/home.js';
import { FAST_CONFIG, inHome, withDaemon } from './helpers/support.js';

/** The daily cost alert while the run goes on, its wording, and the handoff of a daily-cap stop (README "Budgets"). */

/** Spends $0.08 a call; after the second (80% of $0.20) it looks for the alert, then spends until refused. */
const SPENDER = `import fs from 'node:fs';
import path from 'node:path';
import { runAgent } from 'agentd/sdk';

runAgent(async (ctx) => {
  const ask = () => ctx.model({ messages: [{ role: 'user', content: 'hi' }] });
  await ask();
  await ask();
  const file = path.join(process.env.AGENTD_HOME, 'outbox', 'spender', 'outbox.json');
  let seen = false;
  // Bounded: the daemon writes the alert right after the call that crossed the line.
  for (let i = 0; i < 200 && !seen; i++) {
    try {
      seen = JSON.parse(fs.readFileSync(file, 'utf8')).items.some((item) => item.kind === 'budget_alert');
    } catch {}
    if (!seen) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await ctx.checkpoint({ alert_seen_mid_run: seen });
  ctx.onStop(() => ({ summary: 'spent the day', next_steps: ['wait for tomorrow'], state: { alert_seen_mid_run: seen } }));
  for (;;) await ask();
});
`;

interface Handoff {
  reason: string;
  summary: string | null;
  used: Record<string, number>;
  limits: Record<string, number>;
  checkpoint: unknown;
}

describe('the daily cost alert', () => {
  it('says nothing is held back while under the cap, and that calls are refused once the cap is reached', () => {
    assert.equal(crossesDailyAlert(0.08, 0.16, 0.2), true);
    assert.match(dailyAlertText('a', 0.16, 0.2).question, /^Nothing is held back yet; at \$0\.2 today, a's model calls are refused until the UTC day ends/);
    assert.match(dailyAlertText('a', 0.24, 0.2).question, /^The daily cap is reached: a's model calls are refused until the UTC day ends/);
  });

  it('budget_alert is written when the 80% mark is crossed, during the run; the daily-cost handoff shows the daily cap and today\'s spend', async () => {
    const standIn = await startStandIn(() => ({ body: completion('ok', { prompt_tokens: 40, completion_tokens: 20 }) }));
    try {
      const config = `${FAST_CONFIG}
providers:
  stand:
    kind: openai
    base_url: ${standIn.url}
models:
  stand/m1: { input_usd_per_mtok: 1000, output_usd_per_mtok: 2000 }
`;
      await inHome(config, async (home) => {
        await home.write('agents/spender/agent.mjs', SPENDER);
        await home.write('agents/spender/agent.json', { version: '1', command: ['node', 'agent.mjs'], model: 'stand/m1', budget: { max_steps: 50, max_cost_usd: 5, daily_cost_usd: 0.2 } });
        await home.inbox('spender', 's1', { goal: 'spend' });
        await withDaemon(home, async (daemon) => {
          assert.equal((await daemon.runEnded('spender')).outcome, 'limit');
          const handoff = await home.readJson<Handoff>('outbox/spender/handoff.json');
          assert.deepEqual(handoff.checkpoint, { alert_seen_mid_run: true }, 'the alert was in the outbox before the run ended');
          assert.equal(handoff.reason, 'daily_cost');
          assert.equal(handoff.summary, 'spent the day');
          assert.equal(handoff.limits.daily_cost_usd, 0.2);
          assert.ok(handoff.used.daily_cost_usd! >= 0.16 - 1e-9, JSON.stringify(handoff.used));
          const outbox = await home.readJson<OutboxFile>('outbox/spender/outbox.json');
          const alerts = outbox.items.filter((i) => i.kind === 'budget_alert');
          assert.equal(alerts.length, 1);
          assert.match(alerts[0]!.reason, /^spender has spent \$0\.1600 today \(UTC\), past 80% of its daily_cost_usd \$0\.2$/);
          assert.match(alerts[0]!.question ?? '', /^Nothing is held back yet/);
          const limit = outbox.items.find((i) => i.kind === 'limit');
          assert.match(limit?.question ?? '', /daily_cost_usd \(\$0\.2\) is spent/);
        });
      });
    } finally {
      await standIn.close();
    }
  });
});
