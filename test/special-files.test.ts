import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FAST_CONFIG, inHome, untilInFolder, withDaemon } from './helpers/support.js';

/** FIFOs, links out of the home and reserved names in the home never hang, leak or break the daemon. */

describe('special files in the home', () => {
  it('outbox.json and handoff.json as FIFOs hang neither start-up nor a claim, and SIGTERM still stops the daemon', async () => {
    await inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('a');
      await home.scriptedAgent('b');
      await fs.mkdir(home.path('outbox/a'), { recursive: true });
      execFileSync('mkfifo', [home.path('outbox/a/outbox.json')]);
      execFileSync('mkfifo', [home.path('outbox/a/handoff.json')]);
      await home.inbox('a', 't1', { goal: 'x', input: { script: [{ result: 'ok' }] } });
      await home.inbox('b', 't2', { goal: 'y', input: { script: [{ result: 'ok' }] } });
      const daemon = home.startDaemon();
      try {
        await daemon.started();
        await daemon.runEnded('b'); // the claim of a did not block the daemon's threads
        const refused = await daemon.waitForLog((l) => l.agent === 'a' && JSON.stringify(l).includes('is not a regular file'), 'the FIFO to be named');
        assert.match(JSON.stringify(refused), /outbox\.json is not a regular file/);
      } finally {
        const exit = await daemon.stop('SIGTERM');
        assert.equal(exit.code, 0);
      }
    });
  });

  it('a context-snapshot.json linked out of the home is refused, never handed to the agent', async () => {
    const outside = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-outside-'));
    try {
      await fs.writeFile(path.join(outside, 'secret.json'), JSON.stringify({ secret: 'hunter2-outside', updated_at: new Date().toISOString() }));
      await inHome(FAST_CONFIG, async (home) => {
        await home.scriptedAgent('a', { freshness: { context_max_age: '1h' } });
        await fs.symlink(path.join(outside, 'secret.json'), home.path('agents/a/context-snapshot.json'));
        await home.inbox('a', 't1', { goal: 'x', input: { trace_file: 'trace.jsonl', script: [{ result: 'ok' }] } });
        await withDaemon(home, async () => {
          const outbox = await untilInFolder(home.path('outbox/a'), () => home.readJson<{ items: { kind: string; reason: string }[] }>('outbox/a/outbox.json'), (o) => o.items.length > 0, 'an outbox item');
          assert.equal(outbox.items[0]!.kind, 'stale_context');
          assert.match(outbox.items[0]!.reason, /context-snapshot\.json is a symlink that resolves outside the home/);
        });
        const trace = await fs.readFile(home.path('agents/a/trace.jsonl'), 'utf8').catch(() => '');
        assert.doesNotMatch(trace, /hunter2-outside/);
      });
    } finally {
      await fs.rm(outside, { recursive: true, force: true });
    }
  });

  for (const name of ['audit.jsonl', 'audit.head.json', 'audit.head.jsonl']) {
    it(`an agent folder named ${name} is refused as a config_error and the audit file stays a file`, async () => {
      await inHome(FAST_CONFIG, async (home) => {
        await home.scriptedAgent(name);
        await home.scriptedAgent('b');
        await home.inbox(name, 't0', { goal: 'x', input: { script: [{ result: 'ok' }] } });
        await home.inbox('b', 't1', { goal: 'y', input: { script: [{ result: 'ok' }] } });
        await withDaemon(home, async (daemon) => {
          const refused = await daemon.waitForLog((l) => l.folder === `agents/${name}`, 'the folder to be refused');
          assert.equal(refused.category, 'config_error');
          await daemon.runEnded('b');
        });
        assert.equal((await fs.stat(home.path('state/audit.jsonl'))).isFile(), true);
        if (await home.exists(`state/${name}`)) assert.equal((await fs.stat(home.path(`state/${name}`))).isFile(), true);
        const validate = await home.cli(['validate']);
        assert.equal(validate.code, 1);
        assert.match(validate.stdout + validate.stderr, new RegExp(`agents/${name.replace('.', '\\.')}: is not an allowed agent name`));
      });
    });
  }
});
