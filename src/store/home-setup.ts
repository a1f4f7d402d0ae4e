import { HomeNotWritableError } from '../errors.js';
import { ensureDir } from './durable.js';
import type { HomePaths } from './paths.js';

/** Errors of a folder that cannot be created which a person fixes on the machine, not in a file. */
const NOT_WRITABLE = new Set(['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'EDQUOT', 'ENOTDIR']);

/**
 * Create state/ and outbox/ before the daemon starts. A home that cannot be
 * written (read-only mount, wrong owner, full disk) is a HomeNotWritableError
 * naming the folder and the real cause, not a stack trace.
 */
export async function prepareHome(paths: HomePaths): Promise<void> {
  for (const dir of [paths.stateRoot(), paths.outboxRoot()]) {
    try {
      await ensureDir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== undefined && NOT_WRITABLE.has(code)) throw new HomeNotWritableError(dir, code, { cause: err });
      throw err;
    }
  }
}
