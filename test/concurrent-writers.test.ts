import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CLI, type CliResult } from './helpers/home.js';
import { inHome } from './helpers/support.js';

/** People and the CLI writing the same files at once: nothing is overwritten, nothing is lost. */

/** Resolves once `check()` holds, looking again every few milliseconds (a condition, not a timed wait). */
async function until(check: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** True when process `pid` has `file` open. */
function hasOpen(pid: number, file: string): boolean {
  try {
    return fsSync.readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return fsSync.readlinkSync(`/proc/${pid}/fd/${fd}`) === file;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

describe('agentd submit with a fixed --id', () => {
  it('twelve concurrent submits of one id: exactly one succeeds, the others exit 1 saying the id is taken', async () => {
    await inHome(undefined, async (home) => {
      await home.scriptedAgent('billing');
      // Each submit reads its --input from a FIFO, so all twelve are held at the same point and released together.
      const fifos = Array.from({ length: 12 }, (_, i) => home.path(`input-${i}.fifo`));
      for (const fifo of fifos) execFileSync('mkfifo', [fifo]);
      const writers = fifos.map((fifo) => fsSync.openSync(fifo, fsSync.constants.O_RDWR | fsSync.constants.O_NONBLOCK));
      const children = fifos.map((fifo, i) => {
        const child = spawn(process.execPath, [CLI, 'submit', 'billing', '--goal', `goal ${i}`, '--id', 'dup', '--input', fifo, '--home', home.root], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
        child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
        const done = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
        return { child, done };
      });
      await until(() => children.every(({ child }, i) => hasOpen(child.pid!, fifos[i]!)), 'every submit to open its input');
      for (const fd of writers) {
        fsSync.writeSync(fd, '{"n":1}');
        fsSync.closeSync(fd);
      }
      const runs = await Promise.all(children.map((c) => c.done));
      const ok = runs.filter((r) => r.code === 0);
      const refused = runs.filter((r) => r.code === 1);
      assert.equal(ok.length, 1, JSON.stringify(runs));
      assert.equal(refused.length, 11, JSON.stringify(runs));
      for (const r of refused) assert.match(r.stderr, /agents\/billing\/inbox\/dup\.json already exists: choose another --id/);
      // The one that succeeded is the one whose task is on disk.
      const task = await home.readJson<{ goal: string }>('agents/billing/inbox/dup.json');
      assert.equal(task.goal, `goal ${runs.indexOf(ok[0]!)}`);
      assert.deepEqual(await fs.readdir(path.dirname(home.path('agents/billing/inbox/dup.json'))), ['dup.json'], 'no temp file is left behind');
    });
  });
});

describe('a slow writer of a task file', () => {
  it('a task written in place with a 1.5 s pause mid-write runs whole, not dead-lettered half-written', async () => {
    await inHome(undefined, async (home) => {
      await home.scriptedAgent('a');
      const daemon = home.startDaemon();
      try {
        await daemon.started();
        const text = JSON.stringify({ id: 'slow', goal: 'x', input: { script: [{ result: 'whole' }] } });
        const file = home.path('agents/a/inbox/slow.json');
        await fs.mkdir(path.dirname(file), { recursive: true });
        const handle = await fs.open(file, 'w');
        await handle.write(text.slice(0, 20));
        // The daemon has looked at the half-written file and waits for it to be quiet.
        await daemon.waitForLog((l) => l.msg === 'claim waits' && l.agent === 'a', 'the half-written file to be seen');
        await new Promise((r) => setTimeout(r, 1500)); // the writer's pause: the fault under test, not a wait for the daemon
        await handle.write(text.slice(20));
        await handle.close();
        await daemon.waitForLog((l) => l.msg === 'run ended' && l.task_id === 'slow', 'the task to run', 30_000);
      } finally {
        await daemon.stop();
      }
      assert.equal((await home.readJson<{ output: unknown }>('state/a/done/slow.json')).output, 'whole');
      assert.deepEqual(await home.list('state/dead-letter/a'), []);
    });
  });

  it('a writer that pauses past the quiet period and then writes on: the dead letter keeps every byte, and dlq retry runs the whole task', async () => {
    await inHome('quiet_period: 300ms\n', async (home) => {
      await home.scriptedAgent('a');
      const daemon = home.startDaemon();
      const text = JSON.stringify({ id: 'late', goal: 'x', input: { script: [{ result: 'every byte' }] } });
      const file = home.path('agents/a/inbox/late.json');
      await fs.mkdir(path.dirname(file), { recursive: true });
      const handle = await fs.open(file, 'w');
      try {
        await daemon.started();
        await handle.write(text.slice(0, 20));
        await daemon.waitForLog((l) => l.msg === 'malformed inbox tasks dead-lettered' && l.agent === 'a', 'the half-written file to be dead-lettered');
        // The writer goes on through the file it still holds open.
        await handle.write(text.slice(20));
        await handle.close();
        const shown = JSON.parse((await home.cli(['dlq', 'show', 'late'])).stdout) as { raw: string };
        assert.equal(shown.raw, text, 'the dead letter has the bytes written after it');
        const retried = await home.cli(['dlq', 'retry', 'late']);
        assert.equal(retried.code, 0, retried.stderr);
        await daemon.waitForLog((l) => l.msg === 'run ended' && l.task_id === 'late', 'the retried task to run', 30_000);
      } finally {
        await handle.close().catch(() => undefined);
        await daemon.stop();
      }
      assert.equal((await home.readJson<{ output: unknown }>('state/a/done/late.json')).output, 'every byte');
      assert.deepEqual(await home.list('state/dead-letter/a'), [], 'the record and the kept file are both gone after the retry');
    });
  });
});
