import path from 'node:path';
import type { Logger } from 'pino';
import { FolderWatches } from './folder-watches.js';
import { lstatOrNull } from '../store/durable.js';

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
  private readonly folders: FolderWatches;
  /** Per inbox folder, the names its events named this turn. */
  private readonly pending = new Map<string, Set<string>>();

  constructor(
    inboxDir: (agent: string) => string,
    log: Logger,
    /** A file in the agent's inbox came, changed or went. */
    private readonly onEntry: (file: string, change: InboxEntryChange) => void,
  ) {
    this.folders = new FolderWatches(inboxDir, { folder: 'inbox', fallback: 'its tasks are found by the periodic sweep' }, log, (dir, _event, name) => this.changed(dir, name));
  }

  /**
   * Watch the agent's inbox from now on (FolderWatches.watch). An agent
   * without an inbox folder yet is not watched: its folder's own watch says
   * when one appears, and the caller calls this again.
   */
  watch(agent: string): void {
    this.folders.watch(agent);
  }

  unwatch(agent: string): void {
    this.folders.unwatch(agent);
  }

  close(): void {
    this.folders.close();
  }

  watching(agent: string): boolean {
    return this.folders.watching(agent);
  }

  /** How many inboxes are watched: for status and tests. */
  get size(): number {
    return this.folders.size;
  }

  /** One lstat per name per turn, however many events (create, modify, rename) one write raised. */
  private changed(dir: string, name: string): void {
    let names = this.pending.get(dir);
    if (!names) {
      names = new Set();
      this.pending.set(dir, names);
      setImmediate(() => this.settle(dir));
    }
    names.add(name);
  }

  private settle(dir: string): void {
    const names = [...(this.pending.get(dir) ?? [])];
    this.pending.delete(dir);
    for (const name of names) {
      const file = path.join(dir, name);
      void lstatOrNull(file).then((stats) => {
        if (this.folders.isClosed) return;
        if (!stats) return this.onEntry(file, 'removed');
        if (!stats.isDirectory()) this.onEntry(file, 'present');
      });
    }
  }
}
