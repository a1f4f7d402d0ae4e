/**
 * Names this daemon process itself just created or removed: a promotion's
 * link to current-task.json and unlink of the inbox file, a finished task's
 * current-task.json, a cron task written to an inbox. The watcher drops the
 * first event it sees for each (daemon/watcher.ts): the scheduler already
 * looks at an agent again after each of its runs (daemon/scheduler.ts), and
 * each such event cost one more claim that found nothing, after chokidar had
 * read the folder again (README.md, Benchmark: P3 and P4).
 *
 * Only the first event per change is dropped, and only within
 * OWN_CHANGE_WINDOW_MS: a person's write to the same name is a second event
 * and is still seen. An own change whose event never comes (no watcher, or
 * chokidar saw the name come and go in one listing) is forgotten after the
 * window, so at worst one person's event in that window is dropped, for an
 * agent the daemon has just worked on and looks at again by itself.
 */

/** How long a noted change waits for its event. */
export const OWN_CHANGE_WINDOW_MS = 2000;
/** Past this many notes, expired ones are dropped (a CLI process notes and never takes). */
const PRUNE_AT = 4096;

/** `changed`: the file's attributes (a hard link to it was made: its link count). */
export type OwnChange = 'added' | 'removed' | 'changed';

type Note = { change: OwnChange; until: number };
const noted = new Map<string, Note[]>();

/** Call before creating, removing or linking `file`. */
export function noteOwnChange(file: string, change: OwnChange, now = Date.now()): void {
  if (noted.size >= PRUNE_AT) for (const [f, notes] of noted) if (notes.every((n) => n.until < now)) noted.delete(f);
  const notes = noted.get(file);
  const note = { change, until: now + OWN_CHANGE_WINDOW_MS };
  if (notes) notes.push(note);
  else noted.set(file, [note]);
}

/** The change did not happen after all (the name existed, the unlink found nothing). */
export function forgetOwnChange(file: string, change: OwnChange): void {
  const notes = noted.get(file);
  const i = notes ? notes.findIndex((n) => n.change === change) : -1;
  if (i === -1) return;
  notes!.splice(i, 1);
  if (notes!.length === 0) noted.delete(file);
}

/**
 * True when this event on `file` is the daemon's own noted change, which is
 * then used up. `either`: the event does not say whether the name came or
 * went (a folder's raw event).
 */
export function takeOwnChange(file: string, change: OwnChange | 'either', now = Date.now()): boolean {
  const notes = noted.get(file);
  if (!notes) return false;
  const live = notes.filter((n) => n.until >= now);
  const i = live.findIndex((n) => change === 'either' || n.change === change);
  if (i !== -1) live.splice(i, 1);
  if (live.length > 0) noted.set(file, live);
  else noted.delete(file);
  return i !== -1;
}

/**
 * Every live note on `file`, used up at once: for an inbox entry found gone
 * (daemon/inbox-watch.ts). Its events are merged per turn and their kind
 * read from an lstat, so one event may stand for several of the daemon's
 * changes (a promotion's link and unlink); once the name is gone, none of
 * them is left to come. True when there was one.
 */
export function takeAllOwnChanges(file: string, now = Date.now()): boolean {
  const notes = noted.get(file);
  if (!notes) return false;
  noted.delete(file);
  return notes.some((n) => n.until >= now);
}
