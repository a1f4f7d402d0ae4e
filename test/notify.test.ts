import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveNotifyHooks } from '../src/config/notify-hooks.js';
import { backoffMs, emptyLedger, owedDeliveries, record, type NotifyLogLine } from '../src/notify/plan.js';
import type { OutboxItem } from '../src/store/outbox.js';
import type { TestHome } from './helpers/home.js';
import { Receiver } from './helpers/receiver.js';
import { FAST_CONFIG, inHome, untilInFolder, withDaemon } from './helpers/support.js';

/** Notifications (README "Notifications"): hooks told of outbox items, durably and at least once. */

type Attempt = Extract<NotifyLogLine, { type: 'attempt' }>;

function item(id: string, over: Partial<OutboxItem> = {}): OutboxItem {
  return { id, kind: 'uncertain', agent: 'a', task_id: 't', run_id: 'r', created_at: '2026-01-01T00:00:10.000Z', reason: 'r', status: 'open', ...over };
}

describe('which notifications are owed (pure)', () => {
  const [all, approvals] = resolveNotifyHooks({
    all: { command: ['true'], on: ['opened', 'resolved'] },
    approvals: { webhook: 'http://127.0.0.1:1/x', kinds: ['approval'] },
  });

  it("each event is owed once per hook, from the hook's first sighting on, until a delivered line says otherwise", () => {
    const ledger = emptyLedger();
    record(ledger, { v: 1, type: 'hook_added', hook: 'all', at: '2026-01-01T00:00:00.000Z' });
    record(ledger, { v: 1, type: 'hook_added', hook: 'approvals', at: '2026-01-01T00:00:00.000Z' });
    const old = item('a:old', { created_at: '2025-12-31T00:00:00.000Z' });
    const open = item('a:1');
    const done = item('a:2', { kind: 'approval', status: 'resolved', resolution: { decision: 'approve', by: 'x', at: '2026-01-01T00:00:20.000Z' } });
    const ids = owedDeliveries([old, open, done], [all!, approvals!], ledger).map((d) => d.id);
    assert.deepEqual(ids.sort(), ['a:1/opened/all', 'a:2/opened/all', 'a:2/opened/approvals', 'a:2/resolved/all']);
    record(ledger, { v: 1, type: 'attempt', at: '2026-01-01T00:01:00.000Z', delivery_id: 'a:1/opened/all', hook: 'all', event: 'opened', item_id: 'a:1', agent: 'a', kind: 'uncertain', attempt: 1, outcome: 'delivered', duration_ms: 1 });
    assert.equal(owedDeliveries([open], [all!], ledger).length, 0);
  });

  it('backoff doubles from the base delay up to the cap', () => {
    const retry = { baseDelayMs: 1000, maxDelayMs: 5000 };
    assert.deepEqual([1, 2, 3, 4, 10].map((n) => backoffMs(n, retry)), [1000, 2000, 4000, 5000, 5000]);
  });
});

const UNSURE = { reason: 'two totals', question: 'Which total is right, 120 or 112?' };

async function unsureAgent(home: TestHome): Promise<void> {
  await home.scriptedAgent('unsure');
  await home.inbox('unsure', 'ask', { goal: 'ask', input: { script: [{ uncertain: UNSURE }], after_resolution: [{ result: 'answered' }] } });
}

const attempts = async (home: TestHome) => (await home.readLines<NotifyLogLine>('state/notify.jsonl')).filter((l): l is Attempt => l.type === 'attempt');
const untilAttempts = (home: TestHome, accept: (lines: Attempt[]) => boolean, what: string) => untilInFolder(home.path('state'), () => attempts(home), accept, what);

/** A command hook that records its stdin, its delivery id and whether the item was already in outbox.json. */
const RECORDING_HOOK = [
  'node',
  '-e',
  "const fs=require('fs');const item=JSON.parse(fs.readFileSync(0,'utf8'));" +
    "const inFile=JSON.parse(fs.readFileSync('outbox/'+item.agent+'/outbox.json','utf8')).items.some(i=>i.id===item.id);" +
    "fs.appendFileSync('notified.jsonl',JSON.stringify({id:process.env.AGENTD_DELIVERY_ID,event:process.env.AGENTD_EVENT,inFile,item})+'\\n')",
];

