/**
 * Support for the end-to-end tests beside home.ts: a fresh home and daemon per
 * test, and waiting on files and processes by their events, never by
 * sleeping (the daemon writes some files just after a log line a test can await).
 */
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { TestHome, type DaemonProcess } from './home.js';

/** Fast retries, a short stop grace and the shortest lock lease, so tests wait on events, not on defaults. */
export const FAST_CONFIG = `
defaults:
  retry: { attempts: 2, base_delay: 10ms, max_delay: 50ms }
  stop_grace: 1s
lock_stale: 2s
`;

/**
 * Resolves with `read()`'s value once `accept` holds: checked now and on every
 * change inside `dir` (created if missing, so that it can be watched).
 */
export async function untilInFolder<T>(dir: string, read: () => Promise<T>, accept: (value: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  await fs.mkdir(dir, { recursive: true });
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let last: T | undefined;
    const watcher = fsSync.watch(dir, () => void check());
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(last)}`)), timeoutMs);
    const finish = (err: Error | null, value?: T) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watcher.close();
      if (err) reject(err);
      else resolve(value as T);
    };
    const check = async () => {
      try {
        last = await read();
        if (accept(last)) finish(null, last);
      } catch {
        // not there yet, or caught mid-write: the next event checks again
      }
    };
    void check();
  });
}

/** Reads a JSON file, or null when it is missing. */
export async function readJsonOrNull<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export { isAlive } from './process.js';

/** Every regular file under `dir`, recursively, as absolute paths. */
export async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await allFiles(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

/** A fresh home for one test, closed afterwards whatever happens (its daemons stopped, its folder removed). */
export async function inHome(config: string | undefined, body: (home: TestHome) => Promise<void>): Promise<void> {
  const home = await TestHome.create(config);
  try {
    await body(home);
  } finally {
    await home.close();
  }
}

/** A daemon on `home` for the length of `body`, stopped afterwards whatever happens. */
export async function withDaemon(home: TestHome, body: (daemon: DaemonProcess) => Promise<void>, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const daemon = home.startDaemon(env);
  try {
    await body(daemon);
  } finally {
    await daemon.stop();
  }
}

/** A port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
