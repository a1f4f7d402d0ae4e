import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from './helpers/home.js';
import { startDaemonLoggingTo } from './helpers/process.js';
import { FAST_CONFIG, inHome, untilInFolder, withDaemon } from './helpers/support.js';
import { isRoot, mountTmpfs, NOT_ROOT } from './helpers/tmpfs.js';

/** The home's file system failing or refusing: read-only, full, modes. */

describe('a read-only home', () => {
  it('start on a read-only home without state/ says EROFS and the folder, without a stack trace', { skip: isRoot ? false : NOT_ROOT }, async () => {
    const fsys = await mountTmpfs(1024);
    try {
      await fs.mkdir(path.join(fsys.dir, 'agents'));
      fsys.remount('ro');
      const r = await runCli(['start', '--home', fsys.dir]);
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `agentd: ${path.join(fsys.dir, 'state')}: cannot create it: the file system is read-only (EROFS); the home must be writable\n`);
    } finally {
      await fsys.unmount();
    }
  });
});

describe('file_mode.state', () => {
  it('0600 applies to state/daemon.json and state/<agent>.owner too', async () => {
    await inHome(`${FAST_CONFIG}file_mode: { state: "0600" }\n`, async (home) => {
      await home.scriptedAgent('a');
      await home.inbox('a', 't1', { goal: 'x', input: { script: [{ result: 'ok' }] } });
      await withDaemon(home, async (daemon) => {
        await daemon.runEnded('a');
        const modeOf = (rel: string) => untilInFolder(path.dirname(home.path(rel)), async () => ((await fs.stat(home.path(rel))).mode & 0o777).toString(8), () => true, rel);
        assert.equal(await modeOf('state/daemon.json'), '600');
        assert.equal(await modeOf('state/a.owner'), '600');
        assert.equal(await modeOf('state/a/done/t1.json'), '600');
      });
    });
  });
});

describe('a full disk under the log', () => {
  it('a daemon whose stdout is a file on a full disk does not crash: it keeps running and finishes its tasks', { skip: isRoot ? false : NOT_ROOT }, async () => {
    const fsys = await mountTmpfs(64);
    try {
      // Fill the tmpfs so that every log write fails with ENOSPC.
      await fs.writeFile(path.join(fsys.dir, 'filler'), Buffer.alloc(64 * 1024)).catch(() => undefined);
      await inHome(FAST_CONFIG, async (home) => {
        await home.scriptedAgent('a');
        await home.inbox('a', 't1', { goal: 'x', input: { script: [{ result: 'ok' }] } });
        const { child, stderr, exited } = await startDaemonLoggingTo(home.root, path.join(fsys.dir, 'daemon.log'));
        try {
          const done = await untilInFolder(home.path('state/a'), () => home.readJson<{ status: string }>('state/a/done/t1.json'), () => true, 'the task to finish', 60_000);
          assert.equal(done.status, 'done');
          assert.equal(child.exitCode, null, `the daemon is still running; stderr: ${stderr()}`);
          assert.match(stderr(), /agentd: log lines are being dropped: ENOSPC/);
        } finally {
          // This test is about not crashing; full-disk.test.ts stops such a daemon with SIGTERM.
          child.kill('SIGKILL');
        }
        await exited;
        assert.doesNotMatch(stderr(), /Unhandled|ENOSPC.*\n\s+at /);
      });
    } finally {
      await fsys.unmount();
    }
  });
});
