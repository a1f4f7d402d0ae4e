import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AgentDefinition, ToolDefinition } from '../src/config/types.js';
import { silentLogger } from '../src/observe/logger.js';
import { circuitOpenMessage, toolCircuitKey, ToolCircuits } from '../src/tools/tool-circuits.js';
import { ToolRunner, type ToolRun } from '../src/tools/tool-runner.js';
import { ManualClock } from './helpers/clock.js';


const POLICY = { failures: 5, windowMs: 60_000, cooldownMs: 30_000 };

function tool(name: string, shared: boolean): ToolDefinition {
  return { name, description: '', command: ['true'], inputSchema: { type: 'object' }, effect: 'write', idempotent: false, approval: 'never', approvalTtlMs: 3_600_000, timeoutMs: 1000, circuit: POLICY, shared };
}

function agent(name: string, tools: ToolDefinition[]): AgentDefinition {
  return { name, dir: '/nonexistent', tools: Object.fromEntries(tools.map((t) => [t.name, t])) } as unknown as AgentDefinition;
}

/** A ToolRunner whose tool "runs" by answering from `outcome`, counting real runs. */
function runner(clock: ManualClock, outcome: () => ToolRun) {
  const runs: string[] = [];
  const tools = new ToolRunner('/home', silentLogger(), {
    now: clock.now,
    run: async (t) => {
      runs.push(t.name);
      return outcome();
    },
  });
  const call = (a: AgentDefinition, name: string) => tools.call({ agent: a, taskId: 't1', runId: 'r1', seq: 1, name, args: {} });
  return { tools, runs, call };
}

const fail: ToolRun = { ok: false, message: 'tool send exited with code 1' };
const succeed: ToolRun = { ok: true, result: { sent: true } };

describe('the tool circuit breaker', () => {
  it('opens after 5 failures within the window: the 6th call is refused with circuit_open, saying when to try again, and nothing runs', async () => {
    const clock = new ManualClock(1_000_000);
    const { runs, call } = runner(clock, () => fail);
    const a = agent('billing', [tool('send', true)]);
    for (let i = 0; i < 5; i++) {
      const r = await call(a, 'send');
      assert.equal(r.ok, false);
      clock.t += 1000;
    }
    assert.equal(runs.length, 5);
    const refused = await call(a, 'send');
    assert.deepEqual(refused.ok ? null : refused.code, 'circuit_open');
    assert.equal(refused.ok ? null : 'retryAfterMs' in refused && refused.retryAfterMs, 29_000, 'it says when the circuit lets a call through again');
    assert.match(refused.ok ? '' : refused.message, /^circuit open for tool send: it failed 5 times within 1m, so calls are refused for 30s \(about 29s from now\); it did not run$/);
    assert.equal(runs.length, 5, 'an open circuit runs nothing');
  });

  it('failures spread wider than the window do not open it', async () => {
    const clock = new ManualClock(1_000_000);
    const { runs, call } = runner(clock, () => fail);
    const a = agent('billing', [tool('send', true)]);
    for (let i = 0; i < 10; i++) {
      await call(a, 'send');
      clock.t += 20_000; // 3 failures per minute
    }
    assert.equal(runs.length, 10);
  });

  it('a shared tool is one circuit for every agent of the daemon; an agent’s own tool is its own', async () => {
    const clock = new ManualClock(1_000_000);
    const { runs, call } = runner(clock, () => fail);
    const shared = tool('send', true);
    const a = agent('a', [shared, tool('local', false)]);
    const b = agent('b', [shared, tool('local', false)]);
    for (let i = 0; i < 5; i++) await call(i % 2 ? a : b, 'send');
    assert.equal((await call(b, 'send')).ok, false);
    assert.equal(runs.length, 5, 'agent b is refused after failures that were partly agent a’s');
    for (let i = 0; i < 5; i++) await call(a, 'local');
    const before = runs.length;
    await call(b, 'local');
    assert.equal(runs.length, before + 1, 'b’s own tool of the same name has its own circuit');
    assert.equal(toolCircuitKey('a', shared), 'send');
    assert.equal(toolCircuitKey('a', tool('local', false)), 'a/local');
  });

  it('after the cooldown one probe runs: success closes the circuit, failure opens it again', async () => {
    const clock = new ManualClock(1_000_000);
    let next: ToolRun = fail;
    const { runs, call } = runner(clock, () => next);
    const a = agent('a', [tool('send', true)]);
    for (let i = 0; i < 5; i++) await call(a, 'send');
    clock.t += 30_000;
    assert.equal((await call(a, 'send')).ok, false, 'the probe fails');
    assert.equal(runs.length, 6);
    await call(a, 'send');
    assert.equal(runs.length, 6, 'open again for another cooldown');
    clock.t += 30_000;
    next = succeed;
    assert.deepEqual(await call(a, 'send'), succeed);
    next = fail;
    await call(a, 'send');
    await call(a, 'send');
    assert.equal(runs.length, 9, 'closed: calls run again (and failures count from zero)');
  });

  it('bad arguments and unknown tools never count against the circuit', async () => {
    const clock = new ManualClock(1_000_000);
    const { runs, call, tools } = runner(clock, () => succeed);
    const strict = { ...tool('send', true), inputSchema: { type: 'object', required: ['to'] } };
    const a = agent('a', [strict]);
    for (let i = 0; i < 10; i++) assert.equal(((await call(a, 'send')) as { code: string }).code, 'invalid_args');
    assert.equal(((await call(a, 'nope')) as { code: string }).code, 'not_allowed');
    assert.equal(runs.length, 0);
    assert.deepEqual(tools.circuits.list(), [], 'no circuit was even consulted');
  });

  it('a changed policy (a reloaded definition) starts a fresh circuit', () => {
    const clock = new ManualClock(1_000_000);
    const circuits = new ToolCircuits(clock.now);
    const first = circuits.get('send', POLICY);
    for (let i = 0; i < 5; i++) first.recordFailure();
    assert.equal(circuits.get('send', POLICY).acquire(), 'rejected');
    assert.equal(circuits.get('send', { ...POLICY, failures: 10 }).acquire(), 'allowed');
  });

  it('the refusal message counts down the cooldown', () => {
    const message = circuitOpenMessage('send', { model: 'send', state: 'open', failures: 5, opened_at: 1000 }, POLICY, 21_000);
    assert.match(message, /about 10s from now/);
  });
});
