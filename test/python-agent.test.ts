import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { DoneRecord } from '../src/store/done-records.js';
import { FAST_CONFIG, inHome, withDaemon } from './helpers/support.js';
import { REPO_ROOT, type DaemonProcess, type TestHome } from './helpers/home.js';

/**
 * Python agents under the real daemon: the raw-protocol example
 * (examples/python-agent, the copy in docs/protocol.md) and the stdlib
 * module `import agentd` (python/agentd.py) that the daemon puts on every
 * agent's PYTHONPATH. A budget that runs out ends in a handoff, never a traceback.
 */

const hasPython = spawnSync('python3', ['--version']).status === 0;
const SKIP = hasPython ? false : 'python3 is not installed';

/** An agent that asks the model until refused; its stop handler reports how far it got. */
const MODULE_AGENT = `import agentd

asked = []

def work(ctx):
    ctx.on_stop(lambda reason: {"summary": "asked %d time(s), stopped by %s" % (len(asked), reason), "next_steps": ["raise the budget"], "state": {"asked": len(asked)}})
    while True:
        reply = ctx.model({"messages": [{"role": "user", "content": ctx.task["goal"]}], "max_tokens": 50})
        asked.append(reply["content"])
        ctx.checkpoint({"asked": len(asked)})
        if ctx.task.get("input", {}).get("once"):
            return {"answer": reply["content"], "module": agentd.__file__}

agentd.run_agent(work)
`;

/** Uses the module but leaves budget_exhausted uncaught and has no stop handler. */
const CARELESS_AGENT = `import agentd

def work(ctx):
    ctx.checkpoint({"step": "before the call"})
    ctx.model({"messages": [{"role": "user", "content": "a prompt far longer than the token budget allows " * 4}]})
    return "never"

agentd.run_agent(work)
`;

interface Handoff {
  reason: string;
  summary: string | null;
  next_steps: string[];
  checkpoint: unknown;
}

function agentStderr(daemon: DaemonProcess, agent: string): string {
  return daemon.logs.filter((l) => l.msg === 'agent stderr' && l.agent === agent).map((l) => String(l.line)).join('\n');
}

async function pythonAgent(home: TestHome, name: string, source: string, budget: Record<string, unknown>): Promise<void> {
  await home.write(`agents/${name}/agent.py`, source);
  await home.write(`agents/${name}/agent.json`, { version: '1', command: ['python3', 'agent.py'], model: 'mock/echo', env: ['PATH'], budget });
}

const hasBwrap = spawnSync('bwrap', ['--ro-bind', '/', '/', 'true']).status === 0;

describe('Python agents', { skip: SKIP }, () => {
  it('the Python example answers budget_exhausted with a handoff that has a summary, and no traceback', () =>
    inHome(FAST_CONFIG, async (home) => {
      await fs.cp(path.join(REPO_ROOT, 'examples', 'python-agent'), home.path('agents', 'py'), { recursive: true });
      // The prompt alone is larger than 5 tokens: the first call is refused, then the stop follows.
      const yaml = (await fs.readFile(home.path('agents/py/agent.yaml'), 'utf8')).replace('max_tokens: 2000', 'max_tokens: 5');
      await home.write('agents/py/agent.yaml', yaml);
      await home.inbox('py', 'p1', { goal: 'Say hello in Python, at some length please' });
      await withDaemon(home, async (daemon) => {
        const ended = await daemon.runEnded('py');
        assert.equal(ended.outcome, 'limit');
        const handoff = await home.readJson<Handoff>('outbox/py/handoff.json');
        assert.equal(handoff.reason, 'max_tokens');
        assert.equal(handoff.summary, 'stopped: max_tokens');
        assert.deepEqual(handoff.next_steps, ['ask the model again']);
        assert.doesNotMatch(agentStderr(daemon, 'py'), /Traceback|agent failed/);
      });
    }));

  it('import agentd works in any home: a task runs to done through the module on PYTHONPATH', () =>
    inHome(FAST_CONFIG, async (home) => {
      await pythonAgent(home, 'mod', MODULE_AGENT, { max_steps: 3 });
      await home.inbox('mod', 'm1', { goal: 'Say hi', input: { once: true } });
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('mod')).outcome, 'done');
        const done = await home.readJson<DoneRecord>('state/mod/done/m1.json');
        assert.deepEqual(done.output, { answer: 'mock reply: Say hi', module: path.join(REPO_ROOT, 'python', 'agentd.py') });
      });
    }));

  it('a stop for max_steps ends a module agent with its own handoff and its last state, exit 0, no traceback', () =>
    inHome(FAST_CONFIG, async (home) => {
      await pythonAgent(home, 'mod', MODULE_AGENT, { max_steps: 2 });
      await home.inbox('mod', 'm2', { goal: 'Keep asking' });
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('mod')).outcome, 'limit');
        const handoff = await home.readJson<Handoff>('outbox/mod/handoff.json');
        assert.equal(handoff.reason, 'max_steps');
        assert.equal(handoff.summary, 'asked 2 time(s), stopped by max_steps');
        assert.deepEqual(handoff.next_steps, ['raise the budget']);
        assert.doesNotMatch(agentStderr(daemon, 'mod'), /Traceback|agent failed/);
        assert.ok(!daemon.logs.some((l) => l.msg === 'run ended' && l.agent === 'mod' && l.outcome === 'failed'));
      });
    }));

  it('an uncaught budget_exhausted in a module agent without a stop handler still hands off, with a summary and the last checkpoint', () =>
    inHome(FAST_CONFIG, async (home) => {
      await pythonAgent(home, 'careless', CARELESS_AGENT, { max_tokens: 10 });
      await home.inbox('careless', 'c1', { goal: 'Overspend' });
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('careless')).outcome, 'limit');
        const handoff = await home.readJson<Handoff>('outbox/careless/handoff.json');
        assert.equal(handoff.reason, 'max_tokens');
        assert.equal(handoff.summary, 'stopped: max_tokens before the task was done');
        assert.deepEqual(handoff.checkpoint, { step: 'before the call' });
        assert.doesNotMatch(agentStderr(daemon, 'careless'), /Traceback|agent failed/);
      });
    }));

  it('under sandbox: true, a Node agent still imports agentd/sdk and a Python agent still does import agentd', { skip: hasBwrap ? false : 'bubblewrap cannot run here' }, () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.write('agents/boxed-py/agent.py', MODULE_AGENT);
      await home.write('agents/boxed-py/agent.json', { version: '1', command: ['python3', 'agent.py'], model: 'mock/echo', env: ['PATH'], sandbox: true });
      await home.write('agents/boxed-js/agent.mjs', `import { runAgent } from 'agentd/sdk';\nrunAgent(async (ctx) => ({ answer: (await ctx.model({ messages: [{ role: 'user', content: ctx.task.goal }] })).content }));\n`);
      await home.write('agents/boxed-js/agent.json', { version: '1', command: ['node', 'agent.mjs'], model: 'mock/echo', sandbox: true });
      await home.inbox('boxed-py', 'b1', { goal: 'Say hi', input: { once: true } });
      await home.inbox('boxed-js', 'b2', { goal: 'Say hi' });
      await withDaemon(home, async (daemon) => {
        assert.equal((await daemon.runEnded('boxed-py')).outcome, 'done', agentStderr(daemon, 'boxed-py'));
        assert.equal((await daemon.runEnded('boxed-js')).outcome, 'done', agentStderr(daemon, 'boxed-js'));
        assert.deepEqual((await home.readJson<DoneRecord>('state/boxed-js/done/b2.json')).output, { answer: 'mock reply: Say hi' });
      });
    }));
});
