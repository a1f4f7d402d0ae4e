import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from './helpers/home.js';
import { FAST_CONFIG, inHome, untilInFolder, withDaemon } from './helpers/support.js';

/** The home's file system failing or refusing: read-only, full, modes. */

const isRoot = process.getuid?.() === 0;
const NOT_ROOT = 'mounting a tmpfs needs root; run the suite as root (CI does) to cover this';

/** A small tmpfs at a fresh folder, unmounted and removed by the returned function. */
export async function mountTmpfs(sizeKb: number): Promise<{ dir: string; remount(options: string): void; unmount(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k`, 'tmpfs', dir]);
  return {
    dir,
    remount: (options) => execFileSync('mount', ['-o', `remount,${options}`, dir]),
    async unmount() {
      execFileSync('umount', ['-l', dir]);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

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
