import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { OutboxFile, OutboxItem } from '../src/store/outbox.js';
import type { TestHome } from './helpers/home.js';
import { inHome } from './helpers/support.js';

/**
 * A person saves outbox.json in place while `agentd resolve` is writing it.
 * AGENTD_TEST_PAUSE_AT (src/store/test-pause.ts) holds the writer at the
 * worst moment, so the person's save lands exactly there: no timing luck.
 */

function item(id: string): OutboxItem {
  return { id, kind: 'uncertain', agent: 'a', task_id: `t-${id.slice(2)}`, run_id: 'r1', created_at: '2026-01-01T00:00:00Z', reason: 'which amount?', status: 'open' };
}

/** Resolves once `check()` holds, looking again every few milliseconds (a condition, not a timed wait). */
async function until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The person's edit: they answer item a:0002 themselves, in their own words. */
function personsVersion(outbox: OutboxFile): string {
  const items = outbox.items.map((i) => (i.id === 'a:0002' ? { ...i, status: 'resolved' as const, resolution: { decision: 'answer' as const, answer: 'use 42 EUR', by: 'ann' } } : i));
  return JSON.stringify({ v: 1, items }, null, 2) + '\n';
}

async function resolveWhilePersonSaves(home: TestHome, point: string, save: (file: string) => Promise<void>): Promise<void> {
  const pause = home.path('pause');
  const resolving = home.cli(['resolve', 'a:0001', '--continue'], { AGENTD_TEST_PAUSE_AT: point, AGENTD_TEST_PAUSE_FILE: pause });
  await until(() => existsSync(pause), `agentd resolve to reach ${point}`);
  await save(home.path('outbox/a/outbox.json'));
  await fs.rm(pause);
  const r = await resolving;
  assert.equal(r.code, 0, r.stderr);
}

async function assertBothKept(home: TestHome): Promise<void> {
  const outbox = await home.readJson<OutboxFile>('outbox/a/outbox.json');
  const byId = new Map(outbox.items.map((i) => [i.id, i]));
  assert.equal(byId.get('a:0001')?.resolution?.decision, 'continue', "agentd resolve's answer is kept");
  assert.equal(byId.get('a:0002')?.resolution?.answer, 'use 42 EUR', "the person's edit is kept");
  assert.equal(byId.get('a:0003')?.status, 'open');
  assert.deepEqual((await home.list('outbox/a')).filter((n) => !n.startsWith('.outbox.lock')), ['outbox.json'], 'no side file is left behind');
}

describe("a person's in-place save of outbox.json during agentd resolve", () => {
  const original = { v: 1, items: [item('a:0001'), item('a:0002'), item('a:0003')] };

  it('a save that lands between the read and the rename is kept, and the resolution is applied on top of it', async () => {
    await inHome(undefined, async (home) => {
      await home.write('outbox/a/outbox.json', original);
      await resolveWhilePersonSaves(home, 'outbox-before-rename', async (file) => {
        // In place: the same file, truncated and rewritten, as an editor without atomic saves does.
        await fs.writeFile(file, personsVersion(original as OutboxFile));
      });
      await assertBothKept(home);
    });
  });

  it('a save through a handle opened before the rename and written after it is kept too', async () => {
    await inHome(undefined, async (home) => {
      await home.write('outbox/a/outbox.json', original);
      // The editor opened the file before agentd resolve replaced it, and saves through that handle afterwards.
      const editor = await fs.open(home.path('outbox/a/outbox.json'), 'r+');
      try {
        await resolveWhilePersonSaves(home, 'outbox-after-rename', async () => {
          await editor.truncate(0);
          await editor.write(personsVersion(original as OutboxFile), 0);
        });
      } finally {
        await editor.close();
      }
      await assertBothKept(home);
    });
  });

  it('a save caught half-written, which its editor then finishes through the same handle, is waited for and kept', async () => {
    await inHome(undefined, async (home) => {
      await home.write('outbox/a/outbox.json', original);
      const whole = personsVersion(original as OutboxFile);
      const editor = await fs.open(home.path('outbox/a/outbox.json'), 'r+');
      try {
        const pause = home.path('pause');
        const resolving = home.cli(['resolve', 'a:0001', '--continue'], { AGENTD_TEST_PAUSE_AT: 'outbox-before-rename', AGENTD_TEST_PAUSE_FILE: pause });
        await until(() => existsSync(pause), 'agentd resolve to reach its rename');
        await editor.truncate(0);
        await editor.write(whole.slice(0, 100), 0);
        await fs.rm(pause);
        // Whenever resolve reads it (half or whole), the rest comes: it waits for a save that parses.
        await editor.write(whole.slice(100), 100);
        const r = await resolving;
        assert.equal(r.code, 0, r.stderr);
      } finally {
        await editor.close();
      }
      await assertBothKept(home);
    });
  });

  it('a save caught half-written that stays so for the quiet period is put back as the file, and resolve says the file is broken instead of overwriting it', async () => {
    await inHome(undefined, async (home) => {
      await home.write('outbox/a/outbox.json', original);
      const half = personsVersion(original as OutboxFile).slice(0, 100);
      const pause = home.path('pause');
      const resolving = home.cli(['resolve', 'a:0001', '--continue'], { AGENTD_TEST_PAUSE_AT: 'outbox-before-rename', AGENTD_TEST_PAUSE_FILE: pause });
      await until(() => existsSync(pause), 'agentd resolve to reach its rename');
      await fs.writeFile(home.path('outbox/a/outbox.json'), half);
      await fs.rm(pause);
      const r = await resolving;
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /outbox\/a\/outbox\.json: is not valid JSON/);
      assert.equal(await fs.readFile(home.path('outbox/a/outbox.json'), 'utf8'), half, "the person's bytes are the file, as they left them");
    });
  });

  it('a save that lands while the daemon adds an item (an agent unsure of its task) is kept beside the new item', async () => {
    await inHome(undefined, async (home) => {
      await home.scriptedAgent('a');
      await home.write('outbox/a/outbox.json', original);
      await home.inbox('a', 't1', { goal: 'x', input: { script: [{ uncertain: { reason: 'two amounts', question: 'which one?' } }] } });
      const pause = home.path('pause');
      const daemon = home.startDaemon({ AGENTD_TEST_PAUSE_AT: 'outbox-before-rename', AGENTD_TEST_PAUSE_FILE: pause });
      try {
        await until(() => existsSync(pause), 'the daemon to reach its rename of outbox.json');
        await fs.writeFile(home.path('outbox/a/outbox.json'), personsVersion(original as OutboxFile));
        await fs.rm(pause);
        await daemon.waitForLog((l) => l.msg === 'run ended' && l.task_id === 't1', 'the escalated run to end');
      } finally {
        await daemon.stop();
      }
      const outbox = await home.readJson<OutboxFile>('outbox/a/outbox.json');
      assert.equal(outbox.items.find((i) => i.id === 'a:0002')?.resolution?.answer, 'use 42 EUR', "the person's edit is kept");
      const added = outbox.items.filter((i) => i.task_id === 't1');
      assert.equal(added.length, 1, JSON.stringify(outbox.items));
      assert.equal(added[0]!.kind, 'uncertain');
      assert.equal(added[0]!.question, 'which one?');
    });
  });
});
