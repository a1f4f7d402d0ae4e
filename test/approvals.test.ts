import assert from 'node:assert/strict';
import os from 'node:os';
import { describe, it } from 'node:test';
import type { AuditLine } from '../src/observe/audit.js';
import { viewOutbox } from '../src/run/boot.js';
import type { OutboxItem } from '../src/store/outbox.js';
import { approvalCause, approvalStanding } from '../src/tools/approval.js';
import { FAST_CONFIG, inHome, withDaemon } from './helpers/support.js';
import type { TestHome } from './helpers/home.js';

/** Approvals bound to the exact call (DESIGN.md section 8), their TTL, denials and the audit trail. */

const HOUR = 3_600_000;

function approvalItem(id: string, seq: number, hash: string, resolution?: OutboxItem['resolution'], createdAt = '2026-01-01T00:00:00.000Z'): OutboxItem {
  return {
    id,
    kind: 'approval',
    agent: 'payer',
    task_id: 't1',
    run_id: 'r1',
    created_at: createdAt,
    reason: 'pay needs approval',
    details: { seq, tool: 'pay', args: {}, call_hash: hash },
    status: resolution ? 'resolved' : 'open',
    ...(resolution ? { resolution } : {}),
  };
}

describe('approval decisions (pure)', () => {
  it('the outbox gives each exact call its latest decision, with when and by whom', () => {
    const view = viewOutbox(
      [
        approvalItem('a:1', 1, 'h1', { decision: 'approve', by: 'ann', at: '2026-01-01T10:00:00.000Z' }),
        approvalItem('a:2', 1, 'h1', { decision: 'deny', by: 'bob', at: '2026-01-01T11:00:00.000Z' }),
        approvalItem('a:3', 2, 'h2', { decision: 'approve' }, '2026-01-01T09:00:00.000Z'),
        approvalItem('a:4', 3, 'h3'),
      ],
      't1',
    );
    assert.deepEqual(view.approvals.get('1:h1'), { decision: 'deny', by: 'bob', at: Date.parse('2026-01-01T11:00:00.000Z') });
    assert.deepEqual(view.approvals.get('2:h2'), { decision: 'approve', by: null, at: Date.parse('2026-01-01T09:00:00.000Z') }, 'no resolution.at: the item’s creation counts');
    assert.equal(view.approvals.has('3:h3'), false, 'an open item approves nothing');
  });

  it('an approval counts until approval_ttl has passed since it was given; a denial never expires', () => {
    const at = Date.parse('2026-01-01T10:00:00.000Z');
    const approve = { decision: 'approve' as const, at, by: 'ann' };
    assert.equal(approvalStanding(approve, HOUR, at + HOUR).kind, 'approved');
    assert.equal(approvalStanding(approve, HOUR, at + HOUR + 1).kind, 'expired');
    assert.equal(approvalStanding({ ...approve, at: NaN }, HOUR, at).kind, 'expired', 'an unreadable time never counts');
    assert.equal(approvalStanding({ ...approve, decision: 'deny' }, HOUR, at + 100 * HOUR).kind, 'denied');
    assert.equal(approvalStanding(undefined, HOUR, at).kind, 'none');
  });

  it('approval always asks; suspected injection makes write and irreversible tools ask, never read tools', () => {
    assert.equal(approvalCause({ approval: 'always', effect: 'read' }, false), 'policy');
    assert.equal(approvalCause({ approval: 'never', effect: 'write' }, false), null);
    assert.equal(approvalCause({ approval: 'never', effect: 'write' }, true), 'suspected_injection');
    assert.equal(approvalCause({ approval: 'never', effect: 'irreversible' }, true), 'suspected_injection');
    assert.equal(approvalCause({ approval: 'never', effect: 'read' }, true), null);
  });
});

/** A tool that records each payment as a file in the agent folder, so a test sees exactly which calls ran. */
const PAY_TOOL = {
  pay: {
    command: ['node', '-e', "const fs=require('fs');const a=JSON.parse(fs.readFileSync(0,'utf8'));fs.writeFileSync('paid-'+a.amount,'');process.stdout.write(JSON.stringify({paid:a.amount}))"],
    input_schema: { type: 'object', required: ['amount'], properties: { amount: { type: 'number' } } },
    effect: 'irreversible',
    approval_ttl: '1h',
  },
};

interface Item {
  id: string;
  kind: string;
  status: string;
  reason: string;
  details: { args: { amount: number }; expired_approval?: { at: string; by: string } };
  resolution?: { decision: string; by: string; at: string };
}

async function payer(home: TestHome, afterResolution?: unknown[]): Promise<void> {
  await home.scriptedAgent('payer', { tools: PAY_TOOL });
  await home.inbox('payer', 't1', {
    goal: 'pay',
    input: { script: [{ tool: 'pay', args: { amount: 10 } }, { result: '$last' }], ...(afterResolution ? { after_resolution: afterResolution } : {}) },
  });
}

const items = async (home: TestHome) => (await home.readJson<{ items: Item[] }>('outbox/payer/outbox.json')).items.filter((i) => i.kind === 'approval');
const audit = (home: TestHome) => home.readLines<AuditLine>('state/audit.jsonl');

