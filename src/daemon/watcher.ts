import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import fs from 'node:fs';
import path from 'node:path';
import { InboxWatches } from './inbox-watch.js';
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
 * What chokidar itself watches: only folders (home, agents/, each agent
 * folder, outbox/ and each outbox folder). A file directly in an agent folder
 * (its definition, current-task.json) or an outbox folder (outbox.json) is
 * seen through its folder's own watch (folderFileEvent below), so it needs no
 * watch, no stat and no memory of its own: one inotify watch per agent where
 * there were two or more (README.md, Benchmark: P4). Inboxes are not
 * chokidar's: each has one fs.watch of its own (daemon/inbox-watch.ts), since
 * chokidar lstats every entry of a folder on each change in it.
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
      return isDirectory === false;
    case 'outbox_folder':
      return false;
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
  // Every inbox there is now, before chokidar starts: a task written from here on raises an event,
  // and one written before is found by the listing the daemon makes once the watch is ready.
  const inboxes = new InboxWatches((agent) => paths.inboxDir(agent), log, (file, change) =>
    change === 'present' ? handle(file, 'changed', 'either') : handle(file, 'removed', 'gone'),
  );
  for (const agent of listAgentFolders(paths, log)) inboxes.watch(agent);
  const watcher = watch([paths.root], {
    ignoreInitial: true,
    depth: 3,
    ignored: (file, stats) => ignoredPath(paths, file, stats ? stats.isDirectory() : undefined),
  });
  const folderEvent = (file: string, change: OwnChange) => {
    // A new agent folder may come with its inbox: watch it before the event makes the daemon list it.
    const place = homePlace(paths, file);
    if (place.kind === 'agent_folder' && !place.hidden) {
      if (change === 'removed') inboxes.unwatch(place.agent);
      else inboxes.watch(place.agent);
    }
    handle(file, change);
  };
  watcher
    .on('add', (f) => handle(f, 'added'))
    .on('change', (f) => handle(f, 'changed'))
    .on('unlink', (f) => handle(f, 'removed'))
    .on('addDir', (f) => folderEvent(f, 'added'))
    .on('unlinkDir', (f) => folderEvent(f, 'removed'));
  onFolderFiles(watcher, paths, tell, (agent) => inboxes.watch(agent));
  watcher.on('error', (err) => log.error({ err }, 'file watcher error'));
  const ready = new Promise<void>((resolve) =>
    watcher.once('ready', () => {
      // An inbox (or a whole agent folder) made after the listing above but before chokidar watched its agent
      // folder raised no event: chokidar's scan found it already there. Watch it now; the daemon lists every
      // inbox once this resolves, so a task written before this watch is found by that listing.
      for (const agent of listAgentFolders(paths, log)) if (!inboxes.watching(agent)) inboxes.watch(agent);
      resolve();
    }),
  );
  return {
    ready: () => ready,
    get closed() {
      return watcher.closed;
    },
    close: async () => {
      inboxes.close();
      await watcher.close();
    },
  };
}

/** The names in agents/ that may be agent folders (no hidden ones): whose inboxes the watcher watches. */
function listAgentFolders(paths: HomePaths, log: Logger): string[] {
  try {
    return fs
      .readdirSync(paths.agentsDir(), { withFileTypes: true })
      .filter((e) => !e.name.startsWith('.') && (e.isDirectory() || e.isSymbolicLink()))
      .map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err, dir: paths.agentsDir() }, 'could not list the agent folders to watch their inboxes');
    return [];
  }
}

/**
 * The files ignoredPath leaves to their folder's watch: one call per file per
 * turn of the event loop, however many raw events (create, modify, attrib) one
 * write raised, and none once the watcher is closed. The daemon's own change
 * is matched against each raw event, before they are merged: a person's write
 * in the same turn is a second event and is still told.
 */
function onFolderFiles(watcher: FSWatcher, paths: HomePaths, seen: (file: string) => void, inboxCame: (agent: string) => void): void {
  let pending: Set<string> | null = null;
  watcher.on('raw', (event, name: string | null, details) => {
    // chokidar passes { watchedPath }: the folder whose fs.watch fired (its handler.js).
    const folder = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
    const inbox = event === 'rename' && typeof folder === 'string' ? inboxFolderEvent(paths, folder, name) : null;
    if (inbox) {
      // The inbox folder came, went or was replaced: watch what is there now; the claim lists it.
      inboxCame(inbox.agent);
      seen(inbox.file);
      return;
    }
    const file = typeof folder === 'string' ? folderFileEvent(paths, folder, name) : null;
    if (!file || takeOwnChange(file, 'either')) return;
    if (!pending) {
      pending = new Set();
      setImmediate(() => {
        const files = pending!;
        pending = null;
        if (!watcher.closed) for (const f of files) seen(f);
      });
    }
    pending.add(file);
  });
}
