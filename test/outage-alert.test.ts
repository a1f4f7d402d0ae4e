import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CircuitInfo } from '../src/model/circuit-breaker.js';
import { outageAlertStep, type OutageTrack } from '../src/run/outage-alert.js';
import type { OutboxFile, OutboxItem } from '../src/store/outbox.js';
import { completion, startStandIn } from './helpers/home.js';
import { inHome, untilInFolder, withDaemon } from './helpers/support.js';

/**
 * Issue 11 item 7, the alert: a model down longer than outage_alert gets one
 * provider_unavailable item (not one per task or agent), closed by agentd
 * when the model answers again. outage_alert is shortened to 500 ms.
 */
const AGENTS = { a1: 'stand/m1', a2: 'stand/m1', b1: 'stand/m2', b2: 'stand/m2' } as const;
const PER_AGENT = 3;

describe('outage_alert', () => {
  it('one provider_unavailable item per model across agents and tasks, resolved by agentd after recovery', async () => {
    let down = true;
    let waiter: { atLeast: number; resolve: () => void } | null = null;
    const standIn = await startStandIn((_body, n) => {
      if (waiter && n >= waiter.atLeast) waiter.resolve();
      return down ? { status: 500, body: { error: { message: 'down' } }, delayMs: 10 } : { body: completion('fine') };
    });
    const requestsReach = (atLeast: number) => new Promise<void>((resolve) => (waiter = { atLeast, resolve }));
    try {
      await inHome(
        `
defaults:
  retry: { attempts: 2, base_delay: 5ms, max_delay: 20ms }
  stop_grace: 1s
lock_stale: 2s
outage_alert: 500ms
circuit: { failures: 2, window: 10s, cooldown: 150ms }
providers:
  stand: { kind: openai, base_url: ${standIn.url} }
`,
        async (home) => {
          for (const [agent, model] of Object.entries(AGENTS)) {
            await home.scriptedAgent(agent, { model, max_attempts: 2 });
            for (let i = 0; i < PER_AGENT; i++) {
              await home.inbox(agent, `${agent}-t${i}`, {
                created_at: new Date(Date.now() - 60_000 + i * 1000).toISOString(),
                goal: 'needs the model',
                input: { script: [{ model: { messages: [{ role: 'user', content: 'hi' }] }, or_exit: 1 }, { result: 'ok' }] },
              });
            }
          }
          await withDaemon(home, async (daemon) => {
            const opened = (model: string) => (l: { msg: string; model?: unknown }) => l.msg === 'model unavailable past outage_alert; outbox item opened' && l.model === model;
            await daemon.waitForLog(opened('stand/m1'), 'the m1 item');
            await daemon.waitForLog(opened('stand/m2'), 'the m2 item');
            // More failed probes re-open both circuits: still one item each.
            await requestsReach(standIn.requests.length + 6);
            down = false;
            for (const agent of Object.keys(AGENTS)) {
              await untilInFolder(home.path(`state/${agent}/done`), () => home.list(`state/${agent}/done`), (n) => n.length === PER_AGENT, `all of ${agent}'s tasks done`, 60_000);
            }
            const resolved = (model: string) => (l: { msg: string; model?: unknown }) => l.msg === 'model available again; outage item resolved' && l.model === model;
            await daemon.waitForLog(resolved('stand/m1'), 'the m1 item resolved');
            await daemon.waitForLog(resolved('stand/m2'), 'the m2 item resolved');
          });
          const items: OutboxItem[] = [];
          for (const agent of Object.keys(AGENTS)) {
            const file = (await home.exists(`outbox/${agent}/outbox.json`)) ? await home.readJson<OutboxFile>(`outbox/${agent}/outbox.json`) : { items: [] };
            items.push(...file.items.filter((i) => i.kind === 'provider_unavailable'));
          }
          const byModel = (model: string) => items.filter((i) => (i.details as { model: string }).model === model);
          for (const [model, agent] of [['stand/m1', 'a1'], ['stand/m2', 'b1']] as const) {
            const mine = byModel(model);
            assert.equal(mine.length, 1, `exactly one item for ${model}: ${JSON.stringify(items)}`);
            const item = mine[0]!;
            assert.equal(item.agent, agent, 'in the outbox of the first agent, by name, that uses the model');
            assert.equal(item.task_id, null, 'the item holds no task back');
            assert.equal(item.status, 'resolved');
            assert.equal(item.resolution?.by, 'agentd');
            assert.equal(item.resolution?.decision, 'continue');
          }
          assert.equal(items.length, 2);
          assert.deepEqual(await home.list('state/dead-letter'), [], '0 dead-lettered');
        },
      );
    } finally {
      await standIn.close();
    }
  });
});

describe('outageAlertStep', () => {
  const open = (model: string, opened_at: number): CircuitInfo => ({ model, state: 'open', failures: 2, opened_at });
  it('opens once past outage_alert, counting from when the model was first seen down, and closes when the circuit closes', () => {
    let tracks: Map<string, OutageTrack> = new Map();
    let step = outageAlertStep(tracks, [open('m', 1000)], 1200, 500);
    assert.deepEqual(step.actions, []);
    tracks = step.tracks;
    step = outageAlertStep(tracks, [open('m', 1400)], 1500, 500); // a failed probe re-opened it
    assert.deepEqual(step.actions, [{ kind: 'open', model: 'm', sinceMs: 1000 }]);
    tracks = step.tracks;
    step = outageAlertStep(tracks, [open('m', 1600)], 2500, 500);
    assert.deepEqual(step.actions, [], 'one item per outage');
    tracks = step.tracks;
    step = outageAlertStep(tracks, [{ model: 'm', state: 'closed', failures: 0, opened_at: null }], 2600, 500);
    assert.deepEqual(step.actions, [{ kind: 'close', model: 'm', sinceMs: 1000 }]);
    assert.equal(step.tracks.size, 0);
  });
  it('an outage shorter than outage_alert leaves nothing to close', () => {
    const first = outageAlertStep(new Map(), [open('m', 1000)], 1100, 500);
    assert.deepEqual(outageAlertStep(first.tracks, [], 1200, 500), { tracks: new Map(), actions: [] });
  });
});
