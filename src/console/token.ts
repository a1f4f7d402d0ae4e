import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { HomePaths } from '../store/paths.js';

/**
 * The console's access token (README "Console"): state/console.token, made
 * on first use with mode 0600 and kept across restarts, so a bookmarked URL
 * keeps working. Delete the file to change it.
 */
export async function consoleToken(paths: HomePaths): Promise<string> {
  const file = paths.consoleToken();
  try {
    const text = (await fs.readFile(file, 'utf8')).trim();
    if (text.length >= 32) return text;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = randomBytes(32).toString('base64url');
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, token + '\n', { mode: 0o600 });
  await fs.chmod(tmp, 0o600); // whatever the umask
  await fs.rename(tmp, file);
  return token;
}

/** Constant time whatever the input: both sides are hashed to the same length first. */
export function tokenMatches(given: string | null | undefined, expected: string): boolean {
  if (typeof given !== 'string' || given.length === 0) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
