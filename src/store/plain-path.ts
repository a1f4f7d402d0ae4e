import fs from 'node:fs/promises';
import path from 'node:path';
import type { HomePaths } from './paths.js';

/**
 * The fast answer to "does this path lead anywhere but where its name says?":
 * true when `p` lies under the home by name and no part of it below the home
 * is a symlink (a part that does not exist yet ends the walk: nothing below it
 * can be a link). Such a path is inside the home and is the folder its name
 * says, so the realpath-based checks (home-file.ts escapesHome,
 * shared-folders.ts) have nothing to find. One lstat per part below the home,
 * where each realpath costs a readlink per part of the whole path, several
 * times per task (README.md, Benchmark: P3). False means "look closer", not
 * "refused".
 */
export async function plainBelowHome(paths: HomePaths, p: string): Promise<boolean> {
  const rel = path.relative(paths.root, path.resolve(p));
  if (rel === '') return true;
  if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return false;
  let at = paths.root;
  for (const part of rel.split(path.sep)) {
    at = path.join(at, part);
    let stat;
    try {
      stat = await fs.lstat(at);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return code === 'ENOENT' || code === 'ENOTDIR';
    }
    if (stat.isSymbolicLink()) return false;
  }
  return true;
}
