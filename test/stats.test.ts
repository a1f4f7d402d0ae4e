import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { computeStats, percentile, percentiles, type StatsReport } from '../src/observe/stats.js';
import type { HistoryLine } from '../src/store/history.js';
import { REPO_ROOT, TestHome } from './helpers/home.js';

const FIXTURE = path.join(REPO_ROOT, 'test', 'fixtures', 'v1', 'history.jsonl');
const T0 = Date.parse('2025-01-01T00:00:00.000Z');

function run(n: number, overrides: Partial<HistoryLine> = {}): HistoryLine {
  const started = new Date(T0 + n * 60_000);
  return {
    v: 1,
    run_id: `r-${n}`,
    task_id: `t-${n}`,
    agent: 'a',
    trigger: 'inbox',
    started_at: started.toISOString(),
    ended_at: new Date(started.getTime() + 1000).toISOString(),
    duration_ms: 1000,
    status: 'done',
    steps: 1,
    tool_calls: 0,
    tokens: { input: 10, output: 5 },
    cost_usd: 0.01,
    error_category: null,
    error: null,
    models: ['mock/echo'],
    agent_version: '1',
    definition_hash: 'x',
    definition_changed: false,
    degraded: false,
    ...overrides,
  };
}

async function fixtureLines(): Promise<HistoryLine[]> {
  return (await fs.readFile(FIXTURE, 'utf8')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as HistoryLine);
}

describe('stats over history lines', () => {
  it('percentiles are nearest-rank', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.deepEqual(percentiles(hundred), { p50: 50, p95: 95, p99: 99 });
    assert.deepEqual(percentiles([7]), { p50: 7, p95: 7, p99: 7 });
    assert.deepEqual(percentiles([]), { p50: null, p95: null, p99: null });
    assert.deepEqual(percentiles([40, 10, 30, 20]), { p50: 20, p95: 40, p99: 40 }, 'unsorted input is sorted numerically');
    assert.equal(percentile([1, 2, 3], 0), 1);
  });

  it('success, error and escalation rates count runs by how they ended', () => {
    const lines = [
      run(0),
      run(1),
      run(2),
      run(3),
      run(4, { status: 'failed', error_category: 'rate_limit' }),
      run(5, { status: 'failed', error_category: 'timeout' }),
      run(6, { status: 'dead_letter', error_category: 'rate_limit' }),
      run(7, { status: 'escalated' }),
      run(8, { status: 'limit', error_category: 'budget' }),
      run(9, { status: 'interrupted' }),
    ];
    const { total } = computeStats(lines, { sinceMs: null, nowMs: T0 + 3_600_000 });
    assert.equal(total.runs, 10);
    assert.equal(total.success_rate, 0.4);
    assert.equal(total.error_rate, 0.4);
    assert.equal(total.escalation_rate, 0.2, 'escalated and limit runs both asked a person');
    assert.deepEqual(total.errors_by_category, { rate_limit: { runs: 2, rate: 0.2 }, budget: { runs: 1, rate: 0.1 }, timeout: { runs: 1, rate: 0.1 } });
    assert.deepEqual(total.statuses, { done: 4, failed: 2, dead_letter: 1, escalated: 1, limit: 1, interrupted: 1 });
  });

  it('runs per minute are over --since when given, else from the first start to the last end', () => {
    const lines = [run(0), run(1), run(2), run(3)]; // 00:00 to 00:03:01
    const all = computeStats(lines, { sinceMs: null, nowMs: T0 + 3_600_000 });
    assert.equal(all.window_ms, 181_000);
    assert.equal(all.total.runs_per_minute.toFixed(3), (4 / (181 / 60)).toFixed(3));
    const hour = computeStats(lines, { sinceMs: T0 + 3_600_000 - 3_600_000, nowMs: T0 + 3_600_000 });
    assert.equal(hour.window_ms, 3_600_000);
    assert.equal(hour.total.runs_per_minute, 4 / 60);
    const late = computeStats(lines, { sinceMs: T0 + 90_000, nowMs: T0 + 3_600_000 });
    assert.equal(late.total.runs, 2, 'runs started before --since do not count');
    const one = computeStats([run(0)], { sinceMs: null, nowMs: T0 });
    assert.equal(one.total.runs_per_minute, 1, 'a window under a minute counts as a minute');
  });

  it('tokens, cost and percentiles per agent and in total, from the fixture', async () => {
    const report = computeStats(await fixtureLines(), { sinceMs: null, nowMs: Date.now() });
    assert.deepEqual(Object.keys(report.agents), ['billing', 'support']);
    const billing = report.agents.billing!;
    assert.equal(billing.runs, 3);
    assert.equal(billing.success_rate, 2 / 3);
    assert.deepEqual(billing.duration_ms, { p50: 2000, p95: 3000, p99: 3000 });
    assert.deepEqual(billing.model_latency_ms, { p50: 300, p95: 500, p99: 500, calls: 2 }, 'lines without model_latency_ms add no calls');
    assert.deepEqual(billing.tokens, { input: 350, output: 60, per_run: 410 / 3 });
    assert.equal(billing.cost_usd.total.toFixed(3), '0.035');
    const { total } = report;
    assert.equal(total.runs, 4);
    assert.equal(total.runs_per_minute, 1, 'four runs over four minutes');
    assert.deepEqual(total.duration_ms, { p50: 2000, p95: 60000, p99: 60000 });
    assert.deepEqual(total.model_latency_ms, { p50: 300, p95: 500, p99: 500, calls: 3 });
    assert.equal(total.escalation_rate, 0.25);
    assert.equal(total.cost_usd.per_run.toFixed(6), (0.036 / 4).toFixed(6));
  });
});

