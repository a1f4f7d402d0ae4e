import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HistoryLine } from '../src/store/history.js';
import fs from 'node:fs/promises';
import { FAST_CONFIG, inHome, isAlive } from './helpers/support.js';
import { HomePaths } from '../src/store/paths.js';
import { readLiveGroups } from '../src/store/process-registry.js';

/** Polls `ok` (a process table or file check no event announces) until it holds. */
async function until(ok: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Faults at the worst moment (issue 11): a kill -9 put exactly between two
 * writes with the test-only AGENTD_TEST_CRASH_AT hook, then a restart.
 */
describe('kill -9 at the worst moment', () => {
  it('between linking inbox/order.json (id o-77) to current-task.json and unlinking it: the task runs once', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('worker');
      await home.write('agents/worker/inbox/order.json', { id: 'o-77', goal: 'ship order 77', input: { script: [{ result: 'shipped' }] } });

      const crashing = home.startDaemon({ AGENTD_TEST_CRASH_AT: 'promote-linked' });
      assert.equal((await crashing.exited).signal, 'SIGKILL');
      assert.ok(await home.exists('agents/worker/current-task.json'), 'the crash left the task linked to current-task.json');
      assert.ok(await home.exists('agents/worker/inbox/order.json'), 'and still in the inbox under its file name');

      const daemon = home.startDaemon();
      try {
        await daemon.runEnded('worker');
      } finally {
        await daemon.stop();
      }
      const runs = (await home.readLines<HistoryLine>('state/worker/history.jsonl')).filter((l) => l.task_id.startsWith('o-77'));
      assert.deepEqual(runs.map((l) => [l.task_id, l.status]), [['o-77', 'done']]);
      assert.deepEqual(await home.list('agents/worker/inbox'), [], 'no copy of the task is left to run again');
      assert.deepEqual(await home.list('state/worker/done'), ['o-77.json']);
    }));
});

describe('a claim that fails after the agent process started', () => {
  it('kills that process: no run goes on that nobody records', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('worker');
      // The claim's audit append fails (EISDIR) after the spawn, in the claim's last step.
      await fs.mkdir(home.path('state/audit.jsonl'), { recursive: true });
      await home.inbox('worker', 'c1', { goal: 'never recorded', input: { script: [{ sleep: 60_000 }, { result: 'late' }] } });
      const daemon = home.startDaemon();
      try {
        await daemon.waitForLog((l) => l.msg === 'claim failed' && l.agent === 'worker', 'the claim to fail');
        // The claim is retried (and fails again): each claim empties the registry first, then records its agent.
        let pid: number | undefined;
        await until(async () => (pid = (await readLiveGroups(new HomePaths(home.root), 'worker')).find((g) => g.kind === 'agent')?.pgid) !== undefined, 'the spawned agent to be recorded (state/worker/pids.jsonl)', 30_000);
        const recorded = pid!;
        await until(() => !isAlive(recorded), 'the agent process of the failed claim to be killed', 30_000);
      } finally {
        await daemon.stop();
      }
    }));
});

describe('kill -9 of the daemon during a tool call', () => {
  const TOOL = [
    "const fs=require('fs');fs.writeFileSync('tool.pid',String(process.pid));",
    "const t=setInterval(()=>{if(fs.existsSync('go')){clearInterval(t);fs.appendFileSync('side-effects.txt','posted\\n');process.stdout.write('{}')}},10)",
  ].join('');

  it('the restart kills the tool process group before anything is settled: an answered --retry makes one side effect, not two', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('poster', { tools: { post: { command: ['node', '-e', TOOL], effect: 'write', approval: 'never' } } });
      await home.inbox('poster', 'p1', { goal: 'post once', input: { script: [{ tool: 'post', args: {} }, { result: 'posted' }] } });
      const first = home.startDaemon();
      const pidFile = home.path('agents/poster/tool.pid');
      try {
        await until(async () => (await fs.readFile(pidFile, 'utf8').catch(() => '')) !== '', 'the tool to start');
        first.child.kill('SIGKILL');
        await first.exited;
      } finally {
        await first.stop();
      }
      const oldTool = Number(await fs.readFile(pidFile, 'utf8'));
      assert.ok(isAlive(oldTool), 'the killed daemon left the tool running');
      await fs.rm(pidFile);

      const second = home.startDaemon();
      try {
        const asked = await second.waitForLog((l) => l.msg === 'escalated to the outbox' && l.kind === 'unsure_side_effect', 'the unsure_side_effect item');
        await until(() => !isAlive(oldTool), 'the restart to kill the orphaned tool', 5_000);
        const resolved = await home.cli(['resolve', String(asked.item_id), '--retry']);
        assert.equal(resolved.code, 0, resolved.stderr);
        await until(async () => (await fs.readFile(pidFile, 'utf8').catch(() => '')) !== '', 'the retried tool to start');
        await home.write('agents/poster/go', 'go');
        await second.runEnded('poster', 2);
      } finally {
        await second.stop();
      }
      assert.equal(await fs.readFile(home.path('agents/poster/side-effects.txt'), 'utf8'), 'posted\n', 'one side effect');
      assert.deepEqual(await readLiveGroups(new HomePaths(home.root), 'poster'), [], 'nothing left recorded');
    }));
});