describe('approvals under the daemon', () => {
  it('an approved call runs exactly once, and the audit trail says who approved it', () =>
    inHome(FAST_CONFIG, async (home) => {
      await payer(home);
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('payer')).outcome, 'approval');
        assert.equal(await home.exists('agents/payer/paid-10'), false, 'nothing ran before approval');
        const [item] = await items(home);
        assert.deepEqual(item?.details.args, { amount: 10 }, 'the item shows the exact call');
        const resolved = await home.cli(['resolve', item!.id, '--approve', '--by', 'alice']);
        assert.equal(resolved.code, 0, resolved.stderr);
        assert.equal((await daemon.runEnded('payer', 2)).outcome, 'done');
        assert.equal(await home.exists('agents/payer/paid-10'), true);
        const line = (await audit(home)).find((l) => l.event === 'approval');
        assert.equal(line?.by, 'alice');
        assert.deepEqual(line?.details, { item_id: item!.id, kind: 'approval', decision: 'approve' });
        assert.equal((await audit(home)).filter((l) => l.event === 'tool_call' && (l.details as { phase: string }).phase === 'completed').length, 1);
      });
    }));

  it('approving a call never runs a different one: other arguments ask again, and the approval is not used', () =>
    inHome(FAST_CONFIG, async (home) => {
      await payer(home, [{ tool: 'pay', args: { amount: 99 } }, { result: '$last' }]);
      await withDaemon(home, async (daemon) => {
        await daemon.runEnded('payer');
        const [first] = await items(home);
        assert.equal((await home.cli(['resolve', first!.id, '--approve'])).code, 0);
        assert.equal((await daemon.runEnded('payer', 2)).outcome, 'approval', 'the agent asked for a different call');
        const [approved, asked] = await items(home);
        assert.equal(approved?.status, 'resolved');
        assert.equal(asked?.status, 'open');
        assert.deepEqual(asked?.details.args, { amount: 99 });
        assert.equal(await home.exists('agents/payer/paid-99'), false, 'the call with other arguments did not run');
        assert.equal(await home.exists('agents/payer/paid-10'), false);
        assert.equal(approved?.resolution?.by, os.userInfo().username, 'without --by, the OS user resolved it');
      });
    }));

  it('an approval given while the daemon was down is honoured after a restart', () =>
    inHome(FAST_CONFIG, async (home) => {
      await payer(home);
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('payer')).outcome, 'approval');
      });
      const [item] = await items(home);
      assert.equal((await home.cli(['resolve', item!.id, '--approve', '--by', 'night-shift'])).code, 0);
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('payer')).outcome, 'done');
      });
      assert.equal(await home.exists('agents/payer/paid-10'), true);
      assert.deepEqual((await home.readJson<{ output: unknown }>('state/payer/done/t1.json')).output, { type: 'tool_result', id: '1', ok: true, result: { paid: 10 }, replayed: false });
    }));

  it('a denied call is reported to the agent as error code denied, runs nothing, and the denial is audited with who denied it', () =>
    inHome(FAST_CONFIG, async (home) => {
      await payer(home);
      await withDaemon(home, async (daemon) => {
        await daemon.runEnded('payer');
        const [item] = await items(home);
        assert.equal((await home.cli(['resolve', item!.id, '--deny', '--by', 'bob'])).code, 0);
        assert.equal((await daemon.runEnded('payer', 2)).outcome, 'done');
        const { output } = await home.readJson<{ output: { type: string; code: string; message: string } }>('state/payer/done/t1.json');
        assert.equal(output.type, 'error');
        assert.equal(output.code, 'denied');
        assert.match(output.message, /denied this call of pay/);
        assert.equal(await home.exists('agents/payer/paid-10'), false);
        const line = (await audit(home)).find((l) => l.event === 'approval');
        assert.equal(line?.by, 'bob');
        assert.equal((line?.details as { decision: string }).decision, 'deny');
        assert.equal((await audit(home)).some((l) => l.event === 'tool_call'), false, 'a denied call is not a tool call');
      });
    }));

  it('an approval older than approval_ttl no longer counts: the call asks again with a new item', () =>
    inHome(FAST_CONFIG, async (home) => {
      await payer(home);
      await withDaemon(home, async (daemon) => {
        await daemon.runEnded('payer');
      });
      const [item] = await items(home);
      assert.equal((await home.cli(['resolve', item!.id, '--approve', '--by', 'ann'])).code, 0);
      // Age the approval past the tool's approval_ttl (1h), as if it had been given yesterday.
      const outbox = await home.readJson<{ v: number; items: Item[] }>('outbox/payer/outbox.json');
      const twoHoursAgo = new Date(Date.now() - 2 * HOUR).toISOString();
      outbox.items[0]!.resolution!.at = twoHoursAgo;
      await home.write('outbox/payer/outbox.json', outbox);
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('payer')).outcome, 'approval');
        const [old, fresh] = await items(home);
        assert.equal(old?.id, item!.id);
        assert.equal(fresh?.status, 'open', 'a new approval item');
        assert.deepEqual(fresh?.details.args, { amount: 10 });
        assert.deepEqual(fresh?.details.expired_approval, { at: twoHoursAgo, by: 'ann' });
        assert.match(fresh!.reason, /older than approval_ttl/);
        assert.equal(await home.exists('agents/payer/paid-10'), false, 'the stale approval ran nothing');
        assert.equal((await home.cli(['resolve', fresh!.id, '--approve'])).code, 0);
        assert.equal((await daemon.runEnded('payer', 2)).outcome, 'done');
        assert.equal(await home.exists('agents/payer/paid-10'), true);
      });
    }));
});
