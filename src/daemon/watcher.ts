import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import type { HomePaths } from '../store/paths.js';

/** What a file event means to the daemon. */
export type HomeEvent =
  | { kind: 'definition'; agent: string }
  | { kind: 'task'; agent: string }
  | { kind: 'agent_folder'; agent: string }
  | { kind: 'outbox'; agent: string }
  | { kind: 'daemon_config' };

/**
 * Map a path under the home to an event, or null for anything the daemon
 * does not care about. Pure. Only agents/<a>/{definition, current-task,
 * context}, agents/<a>/inbox/*.json and outbox/<a>/outbox.json matter;
 * state/ is never watched (it only grows).
 */
export function classifyPath(paths: HomePaths, file: string): HomeEvent | null {
  const rel = path.relative(paths.root, file).split(path.sep);
  if (rel.length === 1 && /^agentd\.(ya?ml|json)$/.test(rel[0]!)) return { kind: 'daemon_config' };
  if (rel[0] === 'agents' && rel.length >= 2) {
    const agent = rel[1]!;
    if (rel.length === 2) return { kind: 'agent_folder', agent };
    const name = rel[2]!;
    if (rel.length === 3) {
      if (/^agent\.(ya?ml|json)$/.test(name)) return { kind: 'definition', agent };
      if (name === 'current-task.json' || name === 'context-snapshot.json') return { kind: 'task', agent };
      // A new inbox folder may already hold files whose own events never come: the claim lists it.
      if (name === 'inbox') return { kind: 'task', agent };
      return null;
    }
    if (rel.length === 4 && name === 'inbox' && rel[3]!.endsWith('.json')) return { kind: 'task', agent };
    return null;
  }
  if (rel[0] === 'outbox' && rel.length === 3 && rel[2] === 'outbox.json') return { kind: 'outbox', agent: rel[1]! };
  return null;
}

/** Which folders are worth descending into: keeps the number of watched folders small. */
export function ignoredPath(paths: HomePaths, file: string, isDirectory: boolean | undefined): boolean {
  const rel = path.relative(paths.root, file).split(path.sep);
  if (rel[0] === '' || (rel.length === 1 && (rel[0] === 'agents' || rel[0] === 'outbox'))) return false;
  if (rel.length === 1) return !/^agentd\.(ya?ml|json)$/.test(rel[0]!);
  if (rel.some((part) => part.startsWith('.'))) return true;
  if (rel[0] === 'agents') {
    if (rel.length === 2) return isDirectory === false;
    if (rel.length === 3) return isDirectory === true ? rel[2] !== 'inbox' : false;
    return !(rel.length === 4 && rel[2] === 'inbox' && isDirectory !== true);
  }
  if (rel[0] === 'outbox') return rel.length > 3 || (rel.length === 3 && rel[2] !== 'outbox.json');
  return true;
}

/** An inbox task file appeared, changed or went: what store/inbox-index.ts keeps. */
export type InboxFileEvent = { agent: string; name: string; kind: 'added' | 'removed' };

/** agents/<a>/inbox/<name>.json, as an index event; null for any other path. Pure. */
export function inboxFileEvent(paths: HomePaths, file: string, removed: boolean): InboxFileEvent | null {
  const rel = path.relative(paths.root, file).split(path.sep);
  if (rel.length !== 4 || rel[0] !== 'agents' || rel[2] !== 'inbox' || !rel[3]!.endsWith('.json')) return null;
  return { agent: rel[1]!, name: rel[3]!, kind: removed ? 'removed' : 'added' };
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
