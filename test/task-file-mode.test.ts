import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import pino from 'pino';
import { loadAgentDefinition } from '../src/config/agent-definition.js';
import { loadDaemonConfig } from '../src/config/daemon-config.js';
import { fileScheduleStore } from '../src/daemon/schedule-ports.js';
import { scheduledTask } from '../src/daemon/schedule-rules.js';
import { applySecuritySettings } from '../src/security/apply.js';
import { setDefaultFileMode, setPeopleFileMode } from '../src/store/durable.js';
import { HomePaths } from '../src/store/paths.js';
import { runCli } from './helpers/home.js';
import { inHome } from './helpers/support.js';

/**
 * Every task file written into agents/ has one mode, file_mode.outbox
 * (README "Permissions"), whoever wrote it: `agentd submit`, a schedule,
 * `agentd dlq retry`, `agentd init` (store/inbox-writer.ts).
 */

const mode = async (file: string) => (await fs.stat(file)).mode & 0o777;

describe('task file mode', () => {
  it('submit, a schedule and dlq retry write task files with the configured file_mode.outbox', async () => {
    await inHome('file_mode: { state: "0600", outbox: "0640" }\n', async (home) => {
      await home.scriptedAgent('a', { schedule: [{ cron: '0 9 * * *', task: { goal: 'daily' } }] });
      const submitted = await home.cli(['submit', 'a', '--goal', 'by hand', '--id', 'by-hand']);
      assert.equal(submitted.code, 0, submitted.stderr);

      // The schedule writes in the daemon's process, after the daemon applied its config.
      const paths = new HomePaths(home.root);
      const config = await loadDaemonConfig(paths);
      const agent = (await loadAgentDefinition(paths, config, 'a'))!;
      try {
        applySecuritySettings(config, pino({ level: 'silent' }), home.root, {});
        const task = scheduledTask(agent.schedule[0]!, 0, new Date('2026-01-01T09:00:00Z'));
        assert.equal(await fileScheduleStore(paths).write('a', task), true);
      } finally {
        setDefaultFileMode(0o640);
        setPeopleFileMode(0o660);
      }

      await home.write('state/dead-letter/a/failed.json', { v: 1, agent: 'a', task: { id: 'failed', created_at: '2026-01-01T00:00:00.000Z', goal: 'again' }, error: { category: 'crash', message: 'exit 1' }, attempts: 3, runs: [], source: 'current', dead_lettered_at: '2026-01-01T00:00:00.000Z' });
      const retried = await home.cli(['dlq', 'retry', 'failed']);
      assert.equal(retried.code, 0, retried.stderr);

      const modes = {
        submit: await mode(home.path('agents/a/inbox/by-hand.json')),
        schedule: await mode(home.path('agents/a/inbox/cron-0-202601010900.json')),
        dlqRetry: await mode(home.path('agents/a/inbox/failed.json')),
      };
      assert.deepEqual(modes, { submit: 0o640, schedule: 0o640, dlqRetry: 0o640 });
    });
  });

  it('with no file_mode, init, submit and dlq retry all write 0660', async () => {
    await inHome(undefined, async (home) => {
      const dir = home.path('fresh');
      const init = await runCli(['init', dir]);
      assert.equal(init.code, 0, init.stderr);
      const submitted = await runCli(['submit', 'example', '--goal', 'x', '--id', 'sub', '--home', dir]);
      assert.equal(submitted.code, 0, submitted.stderr);
      await fs.mkdir(`${dir}/state/dead-letter/example`, { recursive: true });
      await fs.writeFile(`${dir}/state/dead-letter/example/dl.json`, JSON.stringify({ v: 1, agent: 'example', task: { id: 'dl', created_at: '2026-01-01T00:00:00.000Z', goal: 'again' }, error: { category: 'crash', message: 'exit 1' }, attempts: 3, runs: [], source: 'current', dead_lettered_at: '2026-01-01T00:00:00.000Z' }));
      const retried = await runCli(['dlq', 'retry', 'dl', '--home', dir]);
      assert.equal(retried.code, 0, retried.stderr);
      const modes = [await mode(`${dir}/agents/example/inbox/hello.json`), await mode(`${dir}/agents/example/inbox/sub.json`), await mode(`${dir}/agents/example/inbox/dl.json`)];
      assert.deepEqual(modes, [0o660, 0o660, 0o660]);
    });
  });
});
