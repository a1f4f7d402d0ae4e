import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import pino from 'pino';
import { checkHttpAddress, isLoopbackHost } from '../src/config/http-address.js';
import { decideHealth, probeWritable, type HealthFacts } from '../src/observe/health.js';
import { startObserveServer } from '../src/observe/http-server.js';
import { DaemonMetrics } from '../src/observe/metrics.js';
import { FAST_CONFIG, freePort, inHome } from './helpers/support.js';
import type { DaemonProcess } from './helpers/home.js';

/**
 * /healthz and /metrics (DESIGN.md section 11): loopback only unless allowed,
 * served by the daemon while it runs, closed when it stops.
 */

async function get(port: number, path: string): Promise<{ status: number; body: string; contentType: string | null }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') };
}

/** The value of one sample line (`name{labels} value`), or null when absent. */
function sample(metrics: string, series: string): number | null {
  const line = metrics.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

const OK_FACTS: HealthFacts = { state: 'running', watcher: 'alive', schedulerAccepting: true, sinceTickMs: 100, tickIntervalMs: 2000, writable: { ok: true } };
const silent = pino({ level: 'silent' });

describe('the http address', () => {
  it('accepts loopback addresses and refuses others unless remote is allowed', () => {
    for (const host of ['127.0.0.1', '127.3.2.1', 'localhost', '::1', '[::1]']) assert.ok(isLoopbackHost(host), host);
    for (const host of ['0.0.0.0', '10.0.0.1', '192.168.1.2', 'example.com', '::', '128.0.0.1']) assert.ok(!isLoopbackHost(host), host);
    assert.deepEqual(checkHttpAddress('127.0.0.1:9464', false, '--http'), { ok: true, address: { host: '127.0.0.1', port: 9464 } });
    assert.deepEqual(checkHttpAddress('[::1]:9464', false, '--http'), { ok: true, address: { host: '::1', port: 9464 } });
    const refused = checkHttpAddress('0.0.0.0:9464', false, '--http');
    assert.equal(refused.ok, false);
    assert.match(!refused.ok ? refused.problem : '', /^--http "0\.0\.0\.0:9464" is not a loopback address.*--http-allow-remote/);
    assert.deepEqual(checkHttpAddress('0.0.0.0:9464', true, '--http'), { ok: true, address: { host: '0.0.0.0', port: 9464 } });
    const malformed = checkHttpAddress('127.0.0.1', false, 'agentd.yaml: http');
    assert.match(!malformed.ok ? malformed.problem : '', /^agentd\.yaml: http "127\.0\.0\.1" must be host:port/);
    assert.equal(checkHttpAddress('127.0.0.1:70000', false, '--http').ok, false);
  });
});

describe('the health verdict', () => {
  it('is ok only while the daemon runs, its watcher and scheduler are alive and the home is writable', () => {
    assert.deepEqual(decideHealth(OK_FACTS), { ok: true, reasons: [] });
    assert.deepEqual(decideHealth({ ...OK_FACTS, watcher: 'off' }), { ok: true, reasons: [] });
    const bad = decideHealth({ ...OK_FACTS, state: 'stopping', watcher: 'closed', schedulerAccepting: false, sinceTickMs: 7000, writable: { ok: false, problem: 'EROFS' } });
    assert.equal(bad.ok, false);
    assert.deepEqual(bad.reasons, [
      'daemon is stopping',
      'file watcher is not running: edits to agents/ and outbox/ go unnoticed',
      'scheduler is not accepting work',
      "scheduler loop stalled: the daemon's timer last ran 7s ago",
      'home not writable: EROFS',
    ]);
  });

  it('a failing write probe makes /healthz answer 503 with the reason', async () => {
    const writable = await probeWritable('/nonexistent-agentd-home/state/.healthz-1');
    assert.equal(writable.ok, false);
    const server = await startObserveServer(
      { host: '127.0.0.1', port: 0 },
      {
        health: async () => ({ ...decideHealth({ ...OK_FACTS, writable }), details: { state: 'running' } }),
        metrics: async () => ({ contentType: 'text/plain', body: '' }),
      },
      silent,
    );
    try {
      const res = await get(server.address.port, '/healthz');
      assert.equal(res.status, 503);
      const body = JSON.parse(res.body) as { status: string; reasons: string[]; state: string };
      assert.equal(body.status, 'unavailable');
      assert.equal(body.state, 'running');
      assert.match(body.reasons[0] ?? '', /^home not writable: ENOENT writing \/nonexistent-agentd-home\/state\/\.healthz-1/);
      assert.equal((await get(server.address.port, '/nope')).status, 404);
      const post = await fetch(`http://127.0.0.1:${server.address.port}/healthz`, { method: 'POST' });
      assert.equal(post.status, 405);
    } finally {
      await server.close();
    }
  });
});

describe('metrics', () => {
  it('counts a run, its spend and the model latency, and reads gauges when scraped', async () => {
    let liveSteps = 2;
    const run = { agent: 'a', taskId: 't', runId: 'r1', startedAt: 0, progress: () => ({ run: { steps: liveSteps, toolCalls: 0, inputTokens: 10, outputTokens: 5, costUsd: 0.01 }, taskSteps: liveSteps, taskCostUsd: 0.01, maxSteps: 50, maxCostUsd: 2 }) };
    let live = [run];
    const metrics = new DaemonMetrics({
      homeCounts: async () => ({ at: 0, agents: { a: { queue: 3, openItems: 1, deadLetters: 2, spendTodayUsd: 0.5 } } }),
      circuits: () => [{ model: 'p/m', state: 'open', failures: 5, opened_at: 0 }],
      toolCircuits: () => [{ model: 'billing/refund', state: 'half_open', failures: 3, opened_at: 0 }],
      liveRuns: () => live,
    });
    metrics.modelCall('p/m', 1500, 'ok');
    let text = await metrics.render();
    assert.equal(sample(text, 'agentd_steps_total{agent="a"}'), 2, 'a live run counts as it goes');
    assert.equal(sample(text, 'agentd_queue_depth{agent="a"}'), 3);
    assert.equal(sample(text, 'agentd_outbox_open_items{agent="a"}'), 1);
    assert.equal(sample(text, 'agentd_dead_letters{agent="a"}'), 2);
    assert.equal(sample(text, 'agentd_circuit_state{model="p/m"}'), 2);
    assert.equal(sample(text, 'agentd_tool_circuit_state{tool="billing/refund"}'), 1);
    assert.equal(sample(text, 'agentd_model_call_duration_seconds_bucket{le="2.5",model="p/m",outcome="ok"}'), 1);
    assert.equal(sample(text, 'agentd_model_call_duration_seconds_bucket{le="1",model="p/m",outcome="ok"}'), 0);
    liveSteps = 3;
    live = [];
    metrics.runEnded({ run, outcome: 'done', error: null, spend: run.progress().run });
    text = await metrics.render();
    assert.equal(sample(text, 'agentd_runs_total{agent="a",status="done"}'), 1);
    assert.equal(sample(text, 'agentd_steps_total{agent="a"}'), 3, 'the end adds only what the scrape had not counted');
    assert.equal(sample(text, 'agentd_tokens_total{agent="a",type="input"}'), 10);
    assert.equal(sample(text, 'agentd_tokens_total{agent="a",type="output"}'), 5);
    assert.equal(sample(text, 'agentd_cost_usd_total{agent="a"}'), 0.01);
  });
});

describe('agentd start --http', () => {
  it('serves /healthz and /metrics on 127.0.0.1, counts runs, and closes the port on stop', async () => {
    // The sweep as a net for a file event a loaded machine's watcher never delivered (README "Scale").
    await inHome(`${FAST_CONFIG}sweep_interval: 2s\n`, async (home) => {
      await home.scriptedAgent('a1');
      const port = await freePort();
      const daemon: DaemonProcess = home.startDaemon({}, ['--http', `127.0.0.1:${port}`]);
      try {
        const listening = await daemon.waitForLog((l) => l.msg === 'http listening', 'http listening');
        assert.equal(listening.address, `127.0.0.1:${port}`);
        await daemon.started();

        const health = await get(port, '/healthz');
        assert.equal(health.status, 200, health.body);
        const body = JSON.parse(health.body) as { status: string; state: string; pid: number };
        assert.equal(body.status, 'ok');
        assert.equal(body.state, 'running');
        assert.equal(body.pid, daemon.child.pid);

        const task = { goal: 'hi', input: { script: [{ model: { messages: [{ role: 'user', content: 'hi' }] } }, { result: 'ok' }] } };
        await home.inbox('a1', 'first', task);
        await daemon.runEnded('a1', 1);
        const first = await get(port, '/metrics');
        assert.equal(first.status, 200);
        assert.match(first.contentType ?? '', /^text\/plain; version=0\.0\.4/);
        for (const name of [
          'agentd_runs_total',
          'agentd_steps_total',
          'agentd_tokens_total',
          'agentd_cost_usd_total',
          'agentd_model_call_duration_seconds',
          'agentd_queue_depth',
          'agentd_outbox_open_items',
          'agentd_circuit_state',
        ]) {
          assert.match(first.body, new RegExp(`^# TYPE ${name} `, 'm'), `${name} is exported`);
        }
        assert.equal(sample(first.body, 'agentd_runs_total{agent="a1",status="done"}'), 1);
        assert.equal(sample(first.body, 'agentd_steps_total{agent="a1"}'), 1);
        assert.equal(sample(first.body, 'agentd_circuit_state{model="mock/echo"}'), 0);
        assert.equal(sample(first.body, 'agentd_model_call_duration_seconds_count{model="mock/echo",outcome="ok"}'), 1);
        assert.equal(sample(first.body, 'agentd_queue_depth{agent="a1"}'), 0);

        await home.inbox('a1', 'second', task);
        await daemon.runEnded('a1', 2);
        const second = await get(port, '/metrics');
        assert.equal(sample(second.body, 'agentd_runs_total{agent="a1",status="done"}'), 2, 'the run counter increases with each run');
        assert.equal(sample(second.body, 'agentd_steps_total{agent="a1"}'), 2);
      } finally {
        assert.equal((await daemon.stop()).code, 0);
      }
      await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'the port is closed once the daemon has stopped');
    });
  });

  it('refuses a non-loopback address from --http or agentd.yaml with exit 2, unless allowed', async () => {
    await inHome(undefined, async (home) => {
      const flag = await home.cli(['start', '--http', '0.0.0.0:9464']);
      assert.equal(flag.code, 2);
      assert.match(flag.stderr, /--http "0\.0\.0\.0:9464" is not a loopback address/);
      const malformed = await home.cli(['start', '--http', 'localhost']);
      assert.equal(malformed.code, 2);
      assert.match(malformed.stderr, /--http "localhost" must be host:port/);

      await home.write('agentd.yaml', 'http: 10.1.2.3:9464\n');
      const yaml = await home.cli(['start']);
      assert.equal(yaml.code, 2);
      assert.match(yaml.stderr, /agentd\.yaml: http "10\.1\.2\.3:9464" is not a loopback address.*http_allow_remote: true/);
      assert.equal(await home.exists('state/daemon.json'), false, 'a daemon that never started writes no status');
    });
  });

  it('answers 503 naming the reason while the home is not writable', { skip: process.getuid?.() === 0 ? 'root writes into a read-only folder' : false }, async () => {
    await inHome(FAST_CONFIG, async (home) => {
      const port = await freePort();
      const daemon = home.startDaemon({}, ['--http', `127.0.0.1:${port}`]);
      try {
        await daemon.started();
        assert.equal((await get(port, '/healthz')).status, 200);
        await fs.chmod(home.path('state'), 0o555);
        const res = await get(port, '/healthz');
        assert.equal(res.status, 503);
        assert.match(res.body, /home not writable: EACCES/);
      } finally {
        await fs.chmod(home.path('state'), 0o755);
        await daemon.stop();
      }
    });
  });
});
