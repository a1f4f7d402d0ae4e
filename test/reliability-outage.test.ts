import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HistoryLine } from '../src/store/history.js';
import { completion, startStandIn } from './helpers/home.js';
import { inHome, untilInFolder, withDaemon } from './helpers/support.js';
import { gateModels, outageRetryAt } from '../src/run/outage.js';

/**
 * Issue 11 item 7: a model outage is not the task's fault. The stand-in
 * provider is down for its first DOWN_REQUESTS requests (a "2 minute" outage
 * on shortened clocks: a 300 ms circuit cooldown), with 50 tasks queued on 5 agents.
 */
const AGENTS = ['o1', 'o2', 'o3', 'o4', 'o5'];
const PER_AGENT = 10;
const DOWN_REQUESTS = 30;
const MAX_PARALLEL = 3;

describe('a model outage with 50 queued tasks on 5 agents', () => {
  it('dead-letters nothing, loses nothing, finishes all in order after recovery, one half-open probe at a time', async () => {
    let seen = 0;
    let inFlight = 0;
    let maxInFlightWhileOpen = 0;
    const standIn = await startStandIn(() => {
      seen++;
      if (seen <= DOWN_REQUESTS) return { status: 500, body: { error: { message: 'down' } }, delayMs: 20 };
      return { body: completion('fine'), delayMs: 5 };
    });
    const counting = standIn.url;
    try {
      await inHome(
        `
defaults:
  retry: { attempts: 2, base_delay: 5ms, max_delay: 20ms }
  stop_grace: 1s
lock_stale: 2s
max_parallel_runs: ${MAX_PARALLEL}
circuit: { failures: 3, window: 10s, cooldown: 300ms }
providers:
  stand: { kind: openai, base_url: ${counting} }
`,
        async (home) => {
          for (const agent of AGENTS) {
            await home.scriptedAgent(agent, { model: 'stand/m', max_attempts: 2 });
            for (let i = 0; i < PER_AGENT; i++) {
              await home.inbox(agent, `${agent}-t${i}`, {
                created_at: new Date(Date.now() - 60_000 + i * 1000).toISOString(),
                goal: 'needs the model',
                input: { script: [{ model: { messages: [{ role: 'user', content: 'hi' }] }, or_exit: 1 }, { result: 'ok' }] },
              });
            }
          }
          standIn.onRequest = (phase) => {
            inFlight += phase === 'start' ? 1 : -1;
            if (phase === 'start' && seen > 10 && seen <= DOWN_REQUESTS) maxInFlightWhileOpen = Math.max(maxInFlightWhileOpen, inFlight);
          };
          await withDaemon(home, async (daemon) => {
            for (const agent of AGENTS) {
              await untilInFolder(home.path(`state/${agent}/done`), () => home.list(`state/${agent}/done`), (n) => n.length === PER_AGENT, `all of ${agent}'s tasks done`, 120_000);
            }
            let running = 0;
            let maxRunning = 0;
            for (const l of daemon.logs) {
              if (l.msg === 'run started') maxRunning = Math.max(maxRunning, ++running);
              if (l.msg === 'run ended' || l.msg === 'lease lost; the run is abandoned') running--;
            }
            assert.ok(maxRunning <= MAX_PARALLEL, `max_parallel_runs respected (${maxRunning})`);
          });
          assert.ok(seen > DOWN_REQUESTS, 'the outage happened and ended');
          assert.deepEqual(await home.list('state/dead-letter'), [], '0 dead-lettered');
          for (const agent of AGENTS) {
            assert.deepEqual(await home.list(`agents/${agent}/inbox`), [], `nothing of ${agent} left queued`);
            const done = (await home.readLines<HistoryLine>(`state/${agent}/history.jsonl`)).filter((l) => l.status === 'done').map((l) => l.task_id);
            assert.deepEqual(done, Array.from({ length: PER_AGENT }, (_, i) => `${agent}-t${i}`), `${agent}'s tasks done once each, in order`);
          }
          assert.ok(maxInFlightWhileOpen <= 1, `one half-open probe at a time at the provider (${maxInFlightWhileOpen})`);
        },
      );
    } finally {
      await standIn.close();
    }
  });
});

describe('outageRetryAt and gateModels', () => {
  it('a task that met an outage waits for the circuit, and at least the minimum delay', () => {
    assert.equal(outageRetryAt(1300, 1100, 50), 1300);
    assert.equal(outageRetryAt(null, 1400, 50), 1450);
  });
  const view = (states: Record<string, string>, probing: string[] = [], readyAt = 5000) => ({
    state: (m: string) => states[m] ?? 'closed',
    readyAt: () => readyAt,
    probing: (m: string) => probing.includes(m),
  });
  it('a closed model lets the run go; a half-open one once, as its probe; open ones make it wait for their cooldown', () => {
    assert.deepEqual(gateModels(['a'], view({}), 1000, 200), { kind: 'go', probe: null });
    assert.deepEqual(gateModels(['a'], view({ a: 'half_open' }), 1000, 200), { kind: 'go', probe: 'a' });
    assert.deepEqual(gateModels(['a'], view({ a: 'half_open' }, ['a']), 1000, 200), { kind: 'wait', untilMs: 1200 });
    assert.deepEqual(gateModels(['a'], view({ a: 'open' }), 1000, 200), { kind: 'wait', untilMs: 5000 });
    assert.deepEqual(gateModels(['a', 'b'], view({ a: 'open' }), 1000, 200), { kind: 'go', probe: null }, 'the fallback is up');
    assert.deepEqual(gateModels([], view({}), 1000, 200), { kind: 'go', probe: null });
  });
});
