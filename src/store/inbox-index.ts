import { listDir } from './durable.js';
import type { HomePaths } from './paths.js';

/**
 * What the daemon knows of each inbox without reading it again: the sort key
 * (priority, created_at, id) of every task file it has read once, and the
 * names it has not read yet. Promotion then picks the next task without
 * reading every file (README.md, Benchmark: P7): a file is read when it
 * appears or changes, and the chosen one is read again on claim, so the
 * index only ever decides the order, never the content.
 *
 * It is kept by the watcher's events (`added`, `removed`) and rebuilt from
 * a directory listing when it is unknown (start-up, `forget`) or says an
 * inbox is empty (a listing of an empty folder costs nothing). The daemon's
 * periodic sweep calls `reconcile` with the listing it makes anyway, so an
 * event a network filesystem never sent is caught within that sweep.
 */

export interface InboxKey {
  priority: number;
  createdMs: number;
  id: string;
}

/** Higher priority first, then older, then id: core/task-order.ts compareForPromotion on the cached keys. Pure. */
export function compareKeys(a: InboxKey, b: InboxKey): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.createdMs !== b.createdMs) return a.createdMs - b.createdMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** One inbox: file name → its key, or null until the file is read. */
export type InboxEntries = Map<string, InboxKey | null>;

export function isTaskFileName(name: string): boolean {
  return name.endsWith('.json') && !name.startsWith('.');
}

/** Inbox task files waiting, without reading them: for queue depth. */
export async function inboxSize(paths: HomePaths, agent: string): Promise<number> {
  return (await listDir(paths.inboxDir(agent))).filter(isTaskFileName).length;
}

export class InboxIndex {
  private readonly inboxes = new Map<string, InboxEntries>();

  /** The watcher saw `name` appear or change in the agent's inbox: read it again before trusting its key. */
  added(agent: string, name: string): void {
    if (isTaskFileName(name)) this.inboxes.get(agent)?.set(name, null);
  }

  removed(agent: string, name: string): void {
    this.inboxes.get(agent)?.delete(name);
  }

  /** Rebuild the agent's inbox from a listing on its next promotion. */
  forget(agent: string): void {
    this.inboxes.delete(agent);
  }

  /** How many task files the index holds for the agent, or null when it does not know the inbox. */
  size(agent: string): number | null {
    return this.inboxes.get(agent)?.size ?? null;
  }

  /** A listing made elsewhere (the sweep): rebuild when it disagrees with what the index holds. */
  reconcile(agent: string, names: string[]): void {
    const entries = this.inboxes.get(agent);
    if (!entries) return;
    const files = names.filter(isTaskFileName);
    if (files.length !== entries.size || files.some((n) => !entries.has(n))) this.inboxes.set(agent, rebuilt(entries, files));
  }

  /**
   * The agent's inbox entries, listed from `dir` when unknown or empty. The
   * caller reads the null ones and records their keys with `set`.
   */
  async entries(agent: string, dir: string): Promise<InboxEntries> {
    const known = this.inboxes.get(agent);
    if (known && known.size > 0) return known;
    const fresh = rebuilt(known ?? new Map(), (await listDir(dir)).filter(isTaskFileName));
    this.inboxes.set(agent, fresh);
    return fresh;
  }
}

/** The listed names, keeping the keys already read for names still there. */
function rebuilt(old: InboxEntries, names: string[]): InboxEntries {
  return new Map(names.map((n) => [n, old.get(n) ?? null]));
}

/** The name with the smallest key among those read, skipping `skip`; null when none. Linear: no sort per promotion. */
export function nextByKey(entries: InboxEntries, skip: Set<string>): string | null {
  let best: string | null = null;
  let bestKey: InboxKey | null = null;
  for (const [name, key] of entries) {
    if (key === null || skip.has(name)) continue;
    if (bestKey === null || compareKeys(key, bestKey) < 0) {
      best = name;
      bestKey = key;
    }
  }
  return best;
}
