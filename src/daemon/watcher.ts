import { watch } from 'chokidar';
import type { Logger } from 'pino';
import fs from 'node:fs';
import path from 'node:path';
import { FolderWatches } from './folder-watches.js';
import { InboxWatches, type InboxEntryChange } from './inbox-watch.js';
import { homePlace, type HomePaths } from '../store/paths.js';
import { takeAllOwnChanges, takeOwnChange, type OwnChange } from '../store/own-changes.js';

/** What a file event means to the daemon. */
export type HomeEvent =
  | { kind: 'definition'; agent: string }
  | { kind: 'task'; agent: string }
  | { kind: 'agent_folder'; agent: string }
  | { kind: 'outbox'; agent: string }
  | { kind: 'daemon_config' };

/**
 * Map a path under the home to an event, or null for anything the daemon
 * does not care about. Pure; the store says what the path is. Only
 * agents/<a>/{definition, current-task, context}, agents/<a>/inbox/*.json
 * and outbox/<a>/outbox.json matter; state/ is never watched (it only grows).
 */
export function classifyPath(paths: HomePaths, file: string): HomeEvent | null {
  const place = homePlace(paths, file);
  switch (place.kind) {
    case 'daemon_config':
      return { kind: 'daemon_config' };
    case 'agent_folder':
      return { kind: 'agent_folder', agent: place.agent };
    case 'definition':
      return { kind: 'definition', agent: place.agent };
    case 'current_task':
    case 'context_snapshot':
    // A new inbox folder may already hold files whose own events never come: the claim lists it.
    case 'inbox_folder':
      return { kind: 'task', agent: place.agent };
    case 'inbox_entry':
      return place.task ? { kind: 'task', agent: place.agent } : null;
    case 'outbox_file':
      return { kind: 'outbox', agent: place.agent };
    default:
      return null;
  }
}

/**
 * What chokidar itself watches: only the home, agents/ and outbox/ (depth 1),
 * which is how the daemon learns that an agent folder or an outbox folder
 * came or went. It does not watch inside those folders: on every change in a
 * folder it watches, chokidar lists the folder again and stats each entry,
 * and the daemon changes each agent folder twice per task (current-task.json
 * made and removed; README.md, Benchmark: P3). Each agent folder, outbox
 * folder and inbox has one fs.watch of its own (daemon/folder-watches.ts),
 * whose events name the file that changed (folderFileEvent below). Deeper
 * paths are ignored here whatever the depth, so this table still says what
 * the daemon watches at all.
 */
export function ignoredPath(paths: HomePaths, file: string, isDirectory: boolean | undefined): boolean {
  const place = homePlace(paths, file);
  switch (place.kind) {
    case 'home':
    case 'agents_root':
    case 'outbox_root':
    case 'daemon_config':
      return false;
    case 'other':
      return true;
  }
  if (place.hidden) return true;
  switch (place.kind) {
    case 'agent_folder':
    case 'outbox_folder':
      return isDirectory === false; // a file put directly in agents/ or outbox/ is nothing to the daemon
    default:
      return true;
  }
}

/**
 * A file directly in a folder chokidar watches, named by that folder's raw
 * event (`fs.watch` names the entry that changed): the path, when it is one
 * the daemon reads (a definition, current-task.json, context-snapshot.json,
 * outbox.json); null for anything else. Pure.
 */
export function folderFileEvent(paths: HomePaths, watchedFolder: string, name: string | null | undefined): string | null {
  if (!name || name.includes('/') || name.includes(path.sep)) return null;
  const folder = homePlace(paths, watchedFolder).kind;
  if (folder !== 'agent_folder' && folder !== 'outbox_folder') return null;
  const file = path.join(watchedFolder, name);
  const place = homePlace(paths, file);
  if (place.hidden) return null;
  switch (place.kind) {
    case 'definition':
    case 'current_task':
    case 'context_snapshot':
    case 'outbox_file':
      return file;
    default:
      return null;
  }
}

/** agents/<a>/inbox named by its agent folder's raw event; null for anything else. Pure. */
export function inboxFolderEvent(paths: HomePaths, watchedFolder: string, name: string | null | undefined): { agent: string; file: string } | null {
  if (name !== 'inbox') return null;
  const folder = homePlace(paths, watchedFolder);
  if (folder.kind !== 'agent_folder' || folder.hidden) return null;
  return { agent: folder.agent, file: path.join(watchedFolder, name) };
}

/** An inbox task file appeared, changed or went: what store/inbox-index.ts keeps. */
export type InboxFileEvent = { agent: string; name: string; kind: 'added' | 'removed' };

