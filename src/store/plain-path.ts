import { lstatSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { HomePaths } from './paths.js';
import { inlineOr } from './inline-calls.js';

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
export function plainBelowHome(paths: HomePaths, p: string): Promise<boolean> {
  return inlineOr(() => plainBelowHomeSync(paths, p), () => plainBelowHomePooled(paths, p)); // store/inline-calls.ts
}

async function plainBelowHomePooled(paths: HomePaths, p: string): Promise<boolean> {
  const parts = partsBelowHome(paths, p);
  if (parts === null) return false;
  for (const at of parts) {
    let stat;
    try {
      stat = await fs.lstat(at);
    } catch (err) {
      return missingEndsWalk(err);
    }
    if (stat.isSymbolicLink()) return false;
  }
  return true;
}

/**
 * Each path from the home's first part below it down to `p`, in order: what
 * plainBelowHome (and its sync twin) lstats. Null when `p`
 * is not under the home by name; empty for the home itself. Pure.
 */
export function partsBelowHome(paths: HomePaths, p: string): string[] | null {
  const rel = path.relative(paths.root, path.resolve(p));
  if (rel === '') return [];
  if (rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) return null;
  const parts: string[] = [];
  let at = paths.root;
  for (const part of rel.split(path.sep)) parts.push((at = path.join(at, part)));
  return parts;
}

/** A part that does not exist ends the walk with "plain": nothing below it can be a link. Any other error: look closer. */
export function missingEndsWalk(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** plainBelowHome, with lstatSync. */
export function plainBelowHomeSync(paths: HomePaths, p: string): boolean {
  const parts = partsBelowHome(paths, p);
  if (parts === null) return false;
  for (const at of parts) {
    try {
      if (lstatSync(at).isSymbolicLink()) return false;
    } catch (err) {
      return missingEndsWalk(err);
    }
  }
  return true;
}
