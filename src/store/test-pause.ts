import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';

/**
 * Test-only pause (README.md, Development): when the environment variable
 * AGENTD_TEST_PAUSE_AT names a point, the process writes the file named by
 * AGENTD_TEST_PAUSE_FILE there and waits until a test removes it, once per
 * process. A test can so put a person's edit into a window of microseconds
 * (between a writer's read and its rename) that no outside timing could hit
 * reliably. Unset (always, outside tests), it costs one environment lookup.
 */
/** `watcher-before-start`: the daemon has logged 'daemon started' and not yet started its watcher (daemon.ts). */
export type PausePoint = 'outbox-before-rename' | 'outbox-after-rename' | 'watcher-before-start';

const passed = new Set<PausePoint>();

export async function pausePoint(point: PausePoint): Promise<void> {
  if (process.env.AGENTD_TEST_PAUSE_AT !== point || passed.has(point)) return;
  const file = process.env.AGENTD_TEST_PAUSE_FILE;
  if (!file) return;
  passed.add(point);
  await fs.writeFile(file, String(process.pid));
  while (existsSync(file)) await new Promise((resolve) => setTimeout(resolve, 5));
}
