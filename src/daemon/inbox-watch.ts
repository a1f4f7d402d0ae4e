import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

/**
 * One `fs.watch` per inbox folder, which names each entry that changed, in
 * place of chokidar inside inboxes (README.md, Benchmark: P7). On any change
 * in a folder it watches, chokidar lists the folder again and lstats every
 * entry in it (at most once a second, and once more after), so with 10,000
 * tasks queued each change cost 10,000 lstats: most of the daemon's time,
 * and a third of the throughput. Here a change costs one lstat of the entry
 * it names. What an event can miss (a filesystem that sends none, a full
 * inotify queue) the daemon's periodic sweep lists and reconciles.
 */

/** `present`: the entry is there after the event (it came, or changed); `removed`: it is not. */
export type InboxEntryChange = 'present' | 'removed';

export class InboxWatches {
  private readonly watches = new Map<string, fs.FSWatcher>();
  private closed = false;

  constructor(
    private readonly inboxDir: (agent: string) => string,
    private readonly log: Logger,
    /** A file in the agent's inbox came, changed or went. */
    private readonly onEntry: (file: string, change: InboxEntryChange) => void,
  ) {}

  /**
   * Watch the agent's inbox from now on, replacing an earlier watch (the
   * folder may have been removed and made again). Synchronous, so that a
   * caller that lists the inbox afterwards misses nothing between the two.
   * An agent without an inbox folder yet is not watched: its folder's own
   * watch says when one appears, and the caller calls this again.
   */
  watch(agent: string): void {
    if (this.closed) return;
    this.unwatch(agent);
    let dir: string;
    try {
      dir = this.inboxDir(agent);
    } catch {
      return; // a folder name that is no agent name: the registry reports it, and nothing of it is read
    }
    let watcher: fs.FSWatcher;
    try {
      watcher = fs.watch(dir, { persistent: false });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') this.log.warn({ err, dir }, 'could not watch the inbox; its tasks are found by the periodic sweep');
      return;
    }
    const pending = new Set<string>();
    watcher.on('change', (_event, name) => {
      if (typeof name !== 'string' || name === '' || name.includes('/')) return;
      // One lstat per name per turn, however many events (create, modify, rename) one write raised.
      if (pending.size === 0) setImmediate(() => this.settle(dir, pending));
      pending.add(name);
    });
    watcher.on('error', (err) => {
      // The folder went (or the watch broke): forget it; the agent folder's event or the sweep comes next.
      if (this.watches.get(agent) === watcher) this.watches.delete(agent);
      watcher.close();
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err, dir }, 'inbox watch failed; its tasks are found by the periodic sweep');
    });
    this.watches.set(agent, watcher);
  }

  unwatch(agent: string): void {
    this.watches.get(agent)?.close();
    this.watches.delete(agent);
  }

  close(): void {
    this.closed = true;
    for (const watcher of this.watches.values()) watcher.close();
    this.watches.clear();
  }

  watching(agent: string): boolean {
    return this.watches.has(agent);
  }

  /** How many inboxes are watched: for status and tests. */
  get size(): number {
    return this.watches.size;
  }

  private settle(dir: string, pending: Set<string>): void {
    const names = [...pending];
    pending.clear();
    for (const name of names) {
      const file = path.join(dir, name);
      fs.lstat(file, (err, stats) => {
        if (this.closed) return;
        if (err) return this.onEntry(file, 'removed');
        if (!stats.isDirectory()) this.onEntry(file, 'present');
      });
    }
  }
}
