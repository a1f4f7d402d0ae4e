import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { DoneRecord } from '../src/store/done-records.js';
import { TestHome } from './helpers/home.js';

/**
 * `<home>/node_modules/agentd` is how a Node agent's `import 'agentd/sdk'`
 * resolves (README "Install"). `npm install` of anything in the home prunes
 * it (npm removes what the home's package.json does not list), so a daemon
 * that made it only at start would dead-letter every Node agent of the home
 * from then on. The daemon makes it again before a process agent's run.
 */

const SDK_AGENT = `import { runAgent } from 'agentd/sdk';
runAgent(async (ctx) => {
  const reply = await ctx.model({ messages: [{ role: 'user', content: ctx.task.goal }] });
  return { answer: reply.content };
});
`;

describe('the home SDK link', () => {
  it('is made again before a run when something (npm install in the home) removed it while the daemon ran', { timeout: 60_000 }, async () => {
    const home = await TestHome.create();
    try {
      await home.write('agents/greeter/agent.yaml', 'version: "1"\ncommand: ["node", "agent.js"]\nmodel: mock/echo\nmax_attempts: 1\n');
      await home.write('agents/greeter/agent.js', SDK_AGENT);
      const daemon = home.startDaemon();
      await daemon.waitForLog((l) => l.msg === 'file watcher ready', 'file watcher ready');
      const link = home.path('node_modules', 'agentd');
      assert.ok((await fs.lstat(link)).isSymbolicLink(), 'the daemon linked the SDK into the home at start');

      await fs.rm(link); // what `npm install <pkg>` in the home does to it
      await home.inbox('greeter', 'after-npm', { goal: 'Say hi' });
      const ended = await daemon.runEnded('greeter');
      assert.equal(ended.outcome, 'done', `the run ended ${String(ended.outcome)}; dead letters: ${(await home.list('state/dead-letter/greeter')).join(', ')}`);
      const done = await home.readJson<DoneRecord>('state/greeter/done/after-npm.json');
      assert.deepEqual(done.output, { answer: 'mock reply: Say hi' });
      assert.ok((await fs.lstat(link)).isSymbolicLink(), 'the link is back');
      assert.ok(
        daemon.logs.some((l) => l.msg === 'linked the SDK into the home again' && l.link === link),
        'the daemon says it made the link again',
      );
    } finally {
      await home.close();
    }
  });
});
