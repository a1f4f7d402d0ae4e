import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** True when the tests run as root, which mounting a tmpfs needs. */
export const isRoot = process.getuid?.() === 0;
export const NOT_ROOT = 'mounting a tmpfs needs root; run the suite as root (CI does) to cover this';

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

/** Fills the file system under `dir` to the last byte; the returned function frees the room again. */
export async function fillUp(dir: string): Promise<() => Promise<void>> {
  const filler = path.join(dir, 'filler');
  const handle = await fs.open(filler, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  // Ever smaller writes until not even one byte fits.
  for (let size = chunk.length; size >= 1; size = Math.floor(size / 2)) {
    try {
      for (;;) await handle.write(chunk.subarray(0, size));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
  }
  await handle.close();
  return () => fs.rm(filler, { force: true });
}