describe('notifications under the daemon', () => {
  it('an opened item reaches a webhook, a Slack webhook and a command hook once each, after it is in outbox.json; resolved goes to hooks that ask; kinds filter', async () => {
    const receiver = await Receiver.start();
    const config = `${FAST_CONFIG}
notify:
  web:
    webhook: ${receiver.url}
    headers: { Authorization: NOTIFY_AUTH }
    on: [opened, resolved]
  chat:
    webhook: ${receiver.url}
    format: slack
  script:
    command: ${JSON.stringify(RECORDING_HOOK)}
  approvals-only:
    webhook: ${receiver.url}
    kinds: [approval]
`;
    try {
      await inHome(config, async (home) => {
        await withDaemon(
          home,
          async (daemon) => {
            await home.scriptedAgent('unsure');
            await home.inbox('unsure', 'ask', { goal: 'ask', input: { script: [{ uncertain: UNSURE }], after_resolution: [{ result: 'answered' }] } });
            assert.equal((await daemon.runEnded('unsure')).outcome, 'escalated');
            await untilAttempts(home, (l) => l.filter((a) => a.outcome === 'delivered').length === 3, 'three opened deliveries');
            const [outboxItem] = (await home.readJson<{ items: OutboxItem[] }>('outbox/unsure/outbox.json')).items;
            const id = outboxItem!.id;

            const [recorded] = await home.readLines<{ id: string; event: string; inFile: boolean; item: OutboxItem }>('notified.jsonl');
            assert.deepEqual([recorded?.id, recorded?.event, recorded?.inFile, recorded?.item], [`${id}/opened/script`, 'opened', true, outboxItem]);
            const web = receiver.requests.find((r) => r.headers['x-agentd-delivery'] === `${id}/opened/web`);
            assert.deepEqual(web?.body, outboxItem, 'the webhook gets the item as it is in outbox.json');
            assert.equal(web?.headers.authorization, 'Bearer hook-secret-0123456789');
            assert.equal(web?.headers['idempotency-key'], `${id}/opened/web`);
            const chat = receiver.requests.find((r) => r.headers['x-agentd-delivery'] === `${id}/opened/chat`);
            assert.match((chat?.body as { text: string }).text, /Which total is right, 120 or 112\?/);
            assert.deepEqual(Object.keys(chat?.body as object), ['text']);

            assert.equal((await home.cli(['resolve', id, '--answer', '120', '--by', 'alice'])).code, 0);
            await untilAttempts(home, (l) => l.some((a) => a.delivery_id === `${id}/resolved/web` && a.outcome === 'delivered'), 'the resolved delivery');
            const resolved = receiver.requests.find((r) => r.headers['x-agentd-delivery'] === `${id}/resolved/web`);
            assert.equal((resolved?.body as OutboxItem).resolution?.by, 'alice');
            assert.equal((await daemon.runEnded('unsure', 2)).outcome, 'done');

            const ids = receiver.requests.map((r) => r.headers['x-agentd-delivery']);
            assert.deepEqual([...ids].sort(), [`${id}/opened/chat`, `${id}/opened/web`, `${id}/resolved/web`], 'once each; approvals-only got nothing');
            assert.equal((await home.readLines('notified.jsonl')).length, 1);
            const log = await home.readLines<NotifyLogLine>('state/notify.jsonl');
            assert.deepEqual(log.filter((l) => l.type === 'hook_added').map((l) => l.hook).sort(), ['approvals-only', 'chat', 'script', 'web']);
            assert.doesNotMatch(JSON.stringify(log), /hook-secret/);
          },
          { NOTIFY_AUTH: 'Bearer hook-secret-0123456789' },
        );
      });
    } finally {
      await receiver.close();
    }
  });

  it('a failing webhook is retried with backoff until it answers, a hanging command times out and is retried, and neither holds a run back', async () => {
    const receiver = await Receiver.start((n) => (n < 2 ? 500 : 200));
    const config = `${FAST_CONFIG}
notify:
  flaky:
    webhook: ${receiver.url}
    retry: { base_delay: 10ms, max_delay: 50ms }
  stuck:
    command: ["node", "-e", "setInterval(() => {}, 1000)"]
    timeout: 200ms
    retry: { base_delay: 10ms, max_delay: 50ms }
`;
    try {
      await inHome(config, async (home) => {
        await unsureAgent(home);
        await home.scriptedAgent('plain');
        await withDaemon(home, async (daemon) => {
          assert.equal((await daemon.runEnded('unsure')).outcome, 'escalated');
          await untilAttempts(home, (l) => l.some((a) => a.hook === 'stuck'), 'a first timed-out attempt');
          // While the stuck hook keeps timing out, another task runs to the end.
          await home.inbox('plain', 'p1', { goal: 'plain', input: { script: [{ result: 'ok' }] } });
          assert.equal((await daemon.runEnded('plain')).outcome, 'done');
          const lines = await untilAttempts(
            home,
            (l) => l.some((a) => a.hook === 'flaky' && a.outcome === 'delivered') && l.filter((a) => a.hook === 'stuck').length >= 3,
            'the flaky hook delivered and the stuck hook retried',
          );
          const flaky = lines.filter((a) => a.hook === 'flaky');
          assert.deepEqual(flaky.map((a) => [a.attempt, a.outcome, a.http_status]), [[1, 'failed', 500], [2, 'failed', 500], [3, 'delivered', 200]]);
          assert.equal(new Set(receiver.requests.map((r) => r.headers['x-agentd-delivery'])).size, 1, 'every attempt carries the same delivery id');
          const stuck = lines.filter((a) => a.hook === 'stuck');
          assert.ok(stuck.every((a) => a.outcome === 'failed' && /timed out after 200ms/.test(a.error ?? '') && a.next_attempt_at));
          assert.deepEqual(stuck.slice(0, 3).map((a) => a.attempt), [1, 2, 3]);
          const [open] = (await home.readJson<{ items: OutboxItem[] }>('outbox/unsure/outbox.json')).items;
          assert.equal(open?.status, 'open', 'the item is still there for a person');
        });
      });
    } finally {
      await receiver.close();
    }
  });

  it('after a kill -9 between the outbox write and the delivery, the item is delivered after the restart, with the same id', async () => {
    const receiver = await Receiver.start(() => 'hang');
    const config = `${FAST_CONFIG}
notify:
  web:
    webhook: ${receiver.url}
    timeout: 1h
`;
    try {
      await inHome(config, async (home) => {
        await unsureAgent(home);
        const first = home.startDaemon();
        try {
          await receiver.until(1); // the item is in outbox.json and its delivery is in flight
        } finally {
          await first.stop('SIGKILL');
        }
        assert.deepEqual(await attempts(home), [], 'nothing was recorded as delivered');
        receiver.answer = () => 200;
        await withDaemon(home, async () => {
          const lines = await untilAttempts(home, (l) => l.some((a) => a.outcome === 'delivered'), 'the delivery after the restart');
          const [outboxItem] = (await home.readJson<{ items: OutboxItem[] }>('outbox/unsure/outbox.json')).items;
          assert.deepEqual(lines.map((a) => [a.delivery_id, a.outcome]), [[`${outboxItem!.id}/opened/web`, 'delivered']]);
          assert.deepEqual(receiver.requests.map((r) => r.headers['x-agentd-delivery']), [`${outboxItem!.id}/opened/web`, `${outboxItem!.id}/opened/web`]);
        });
      });
    } finally {
      await receiver.close();
    }
  });

  it('a hook with both command and webhook, or an unknown kind, is refused, naming agentd.yaml and the field', async () => {
    const problems = async (config: string) =>
      inHome(config, async (home) => {
        const result = await home.cli(['validate']);
        assert.equal(result.code, 1);
        problemText = result.stderr + result.stdout;
      });
    let problemText = '';
    await problems('notify:\n  both: { command: ["true"], webhook: "http://127.0.0.1:1/" }\n');
    assert.match(problemText, /agentd\.yaml: notify\.both has both command and webhook: a hook is one or the other/);
    await problems('notify:\n  odd: { webhook: "http://127.0.0.1:1/", kinds: [nope] }\n');
    assert.match(problemText, /agentd\.yaml: notify\.odd\.kinds\[0\] must be one of "uncertain"/);
  });
});
