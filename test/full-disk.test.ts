import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { TestHome, type LogLine } from './helpers/home.js';
import { startDaemonLoggingTo } from './helpers/process.js';
import { FAST_CONFIG, inHome, untilInFolder } from './helpers/support.js';
import { fillUp, isRoot, mountTmpfs, NOT_ROOT } from './helpers/tmpfs.js';

/** A home, or the daemon's stdout, on a file system that fills up, and then has room again. */

interface HistoryLine {
  run_id: string;
  task_id: string;
  status: string;
  error_category: string | null;
  error: string | null;
}

const onFullDisk = (l: LogLine) => l.msg === 'claim failed' && /ENOSPC/.test(JSON.stringify(l.err));

describe('a full disk under the home', () => {
  it('a run cut short by a full disk resumes as soon as writes succeed again (not at the 60 s sweep), with one history line that names the cause', { skip: isRoot ? false : NOT_ROOT }, async () => {
    const fsys = await mountTmpfs(4096);
    const gate = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-gate-'));
    try {
      await fs.mkdir(path.join(fsys.dir, 'agents'));
      await fs.writeFile(path.join(fsys.dir, 'agentd.yaml'), `${FAST_CONFIG}sweep_interval: 60s\n`);
      const home = new TestHome(fsys.dir);
      await home.scriptedAgent('a');
      const go = path.join(gate, 'go');
      // The agent waits at the gate, then calls the model: the call's journal line is the write that meets the full disk.
      const script = [{ wait_file: go }, { model: { messages: [{ role: 'user', content: 'hi' }] } }, { result: 'whole' }];
      await home.inbox('a', 't1', { goal: 'x', input: { script } });
      const daemon = home.startDaemon();
      try {
        await daemon.started();
        await daemon.waitForLog((l) => l.msg === 'run started' && l.task_id === 't1', 'the run to start');
        const free = await fillUp(fsys.dir);
        await fs.writeFile(go, '');
        // The daemon keeps looking while the disk stays full, and then is given room again.
        await daemon.waitForCount(onFullDisk, 2, 'two claims to meet the full disk', 30_000);
        await free();
        // Well inside sweep_interval (60 s): the daemon's own retries find the room.
        await daemon.waitForLog((l) => l.msg === 'run ended' && l.task_id === 't1' && l.outcome === 'done', 'the task to finish once there is room', 30_000);
      } finally {
        await daemon.stop();
      }
      assert.equal((await home.readJson<{ output: unknown }>('state/a/done/t1.json')).output, 'whole');
      const history = await home.readLines<HistoryLine>('state/a/history.jsonl').catch(() => []);
      const runIds = history.map((h) => h.run_id);
      assert.equal(new Set(runIds).size, runIds.length, `each run has one history line: ${JSON.stringify(history)}`);
      assert.deepEqual(history.filter((h) => /daemon stopped/.test(h.error ?? '')), [], 'the daemon never stopped, and no line says it did');
      const cut = history.filter((h) => h.status === 'interrupted');
      assert.equal(cut.length, 1, JSON.stringify(history));
      assert.equal(cut[0]!.error_category, 'disk_full');
      assert.match(cut[0]!.error!, /^the daemon could not go on with the run: ENOSPC/);
      assert.equal(history.at(-1)!.status, 'done');
    } finally {
      await fs.rm(gate, { recursive: true, force: true });
      await fsys.unmount();
    }
  });
});

describe('a full disk under the log', () => {
  it('SIGTERM ends a daemon whose stdout is a file on a full disk: its last flush drops what cannot be written', { skip: isRoot ? false : NOT_ROOT }, async () => {
    const fsys = await mountTmpfs(64);
    try {
      await fillUp(fsys.dir);
      await inHome(FAST_CONFIG, async (home) => {
        await home.scriptedAgent('a');
        await home.inbox('a', 't1', { goal: 'x', input: { script: [{ result: 'ok' }] } });
        const { child, stderr, exited } = await startDaemonLoggingTo(home.root, path.join(fsys.dir, 'daemon.log'));
        try {
          await untilInFolder(home.path('state/a'), () => home.readJson<{ status: string }>('state/a/done/t1.json'), () => true, 'the task to finish', 60_000);
          assert.match(stderr(), /agentd: log lines are being dropped: ENOSPC/);
          child.kill('SIGTERM');
          // A bound, not a timing: a daemon that hangs in its flush fails here instead of hanging the suite.
          const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 60_000).unref());
          assert.equal(await Promise.race([exited, hung]), 0, `the daemon exits 0 on SIGTERM; stderr: ${stderr()}`);
        } finally {
          child.kill('SIGKILL');
        }
        assert.doesNotMatch(stderr(), /Unhandled|ENOSPC.*\n\s+at /);
      });
    } finally {
      await fsys.unmount();
    }
  });

  it('with stderr on the full disk too (start >log 2>&1), the daemon neither crashes nor hangs: it finishes its task and SIGTERM ends it', { skip: isRoot ? false : NOT_ROOT }, async () => {
    const fsys = await mountTmpfs(64);
    try {
      await fillUp(fsys.dir);
      await inHome(FAST_CONFIG, async (home) => {
        await home.scriptedAgent('a');
        await home.inbox('a', 't1', { goal: 'x', input: { script: [{ result: 'ok' }] } });
        const { child, exited } = await startDaemonLoggingTo(home.root, path.join(fsys.dir, 'daemon.log'), true);
        try {
          const finished = untilInFolder(home.path('state/a'), () => home.readJson<{ status: string }>('state/a/done/t1.json'), () => true, 'the task to finish', 60_000);
          const crashed = exited.then((code) => `the daemon exited (${code}) before its task finished`);
          const first = await Promise.race([finished, crashed]);
          assert.equal(typeof first === 'string' ? first : first.status, 'done');
          assert.equal(child.exitCode, null, 'the daemon is still running');
          child.kill('SIGTERM');
          const hung = new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 60_000).unref());
          assert.equal(await Promise.race([exited, hung]), 0, 'the daemon exits 0 on SIGTERM');
        } finally {
          child.kill('SIGKILL');
        }
      });
    } finally {
      await fsys.unmount();
    }
  });
});
