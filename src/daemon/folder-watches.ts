import fs from 'node:fs';
import type { Logger } from 'pino';

/**
 * One `fs.watch` per folder, keyed by name: what the daemon uses for the
 * folders where chokidar would list the folder again and stat every entry on
 * each change in it (README.md, Benchmark: P3 and P7). Each event names the
 * entry that changed, and nothing is read. What a watch can miss (a filesystem
 * that sends no events, a full inotify queue) the daemon's periodic sweep
 * finds.
 */
export class FolderWatches {
  private readonly watches = new Map<string, fs.FSWatcher>();
  private closed = false;

  constructor(
    /** The folder a name stands for; may throw for a name that is no agent name (then it is not watched). */
    private readonly folderOf: (name: string) => string,
    /** What the folders are, and what finds their changes when a watch cannot be made, for the log. */
    private readonly what: { folder: string; fallback: string },
    private readonly log: Logger,
    /** An entry of `dir` came, changed or went: fs.watch's event and the entry's name. */
    private readonly onChange: (dir: string, event: string, name: string) => void,
  ) {}

  /**
   * Watch the folder from now on, replacing an earlier watch (the folder may
   * have been removed and made again). Synchronous, so that a caller that
   * lists the folder afterwards misses nothing between the two. A folder that
   * is not there is not watched: whoever watches its parent says when it comes.
   */
  watch(name: string): void {
    if (this.closed) return;
    this.unwatch(name);
    let dir: string;
    try {
      dir = this.folderOf(name);
    } catch {
      return; // a folder name that is no agent name: the registry reports it, and nothing of it is read
    }
    let watcher: fs.FSWatcher;
    try {
      watcher = fs.watch(dir, { persistent: false });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') this.log.warn({ err, dir }, `could not watch the ${this.what.folder}; ${this.what.fallback}`);
      return;
    }
    watcher.on('change', (event, entry) => {
      if (typeof entry !== 'string' || entry === '' || entry.includes('/')) return;
      this.onChange(dir, event, entry);
    });
    watcher.on('error', (err) => {
      // The folder went (or the watch broke): forget it; its parent's event or the sweep comes next.
      if (this.watches.get(name) === watcher) this.watches.delete(name);
      watcher.close();
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err, dir }, `${this.what.folder} watch failed; ${this.what.fallback}`);
    });
    this.watches.set(name, watcher);
  }

  unwatch(name: string): void {
    this.watches.get(name)?.close();
    this.watches.delete(name);
  }

  close(): void {
    this.closed = true;
    for (const watcher of this.watches.values()) watcher.close();
    this.watches.clear();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  watching(name: string): boolean {
    return this.watches.has(name);
  }

  /** How many folders are watched: for status and tests. */
  get size(): number {
    return this.watches.size;
  }
}