describe('agentd stats', () => {
  it('prints the report for a home with history, filtered by --since and --agent', async () => {
    const home = await TestHome.create();
    try {
      await home.write('state/billing/history.jsonl', (await fixtureLines()).filter((l) => l.agent === 'billing').map((l) => JSON.stringify(l)).join('\n') + '\n');
      const support = (await fixtureLines()).filter((l) => l.agent === 'support');
      const recent = run(0, { agent: 'support', run_id: 'r-recent', started_at: new Date(Date.now() - 60_000).toISOString(), ended_at: new Date().toISOString(), model_latency_ms: [250] });
      // A torn last line (a crash mid-append) is skipped.
      await home.write('state/support/history.jsonl', [...support, recent].map((l) => JSON.stringify(l)).join('\n') + '\n{"v":1,"run_id":"r-to');

      const all = await home.cli(['stats', '--json']);
      assert.equal(all.code, 0, all.stderr);
      const report = JSON.parse(all.stdout) as StatsReport;
      assert.equal(report.total.runs, 5);
      assert.equal(report.since, null);
      assert.deepEqual(Object.keys(report.agents), ['billing', 'support']);
      assert.equal(report.agents.support!.runs, 2);

      const hour = JSON.parse((await home.cli(['stats', '--since', '1h', '--json'])).stdout) as StatsReport;
      assert.equal(hour.total.runs, 1, 'only the run started within the hour');
      assert.deepEqual(Object.keys(hour.agents), ['support']);
      assert.deepEqual(hour.total.model_latency_ms, { p50: 250, p95: 250, p99: 250, calls: 1 });
      assert.equal(hour.window_ms, 3_600_000);

      const billing = JSON.parse((await home.cli(['stats', '--agent', 'billing', '--json'])).stdout) as StatsReport;
      assert.equal(billing.total.runs, 3);
      assert.deepEqual(billing.total.errors_by_category, { rate_limit: { runs: 1, rate: 1 / 3 } });

      const table = await home.cli(['stats']);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^runs +5 /m);
      assert.match(table.stdout, /errors by kind +rate_limit 20\.0% \(1\)/);
      assert.match(table.stdout, /^TOTAL +5 /m);

      const none = await home.cli(['stats', '--agent', 'nobody']);
      assert.equal(none.code, 0);
      assert.equal(none.stdout, 'no runs\n');
      const bad = await home.cli(['stats', '--since', 'soon']);
      assert.equal(bad.code, 2, 'a bad duration is bad usage');
      assert.match(bad.stderr, /--since: not a duration/);
    } finally {
      await home.remove();
    }
  });
});
