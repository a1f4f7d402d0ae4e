import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from './home.js';

/**
 * The repository's demo home (agents/, agentd.yaml) as git tracks it, never
 * as the working tree holds it: `npm start` runs the demo in place and moves
 * its inbox files into state/, so a test that copied the working tree would
 * depend on whether someone ran the demo first.
 */
export async function copyTracked(dest: string, ...parts: string[]): Promise<void> {
  await fs.mkdir(dest, { recursive: true });
  const archive = spawnSync('git', ['-C', REPO_ROOT, 'archive', '--format=tar', 'HEAD', '--', ...parts], { maxBuffer: 256 * 1024 * 1024 });
  if (archive.status !== 0) throw new Error(`git archive ${parts.join(' ')} failed: ${archive.stderr.toString()}`);
  const untar = spawnSync('tar', ['-x', '-C', dest], { input: archive.stdout });
  if (untar.status !== 0) throw new Error(`tar -x into ${dest} failed: ${untar.stderr.toString()}`);
}

/** One tracked file's text, as committed. */
export function trackedText(file: string): string {
  const shown = spawnSync('git', ['-C', REPO_ROOT, 'show', `HEAD:${file}`], { maxBuffer: 64 * 1024 * 1024 });
  if (shown.status !== 0) throw new Error(`git show HEAD:${file} failed: ${shown.stderr.toString()}`);
  return shown.stdout.toString('utf8');
}

/** `dest/<parts>`, for readers that want the path. */
export function under(dest: string, ...parts: string[]): string {
  return path.join(dest, ...parts);
}
