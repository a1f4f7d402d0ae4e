import assert from 'node:assert/strict';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { ToolDefinition } from '../src/config/types.js';
import type { HistoryLine } from '../src/store/history.js';
import { runToolCommand } from '../src/tools/tool-runner.js';
import type { DoneRecord } from '../src/store/done-records.js';
import type { OutboxFile } from '../src/store/outbox.js';
import { FAST_CONFIG, inHome, withDaemon } from './helpers/support.js';

/**
 * A tool call's order (README "Tools", src/run/tool-call.ts): allowed, then
 * arguments checked against input_schema, and only then approval and the
 * budget; only calls that ran count toward max_tool_calls.
 */

const PAY_TOOL = {
  pay: {
    command: ['node', '-e', "const fs=require('fs');const a=JSON.parse(fs.readFileSync(0,'utf8'));fs.writeFileSync('paid-'+a.amount,'');process.stdout.write(JSON.stringify({paid:a.amount}))"],
    input_schema: { type: 'object', required: ['amount'], properties: { amount: { type: 'number' } } },
    effect: 'irreversible',
    approval: 'always',
  },
};

const LOOKUP_TOOL = {
  lookup: {
    command: ['node', '-e', "const a=JSON.parse(require('fs').readFileSync(0,'utf8'));process.stdout.write(JSON.stringify({found:a.key}))"],
    input_schema: { type: 'object', required: ['key'], properties: { key: { type: 'string' } }, additionalProperties: false },
    effect: 'read',
  },
};

describe('tool calls: arguments first, and only calls that ran count', () => {
  it('a call with arguments that fail input_schema is refused as invalid_args before any approval is asked', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('payer', { tools: PAY_TOOL });
      await home.inbox('payer', 't1', { goal: 'pay', input: { script: [{ tool: 'pay', args: { amount: 'ten' } }, { result: '$last' }] } });
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('payer')).outcome, 'done');
        const done = await home.readJson<DoneRecord>('state/payer/done/t1.json');
        const reply = done.output as { type: string; code: string; message: string };
        assert.equal(reply.type, 'error');
        assert.equal(reply.code, 'invalid_args');
        assert.equal(reply.message, 'arguments for pay: amount must be number');
        const outbox = (await home.exists('outbox/payer/outbox.json')) ? await home.readJson<OutboxFile>('outbox/payer/outbox.json') : { items: [] };
        assert.deepEqual(outbox.items.filter((i) => i.kind === 'approval'), [], 'nobody was asked to approve a call that could not run');
        assert.deepEqual(await home.list('agents/payer').then((names) => names.filter((n) => n.startsWith('paid-'))), []);
      });
    }));

  it('invalid calls do not count toward max_tool_calls: with a budget of 1, two invalid calls and then a valid one, the valid one runs', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('reader', { tools: LOOKUP_TOOL, budget: { max_tool_calls: 1 } });
      const script = [{ tool: 'lookup', args: {} }, { tool: 'lookup', args: { key: 1 } }, { tool: 'lookup', args: { key: 'a' } }, { result: '$last' }];
      await home.inbox('reader', 'r1', { goal: 'look something up', input: { script } });
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('reader')).outcome, 'done');
        const done = await home.readJson<DoneRecord>('state/reader/done/r1.json');
        assert.deepEqual((done.output as { result: unknown }).result, { found: 'a' });
        const [line] = await home.readLines<HistoryLine>('state/reader/history.jsonl');
        assert.equal(line?.tool_calls, 1, 'one call ran');
        const journal = await home.readLines<{ kind: string; phase: string }>('state/reader/journal/r1.jsonl');
        assert.deepEqual(journal.filter((r) => r.kind === 'tool').map((r) => r.phase), ['started', 'completed'], 'refused calls take no place in the journal');
      });
    }));
});

describe('a tool that ends while its process group is being recorded', () => {
  it('is still heard: the call returns its result instead of waiting forever for a close already sent', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-tool-close-'));
    try {
      const tool: ToolDefinition = {
        name: 'quick',
        description: '',
        // Prints its result without reading stdin and exits at once.
        command: ['node', '-e', 'process.stdout.write(JSON.stringify({ ok: 1 }))'],
        inputSchema: {},
        effect: 'read',
        idempotent: true,
        approval: 'never',
        approvalTtlMs: 0,
        timeoutMs: 60_000,
        circuit: { failures: 5, windowMs: 60_000, cooldownMs: 30_000 },
        shared: false,
      };
      // The registry is slow (a loaded disk): it answers only once the tool's process has ended and
      // node has had the turns in which it reports the close.
      const groups = {
        add: async (pid: number) => {
          while (fsSync.existsSync(`/proc/${pid}`)) await new Promise((resolve) => setImmediate(resolve));
          for (let i = 0; i < 100; i++) await new Promise((resolve) => setImmediate(resolve));
        },
        remove: async () => undefined,
      };
      const run = runToolCommand(tool, dir, {}, { PATH: process.env.PATH ?? '' }, undefined, groups);
      const waited = await Promise.race([run, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000).unref())]);
      assert.deepEqual(waited, { ok: true, result: { ok: 1 } });
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