/** agents/<a>/inbox/<name>.json, as an index event; null for any other path. Pure. */
export function inboxFileEvent(paths: HomePaths, file: string, removed: boolean): InboxFileEvent | null {
  const place = homePlace(paths, file);
  if (place.kind !== 'inbox_entry' || !place.task) return null;
  return { agent: place.agent, name: place.name, kind: removed ? 'removed' : 'added' };
}

/** The home's watch: chokidar for the folders, one fs.watch per inbox. */
export interface HomeWatcher {
  /** Resolves once chokidar's first scan is done; from then on every change raises an event. */
  ready(): Promise<void>;
  readonly closed: boolean;
  close(): Promise<void>;
}

/**
 * Watch the home. `onEvent` is not told of a change the daemon made itself
 * (store/own-changes.ts: a promotion's link and unlink, a finished task's
 * current-task.json): the scheduler already looks again after each run, and
 * each such poke cost a claim that found nothing. The inbox index is told of
 * every file, the daemon's own included.
 */
export function watchHome(paths: HomePaths, log: Logger, onEvent: (event: HomeEvent) => void, onInboxFile?: (event: InboxFileEvent) => void): HomeWatcher {
  // `own`: which of the daemon's own changes this event may be. An inbox event's kind comes from an
  // lstat made after it, which may already see the next change: any own change of that name matches.
  // `gone`: an inbox task file found gone brings no work: nothing is poked, and every own change still noted
  // on the name is used up (store/own-changes.ts takeAllOwnChanges).
  const handle = (file: string, change: OwnChange, own: OwnChange | 'either' | 'gone' = change) => {
    try {
      // The index first: the poke below may promote at once.
      const inbox = onInboxFile ? inboxFileEvent(paths, file, change === 'removed') : null; // added or changed: read again
      if (inbox) onInboxFile!(inbox);
      if (own === 'gone') return void takeAllOwnChanges(file);
      if (takeOwnChange(file, own)) return;
      tell(file);
    } catch (err) {
      log.error({ err, file }, 'file event handler failed');
    }
  };
  const tell = (file: string) => {
    try {
      const event = classifyPath(paths, file);
      if (event) onEvent(event);
    } catch (err) {
      log.error({ err, file }, 'file event handler failed');
    }
  };
  // Every agent folder, outbox folder and inbox there is now, before chokidar starts: a file written from
  // here on raises an event, and one written before is found by the listing the daemon makes once the
  // watch is ready.
  const folders = folderWatches(paths, log, tell, (file, change) =>
    change === 'present' ? handle(file, 'changed', 'either') : handle(file, 'removed', 'gone'),
  );
  folders.watchAll(false);
  const watcher = watch([paths.root], {
    ignoreInitial: true,
    depth: 1,
    ignored: (file, stats) => ignoredPath(paths, file, stats ? stats.isDirectory() : undefined),
  });
  const folderEvent = (file: string, change: OwnChange) => {
    folders.folderCameOrWent(file, change === 'removed'); // before the event makes the daemon list it
    handle(file, change);
  };
  watcher
    .on('add', (f) => handle(f, 'added'))
    .on('change', (f) => handle(f, 'changed'))
    .on('unlink', (f) => handle(f, 'removed'))
    .on('addDir', (f) => folderEvent(f, 'added'))
    .on('unlinkDir', (f) => folderEvent(f, 'removed'));
  // A folder replaced under the same name in one step (rm -rf then mkdir, a rename over it, a symlink
  // swapped) changes no listing, so chokidar says nothing of it; the raw event of agents/ or outbox/
  // still names it. Its fs.watch is made again on what is there now, and the daemon reads it again.
  watcher.on('raw', (event, name, details) => {
    const parent = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
    if (event !== 'rename' || typeof name !== 'string' || typeof parent !== 'string') return;
    const file = path.join(parent, name);
    if (folders.entryRenamed(file)) tell(file);
  });
  watcher.on('error', (err) => log.error({ err }, 'file watcher error'));
  const ready = new Promise<void>((resolve) =>
    watcher.once('ready', () => {
      // A folder made after the listing above but before chokidar watched its parent raised no event:
      // chokidar's scan found it already there. Watch it now; the daemon lists every inbox once this
      // resolves, so a task written before this watch is found by that listing.
      folders.watchAll(true);
      resolve();
    }),
  );
  return {
    ready: () => ready,
    get closed() {
      return watcher.closed;
    },
    close: async () => {
      folders.close();
      await watcher.close();
    },
  };
}

