import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { FAST_CONFIG, inHome, isAlive, untilInFolder } from './helpers/support.js';

/** SIGTERM while a tool runs: the daemon stops within its grace, the tool's group is killed, the task resumes. */

describe('SIGTERM during a long tool call', () => {
  it('the daemon exits without waiting for the tool, kills its group, and the journal keeps the call as in flight', async () => {
    await inHome(FAST_CONFIG, async (home) => {
      // A read tool that records its pid and then would run for ten minutes (its timeout too).
      await home.write('agents/a/tools/slow.mjs', "import fs from 'node:fs'; fs.writeFileSync('tool.pid', String(process.pid)); setTimeout(() => process.stdout.write('{}'), 600_000);");
      await home.scriptedAgent('a', { tools: { slow: { command: ['node', 'tools/slow.mjs'], effect: 'read', timeout: '10m' } } });
      await home.inbox('a', 't1', { goal: 'x', input: { script: [{ tool: 'slow' }, { result: 'ok' }] } });
      const daemon = home.startDaemon();
      let toolPid = 0;
      try {
        toolPid = Number(await untilInFolder(home.path('agents/a'), () => fs.readFile(home.path('agents/a/tool.pid'), 'utf8'), (t) => t.length > 0, 'the tool to start', 60_000));
        assert.ok(isAlive(toolPid));
      } finally {
        const exit = await daemon.stop('SIGTERM');
        assert.equal(exit.code, 0);
      }
      assert.equal(isAlive(toolPid), false, 'the tool was killed with its run');
      const journal = await home.readLines<{ kind: string; phase: string }>('state/a/journal/t1.jsonl');
      assert.deepEqual(journal.filter((l) => l.kind === 'tool').map((l) => l.phase), ['started'], 'the call stays in flight: a resume runs the read tool again');
      assert.equal(await home.exists('agents/a/current-task.json'), true, 'the task waits for the next start');
    });
  });
});
