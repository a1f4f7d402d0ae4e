import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import test from 'node:test';
import { startStandIn, TestHome } from './helpers/home.js';
import { BYO_FIXTURES, byoConfig, lastFirst, libraryScenarios, modelSpans, PROVIDER_KEY, sumSpans, threeCallCrash, toolLoopProvider, userText } from './helpers/byo.js';
import { untilInFolder } from './helpers/support.js';

/**
 * The agents with no client library, governed like the four libraries
 * (test/byo-*.test.ts): a Python agent on the standard library alone, one on
 * agentd's stdlib module (python/agentd.py, the protocol), and a sh + curl
 * plain agent. Budgets, replay after a kill -9 of the daemon, traces with
 * cost, and no provider key in the agent's environment.
 */

const hasPython = spawnSync('python3', ['--version']).status === 0;

// A Python agent on urllib only, run unmodified under agentd (test/fixtures/byo/urllib-agent.py).
if (hasPython) libraryScenarios('a stdlib-only Python agent (urllib, no SDK)', 'urllib-agent.py');

/** Three calls in a row through agentd's Python module; the provider key must not be in its environment. */
const MODULE_AGENT = `import os, agentd

def work(ctx):
    for i in (1, 2, 3):
        ctx.model({"messages": [{"role": "user", "content": "rounds:0 call %d" % i}]})
    keyless = not any("sk-standin" in v for v in os.environ.values())
    return {"answer": "42", "rounds": 3, "keyless": keyless}

agentd.run_agent(work)
`;

test('a Python agent on agentd\'s stdlib module: after a kill -9 of the daemon mid-task, its answered calls are replayed and traced at no cost; it never sees the provider key', { skip: hasPython ? false : 'python3 is not installed' }, async (t) => {
  const { output } = await threeCallCrash(
    t,
    async (home) => {
      await home.write('agents/pymod/agent.py', MODULE_AGENT);
      await home.write('agents/pymod/agent.json', { version: '1', command: ['python3', 'agent.py'], model: 'standin/gpt-test', env: ['PATH'] });
    },
    'pymod',
  );
  assert.deepEqual(output, { answer: '42', rounds: 3, keyless: true });
});

async function curlAgent(home: TestHome, name: string, extra: Record<string, unknown> = {}): Promise<void> {
  await home.write(`agents/${name}/agent.json`, { version: '1', protocol: 'none', command: ['sh', path.join(BYO_FIXTURES, 'curl-calls.sh')], model: 'standin/gpt-test', env: ['PATH'], ...extra });
}

test('a curl plain agent: after a kill -9 of the daemon mid-task, its answered calls are replayed and traced at no cost; it never sees the provider key', async (t) => {
  const { output } = await threeCallCrash(t, (home) => curlAgent(home, 'curly'), 'curly');
  assert.deepEqual(output, { answer: '42', rounds: 3, keyless: true, key_is_run_token: true });
});

test('a curl plain agent is held to max_steps: the call past it is refused, never sent, and the run hands off', async (t) => {
  const undo = lastFirst(t);
  const standIn = await startStandIn(toolLoopProvider());
  undo(() => standIn.close());
  const home = await TestHome.create(byoConfig(standIn));
  undo(() => home.remove());
  await curlAgent(home, 'limited', { budget: { max_steps: 2 } });
  await home.inbox('limited', 'l1', { goal: 'three calls' });
  const daemon = home.startDaemon({ STANDIN_KEY: PROVIDER_KEY });
  undo(() => daemon.stop());
  const handoff = await untilInFolder(home.path('outbox/limited'), () => home.readJson<{ reason: string; task_id: string }>('outbox/limited/handoff.json').catch(() => null), (h) => h !== null, 'handoff', 90_000);
  assert.deepEqual([handoff!.reason, handoff!.task_id], ['max_steps', 'l1']);
  assert.deepEqual(standIn.requests.map((r) => userText(r.body)), ['rounds:0 call 1', 'rounds:0 call 2'], 'the third call was refused, never sent');
  assert.deepEqual(sumSpans(await modelSpans(home, 'limited')), { input: 60, output: 16, cost: 0.000092, replayed: 0 }, 'the two calls are traced with their cost');
});
