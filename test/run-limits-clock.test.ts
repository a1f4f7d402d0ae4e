import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { loadAgentDefinition } from '../src/config/agent-definition.js';
import { loadDaemonConfig } from '../src/config/daemon-config.js';
import { hostRun, type RunHostInput, type ToolCaller } from '../src/run/run-host.js';
import { HomePaths } from '../src/store/paths.js';
import { emptySpend } from '../src/store/journal.js';
import { ManualClock } from './helpers/clock.js';
import { isAlive } from './helpers/support.js';

/**
 * A run's heartbeat_timeout and max_runtime, driven by a manual clock: a
 * real agent process, the real run host, and time that moves only when the
 * test advances it. No test here waits for time to pass.
 */

/** Writes its pid, says one thing, then on a `tool` line in `cue` calls a tool; on `stop` it hands off and exits. */
const AGENT = `
import fs from 'node:fs';
import readline from 'node:readline';
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const message = JSON.parse(line);
  if (message.type === 'start') {
    fs.writeFileSync('pid', String(process.pid));
    send({ type: 'log', level: 'info', msg: 'started' });
    if (message.task.input?.call_tool) send({ type: 'tool', id: 't1', name: 'slow', args: {} });
  }
  if (message.type === 'stop') {
    send({ type: 'handoff', summary: 'stopped: ' + message.reason, next_steps: [] });
    process.exit(0);
  }
});
setInterval(() => {}, 1000);
`;

async function setup(t: { after(fn: () => Promise<void>): void }, definition: Record<string, unknown>) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-limits-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  await fs.mkdir(path.join(root, 'agents/a'), { recursive: true });
  await fs.writeFile(path.join(root, 'agents/a/agent.mjs'), AGENT);
  await fs.writeFile(path.join(root, 'agents/a/agent.json'), JSON.stringify({ version: '1', command: ['node', 'agent.mjs'], model: 'mock/echo', ...definition }));
  const paths = new HomePaths(root);
  const agent = (await loadAgentDefinition(paths, await loadDaemonConfig(paths), 'a'))!;
  return { root, agent };
}

function input(agent: RunHostInput['agent'], root: string, clock: ManualClock, overrides: Partial<RunHostInput> = {}): RunHostInput {
  const noTools: ToolCaller = { call: () => Promise.reject(new Error('no tool expected')) };
  return {
    agent,
    taskId: 't1',
    runId: 'r-1',
    start: { task: { id: 't1', goal: 'wait' }, context: null, resume: { checkpoint: null, handoff: null, resolutions: [] } },
    limits: { ...agent.budget },
    spentBefore: { steps: 0, toolCalls: 0, tokens: 0, costUsd: 0, runtimeMs: 0, dailyCostUsd: 0 },
    replay: [],
    records: {
      // The limits under test need no journal: nothing is replayed and the totals start at zero.
      journal: async () => undefined,
      totals: () => ({ spend: emptySpend(), tail: [] }),
      started: async () => undefined,
      checkpoint: async () => undefined,
      close: async () => undefined,
    },
    sideEffectDecisions: new Map(),
    approvals: new Map(),
    audit: async () => undefined,
    agentdEnv: {},
    models: { call: () => Promise.reject(new Error('no model call expected')) },
    tools: noTools,
    priceOf: () => null,
    clock,
    log: pino({ level: process.env.DEBUG_LIMITS ? 'debug' : 'silent' }),
    interrupt: new AbortController().signal,
    checkpointSeq: 0,
    resumedFromCheckpoint: false,
    killGraceMs: 100,
    ...overrides,
  };
}

/** Waits (on events, not time) until `ready` holds. */
async function until(ready: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100_000; i++) {
    if (await ready()) return;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`never happened: ${what}`);
}

const exists = (file: string) => fs.access(file).then(() => true, () => false);

