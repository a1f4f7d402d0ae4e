import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { homePlace, type HomePaths } from '../store/paths.js';

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

/** Which folders are worth descending into: keeps the number of watched folders small. */
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
    case 'inbox_folder':
      return false;
    case 'definition':
    case 'current_task':
    case 'context_snapshot':
    case 'agent_entry':
      return isDirectory === true;
    case 'inbox_entry':
      return isDirectory === true;
    case 'outbox_folder':
    case 'outbox_file':
      return false;
    default:
      return true;
  }
}

/** An inbox task file appeared, changed or went: what store/inbox-index.ts keeps. */
export type InboxFileEvent = { agent: string; name: string; kind: 'added' | 'removed' };

/** agents/<a>/inbox/<name>.json, as an index event; null for any other path. Pure. */
export function inboxFileEvent(paths: HomePaths, file: string, removed: boolean): InboxFileEvent | null {
  const place = homePlace(paths, file);
  if (place.kind !== 'inbox_entry' || !place.task) return null;
  return { agent: place.agent, name: place.name, kind: removed ? 'removed' : 'added' };
}

export function watchHome(paths: HomePaths, log: Logger, onEvent: (event: HomeEvent) => void, onInboxFile?: (event: InboxFileEvent) => void): FSWatcher {
  const watcher = watch([paths.root], {
    ignoreInitial: true,
    depth: 3,
    ignored: (file, stats) => ignoredPath(paths, file, stats ? stats.isDirectory() : undefined),
  });
  const handle = (file: string, removed = false) => {
    try {
      // The index first: the poke below may promote at once.
      const inbox = onInboxFile ? inboxFileEvent(paths, file, removed) : null;
      if (inbox) onInboxFile!(inbox);
      const event = classifyPath(paths, file);
      if (event) onEvent(event);
    } catch (err) {
      log.error({ err, file }, 'file event handler failed');
    }
  };
  const gone = (file: string) => handle(file, true);
  watcher.on('add', (f) => handle(f)).on('change', (f) => handle(f)).on('unlink', gone).on('addDir', (f) => handle(f)).on('unlinkDir', gone);
  watcher.on('error', (err) => log.error({ err }, 'file watcher error'));
  return watcher;
}