/** The fs.watch of each agent folder, outbox folder and inbox (daemon/folder-watches.ts). */
function folderWatches(paths: HomePaths, log: Logger, tell: (file: string) => void, onInboxEntry: (file: string, change: InboxEntryChange) => void) {
  const inboxes = new InboxWatches((agent) => paths.inboxDir(agent), log, onInboxEntry);
  let closed = false;
  const folderFiles = folderFileEvents(paths, tell, (agent) => inboxes.watch(agent), () => closed);
  const agentFolders = new FolderWatches((name) => path.join(paths.agentsDir(), name), { folder: 'agent folder', fallback: 'its tasks are found by the periodic sweep, an edited definition at the next SIGHUP' }, log, folderFiles);
  const outboxFolders = new FolderWatches((name) => path.join(paths.outboxRoot(), name), { folder: 'outbox folder', fallback: 'an answer written there is found by the periodic sweep' }, log, folderFiles);
  return {
    /** Watch every folder there is now; `onlyNew`: only those not watched yet. */
    watchAll(onlyNew: boolean): void {
      for (const agent of listFolders(paths.agentsDir(), log)) {
        if (!onlyNew || !agentFolders.watching(agent)) agentFolders.watch(agent);
        if (!onlyNew || !inboxes.watching(agent)) inboxes.watch(agent);
      }
      for (const agent of listFolders(paths.outboxRoot(), log)) if (!onlyNew || !outboxFolders.watching(agent)) outboxFolders.watch(agent);
    },
    /** chokidar saw a path in the home come or go: an agent folder is watched with its inbox, an outbox folder alone. */
    folderCameOrWent(file: string, removed: boolean): void {
      const place = homePlace(paths, file);
      if (place.hidden || (place.kind !== 'agent_folder' && place.kind !== 'outbox_folder')) return;
      const name = path.basename(file);
      for (const folder of place.kind === 'agent_folder' ? [agentFolders, inboxes] : [outboxFolders]) removed ? folder.unwatch(name) : folder.watch(name);
    },
    /**
     * A raw event named an entry of agents/ or outbox/: an agent or outbox folder there now is watched
     * afresh, one gone is not watched. True when it is a folder now, which the daemon then reads again.
     */
    entryRenamed(file: string): boolean {
      const place = homePlace(paths, file);
      if (place.hidden || (place.kind !== 'agent_folder' && place.kind !== 'outbox_folder')) return false;
      const isFolder = statOrNull(file)?.isDirectory() === true;
      this.folderCameOrWent(file, !isFolder);
      return isFolder;
    },
    close(): void {
      closed = true;
      agentFolders.close();
      outboxFolders.close();
      inboxes.close();
    },
  };
}

/** The path's stat, following a symlink; null when nothing (or a dangling link) is there. */
function statOrNull(file: string): fs.Stats | null {
  try {
    return fs.statSync(file, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null; // ENOTDIR, ELOOP, EACCES: no folder to watch
  }
}

/** The names in `dir` (agents/ or outbox/) that may be agent or outbox folders (no hidden ones). */
function listFolders(dir: string, log: Logger): string[] {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || e.isSymbolicLink()))
      .map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err, dir }, 'could not list the folders to watch');
    return [];
  }
}

/**
 * The raw events of the agent and outbox folders' watches: an inbox that
 * came, went or was replaced is watched again; a file the daemon reads
 * (folderFileEvent) is told once per turn of the event loop, however many
 * events (create, modify, attrib) one write raised, and none once the watch
 * is closed. The daemon's own change is matched against each event, before
 * they are merged: a person's write in the same turn is a second event and is
 * still told.
 */
function folderFileEvents(paths: HomePaths, seen: (file: string) => void, inboxCame: (agent: string) => void, closed: () => boolean): (folder: string, event: string, name: string) => void {
  let pending: Set<string> | null = null;
  return (folder, event, name) => {
    const inbox = event === 'rename' ? inboxFolderEvent(paths, folder, name) : null;
    if (inbox) {
      // The inbox folder came, went or was replaced: watch what is there now; the claim lists it.
      inboxCame(inbox.agent);
      seen(inbox.file);
      return;
    }
    const file = folderFileEvent(paths, folder, name);
    if (!file || takeOwnChange(file, 'either')) return;
    if (!pending) {
      pending = new Set();
      setImmediate(() => {
        const files = pending!;
        pending = null;
        if (!closed()) for (const f of files) seen(f);
      });
    }
    pending.add(file);
  };
}
