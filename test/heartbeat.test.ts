import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAgentDefinition } from '../src/config/agent-definition.js';
import { loadDaemonConfig } from '../src/config/daemon-config.js';
import { HomePaths } from '../src/store/paths.js';
import { completion, startStandIn } from './helpers/home.js';
import { FAST_CONFIG, inHome, isAlive, withDaemon } from './helpers/support.js';

/**
 * heartbeat_timeout: an agent that is alive but has said nothing for that
 * long, while no call of its waits on the daemon, is hung. Its run fails
 * with category `timeout` and its process group is killed.
 */

interface HistoryLine {
  task_id: string;
  status: string;
  error_category: string | null;
  error: string | null;
}

/** Starts a child in its process group, writes both pids, says one thing, then hangs without a word. */
const HUNG_AGENT = `
import { spawn } from 'node:child_process';
import fs from 'node:fs';
const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
fs.writeFileSync('pids.json', JSON.stringify({ agent: process.pid, child: child.pid }));
process.stdout.write(JSON.stringify({ type: 'log', level: 'info', msg: 'about to hang' }) + '\\n');
setInterval(() => {}, 1000);
`;

describe('heartbeat_timeout', () => {
  it('resolves from the definition, else agentd.yaml defaults, else 5m', async () => {
    await inHome('defaults:\n  heartbeat_timeout: 2m\n', async (home) => {
      await home.scriptedAgent('own', { heartbeat_timeout: '30s' });
      await home.scriptedAgent('inherits');
      const paths = new HomePaths(home.root);
      const config = await loadDaemonConfig(paths);
      assert.equal((await loadAgentDefinition(paths, config, 'own'))?.heartbeatTimeoutMs, 30_000);
      assert.equal((await loadAgentDefinition(paths, config, 'inherits'))?.heartbeatTimeoutMs, 120_000);
    });
    await inHome(undefined, async (home) => {
      await home.scriptedAgent('plain');
      const paths = new HomePaths(home.root);
      assert.equal((await loadAgentDefinition(paths, await loadDaemonConfig(paths), 'plain'))?.heartbeatTimeoutMs, 300_000);
      await home.scriptedAgent('typo', { heartbeat_timeout: 'soon' });
      await assert.rejects(loadAgentDefinition(paths, await loadDaemonConfig(paths), 'typo'), /agents\/typo\/agent\.json: heartbeat_timeout must be a duration like 500ms/);
    });
  });

  it('fails a silent agent with category timeout and kills its process group', async () => {
    await inHome(FAST_CONFIG, async (home) => {
      await home.write('agents/hung/agent.mjs', HUNG_AGENT);
      await home.write('agents/hung/agent.json', { version: '1', command: ['node', 'agent.mjs'], model: 'mock/echo', heartbeat_timeout: '500ms', max_attempts: 1 });
      await home.inbox('hung', 't1', { goal: 'hang' });
      await withDaemon(home, async (daemon) => {
        const ended = await daemon.runEnded('hung');
        assert.equal(ended.outcome, 'failed');
        const said = await daemon.waitForLog((l) => l.msg === 'agent log' && l.agent === 'hung', 'the agent\'s last message');
        const silent = await daemon.waitForLog((l) => l.msg === 'agent silent past heartbeat_timeout, killing it', 'the heartbeat to fire');
        assert.equal(silent.heartbeat_timeout_ms, 500);
        // When the silence starts is checked to the millisecond on a manual clock (run-limits-clock.test.ts);
        // here, on real time and a loaded machine, only the order is.
        assert.ok((silent.time as number) >= (said.time as number), 'the heartbeat fires after the last message');

        const [history] = await home.readLines<HistoryLine>('state/hung/history.jsonl');
        assert.equal(history?.status, 'dead_letter', 'max_attempts 1: the failed run dead-letters the task');
        assert.equal(history?.error_category, 'timeout');
        assert.equal(history?.error, 'agent sent no protocol message for 500ms (heartbeat_timeout)');
        const dead = await home.readJson<{ error: { category: string; message: string } }>('state/dead-letter/hung/t1.json');
        assert.equal(dead.error.category, 'timeout');

        const pids = await home.readJson<{ agent: number; child: number }>('agents/hung/pids.json');
        assert.equal(isAlive(pids.agent), false, 'the agent is gone');
        assert.equal(isAlive(pids.child), false, 'what it started is gone with it');
      });
    });
  });

  it('does not count the time a call waits on the daemon, and every message resets it', async () => {
    const slowModel = await startStandIn(() => ({ body: completion('slow answer'), delayMs: 3000 }));
    try {
      const config = `${FAST_CONFIG}providers:\n  slow: { kind: openai, base_url: "${slowModel.url}" }\n`;
      await inHome(config, async (home) => {
        await home.scriptedAgent('patient', { model: 'slow/m', heartbeat_timeout: '2s' });
        await home.inbox('patient', 'waits', { goal: 'x', input: { script: [{ model: { messages: [{ role: 'user', content: 'take your time' }] } }, { result: '$last' }] } });
        // 2.4s of talking in 400ms gaps, under a 2s heartbeat (wide margins: the agent's own start-up counts as silence).
        const chatty = [{ log: 'start' }, ...Array.from({ length: 6 }, (_, i) => [{ sleep: 400 }, { log: `still here ${i}` }]).flat(), { result: 'ok' }];
        await home.scriptedAgent('chatty', { heartbeat_timeout: '2s' });
        await home.inbox('chatty', 'talks', { goal: 'x', input: { script: chatty } });
        await withDaemon(home, async (daemon) => {
          assert.equal((await daemon.runEnded('patient')).outcome, 'done', 'a 3s model call under a 2s heartbeat is not silence');
          assert.equal((await daemon.runEnded('chatty')).outcome, 'done', 'messages 400ms apart keep a 2s heartbeat alive');
          assert.equal(daemon.logs.filter((l) => l.msg === 'agent silent past heartbeat_timeout, killing it').length, 0);
        });
      });
    } finally {
      await slowModel.close();
    }
  });
});