describe('run limits on a manual clock', () => {
  it('heartbeat_timeout: the silent agent is killed when the clock passes its timeout, not a millisecond before', async (t) => {
    const { root, agent } = await setup(t, { heartbeat_timeout: '10s' });
    const clock = new ManualClock();
    let ended = false;
    const run = hostRun(input(agent, root, clock)).finally(() => (ended = true));
    let pid = 0;
    await until(async () => (pid = Number(await fs.readFile(path.join(agent.dir, 'pid'), 'utf8').catch(() => ''))) > 0, 'the agent to write its pid');
    await until(() => clock.pending === 2, 'the runtime and heartbeat timers to be armed');
    clock.advance(9_999);
    assert.equal(ended, false);
    assert.equal(isAlive(pid), true);
    clock.advance(1);
    const report = await run;
    assert.equal(report.outcome.kind, 'failed');
    assert.equal(report.outcome.kind === 'failed' && report.outcome.category, 'timeout');
    assert.match(report.outcome.kind === 'failed' ? report.outcome.message : '', /no protocol message for 10s \(heartbeat_timeout\)/);
    assert.equal(isAlive(pid), false);
    assert.equal(clock.pending, 0, 'the runtime timer is cancelled when the run ends');
  });

  it('heartbeat_timeout does not count while a call waits on the daemon, and the reply starts the silence again', async (t) => {
    const { root, agent } = await setup(t, { heartbeat_timeout: '10s' });
    const clock = new ManualClock();
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let called = false;
    const tools: ToolCaller = {
      call: async (request) => {
        called = true;
        await request.onStart?.();
        await released;
        return { ok: true, result: 'slow answer' };
      },
    };
    const withTool = { ...agent, tools: { slow: { name: 'slow', description: '', command: ['true'], inputSchema: { type: 'object' }, effect: 'read', idempotent: true, approval: 'never', approvalTtlMs: 3_600_000, timeoutMs: 1000, circuit: { failures: 5, windowMs: 60_000, cooldownMs: 30_000 }, shared: false } } } as unknown as RunHostInput['agent'];
    let ended = false;
    const run = hostRun(input(withTool, root, clock, { tools, start: { task: { id: 't1', goal: 'wait', input: { call_tool: true } }, context: null, resume: { checkpoint: null, handoff: null, resolutions: [] } } })).finally(() => (ended = true));
    await until(() => called, 'the tool call to reach the tools layer');
    clock.advance(60_000);
    await new Promise((r) => setImmediate(r));
    assert.equal(ended, false, 'a call waiting on the daemon is not silence');
    assert.equal(clock.dueIn().includes(10_000), false, 'the heartbeat fired while the call waited, and did nothing');
    release();
    await until(() => clock.dueIn().includes(10_000), 'the heartbeat to start again from the reply');
    clock.advance(9_999);
    assert.equal(ended, false);
    clock.advance(1);
    const report = await run;
    assert.equal(report.outcome.kind === 'failed' && report.outcome.category, 'timeout');
  });

  it('max_runtime counts the runtime of earlier runs: stop is sent when the clock reaches what is left', async (t) => {
    const { root, agent } = await setup(t, { heartbeat_timeout: 0 });
    const clock = new ManualClock();
    let ended = false;
    const limits = { ...agent.budget, runtimeMs: 60_000 };
    const spentBefore = { steps: 0, toolCalls: 0, tokens: 0, costUsd: 0, runtimeMs: 50_000, dailyCostUsd: 0 };
    const run = hostRun(input(agent, root, clock, { limits, spentBefore })).finally(() => (ended = true));
    await until(() => exists(path.join(agent.dir, 'pid')), 'the agent to start');
    await until(() => clock.pending === 1, 'the runtime timer to be armed');
    assert.deepEqual(clock.dueIn(), [10_000]);
    clock.advance(9_999);
    assert.equal(ended, false);
    clock.advance(1);
    const report = await run;
    assert.equal(report.outcome.kind, 'limit');
    assert.equal(report.outcome.kind === 'limit' && report.outcome.reason, 'max_runtime');
    assert.equal(report.outcome.kind === 'limit' && report.outcome.handoff?.summary, 'stopped: max_runtime');
    assert.equal(report.runtimeMs, 10_000, 'the runtime of the run is read from the same clock');
  });
});
