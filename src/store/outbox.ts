import { randomBytes } from 'node:crypto';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { AlreadyResolvedError, ConfigError, NotFoundError } from '../errors.js';
import { compile } from '../schema/validate.js';
import { outboxFileSchema, outboxItemSchema } from '../schema/schemas.js';
import type { HomePaths } from './paths.js';
import { dirModeFor, ensureDir, listDir, peopleFileMode, readIfExists } from './durable.js';
import { jsonTextTooDeep, tooDeepProblem } from '../security/json-depth.js';
import { escapesHome } from './home-file.js';
import { replaceGuarded } from './guarded-replace.js';
import { quietPeriodMs } from './quiet-period.js';
import { inTurn } from './process-turns.js';

/** README "The outbox". */
export type OutboxKind =
  | 'uncertain'
  | 'stale_task'
  | 'stale_context'
  | 'limit'
  | 'approval'
  | 'unsure_side_effect'
  | 'provider_unavailable'
  | 'config_error'
  | 'budget_alert'
  | 'suspected_injection'
  | 'journal_lost';

export type Decision = 'continue' | 'approve' | 'deny' | 'cancel' | 'retry' | 'answer';

export interface Resolution {
  decision: Decision;
  answer?: string;
  /** Budget increases, keyed like the protocol's budget (steps, tool_calls, tokens, cost_usd, runtime_ms). */
  extend?: Record<string, number>;
  by?: string;
  at?: string;
}

export interface OutboxItem {
  id: string;
  kind: OutboxKind;
  agent: string;
  task_id: string | null;
  run_id: string | null;
  created_at: string;
  reason: string;
  question?: string;
  blockers?: unknown[];
  details?: unknown;
  status: 'open' | 'resolved';
  resolution?: Resolution;
  /** When the resolution was handed to the agent in a start message. */
  delivered_at?: string;
}

export interface OutboxFile {
  v?: number;
  items: OutboxItem[];
}

const validateOutboxFile = compile<OutboxFile>(outboxFileSchema);
const validateItem = compile<OutboxItem>(outboxItemSchema);

export { blocksTask } from '../core/outbox-rules.js';

export function newItemId(agent: string): string {
  return `${agent}:${randomBytes(4).toString('hex')}`;
}

/** The agent an item id belongs to (`<agent>:<hex>`), or null for a foreign id. */
export function agentOfItemId(itemId: string): string | null {
  const at = itemId.lastIndexOf(':');
  return at > 0 ? itemId.slice(0, at) : null;
}

/**
 * Read outbox.json. A file a person broke is reported (file and field) and
 * never overwritten; its items are treated as still open.
 */
export async function readOutbox(paths: HomePaths, agent: string): Promise<OutboxFile> {
  return parseOutbox(paths, agent, await readIfExists(paths.outboxFile(agent)));
}

/** outbox.json's bytes (null: no file) as an outbox, or a ConfigError naming the file and field. */
function parseOutbox(paths: HomePaths, agent: string, bytes: Buffer | null): OutboxFile {
  const file = paths.outboxFile(agent);
  if (bytes === null) return { v: 1, items: [] };
  let value: unknown;
  const text = bytes.toString('utf8');
  if (jsonTextTooDeep(text)) throw new ConfigError(paths.relative(file), [tooDeepProblem()]);
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(paths.relative(file), [`is not valid JSON: ${(err as Error).message}`]);
  }
  if (!validateOutboxFile(value)) throw new ConfigError(paths.relative(file), validateOutboxFile.problems(value));
  return value;
}

async function withOutboxLock<T>(paths: HomePaths, agent: string, fn: () => Promise<T>): Promise<T> {
  return inTurn(paths.outboxDir(agent), () => holdingOutboxLock(paths, agent, fn)); // one waiter per process (store/process-turns.ts)
}

async function holdingOutboxLock<T>(paths: HomePaths, agent: string, fn: () => Promise<T>): Promise<T> {
  const dir = paths.outboxDir(agent);
  const escape = await escapesHome(paths, dir);
  if (escape) throw new ConfigError(paths.relative(dir), [escape]); // never write through a link out of the home
  await ensureDir(dir, dirModeFor(peopleFileMode())); // people in the group edit files here
  const release = await lockfile.lock(dir, {
    lockfilePath: path.join(dir, '.outbox.lock'),
    stale: 10_000,
    retries: { retries: 100, minTimeout: 10, maxTimeout: 100 },
    realpath: false,
    onCompromised: () => undefined, // a slow write; the guarded rename below still keeps a concurrent save
  });
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

type OutboxListener = (agent: string) => void;
const listeners = new Set<OutboxListener>();

/**
 * Be told (synchronously, after the write is durable) whenever this process
 * writes an agent's outbox.json; the notifier uses it to deliver at once
 * instead of at its next scan. A listener must not throw or block. Returns
 * the unsubscribe function.
 */
export function onOutboxWritten(listener: OutboxListener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Read, change and write outbox.json under the outbox lock. A person's save
 * that lands while we write (store/guarded-replace.ts) is caught, and the
 * change is applied again on top of it, so neither is lost. A save caught
 * half-written is waited for (the quiet period); one that stays broken is
 * put back, and the broken file is reported as on a read.
 */
export async function updateOutbox<T>(paths: HomePaths, agent: string, change: (outbox: OutboxFile) => T): Promise<T> {
  const file = paths.outboxFile(agent);
  return withOutboxLock(paths, agent, async () => {
    let base = await readIfExists(file);
    let onDisk = base; // what the file holds, as far as we know
    for (;;) {
      const outbox = parseOutbox(paths, agent, base);
      const result = change(outbox);
      const text = JSON.stringify({ v: 1, items: outbox.items }, null, 2) + '\n';
      const replaced = await replaceGuarded(file, onDisk, text, peopleFileMode(), (theirs) => parsesAsOutbox(paths, agent, theirs), quietPeriodMs());
      if (replaced.kind === 'restored') {
        parseOutbox(paths, agent, replaced.theirs); // throws the ConfigError that names the fault
        throw new ConfigError(paths.relative(file), ['changed while it was being written; try again']);
      }
      if (replaced.kind === 'replaced') {
        for (const listener of listeners) listener(agent);
        return result;
      }
      base = replaced.theirs; // every edit a person made meanwhile stays; ours goes on top
      onDisk = replaced.ours;
    }
  });
}

function parsesAsOutbox(paths: HomePaths, agent: string, bytes: Buffer): boolean {
  try {
    parseOutbox(paths, agent, bytes);
    return true;
  } catch {
    return false;
  }
}

export async function addOutboxItem(paths: HomePaths, item: OutboxItem): Promise<OutboxItem> {
  if (!validateItem(item)) throw new Error(`outbox item invalid: ${validateItem.problems(item).join('; ')}`);
  await updateOutbox(paths, item.agent, (outbox) => {
    outbox.items.push(item);
  });
  return item;
}

/** Resolve an open item by id. Throws NotFoundError, or AlreadyResolvedError when it is not open. */
export async function resolveOutboxItem(paths: HomePaths, itemId: string, resolution: Resolution): Promise<OutboxItem> {
  const agent = agentOfItemId(itemId) ?? (await findItemAgent(paths, itemId));
  if (!agent) throw new NotFoundError(`no outbox item ${itemId}`);
  return updateOutbox(paths, agent, (outbox) => {
    const item = outbox.items.find((i) => i.id === itemId);
    if (!item) throw new NotFoundError(`no outbox item ${itemId} in ${paths.relative(paths.outboxFile(agent))}`);
    if (item.status !== 'open') throw new AlreadyResolvedError(itemId, item.resolution?.decision);
    item.status = 'resolved';
    item.resolution = resolution;
    return item;
  });
}

async function findItemAgent(paths: HomePaths, itemId: string): Promise<string | null> {
  for (const agent of await listDir(paths.outboxRoot())) {
    try {
      const outbox = await readOutbox(paths, agent);
      if (outbox.items.some((i) => i.id === itemId)) return agent;
    } catch {
      // a broken outbox of another agent does not stop the search
    }
  }
  return null;
}

export async function markDelivered(paths: HomePaths, agent: string, itemIds: string[], at: string): Promise<void> {
  if (itemIds.length === 0) return;
  await updateOutbox(paths, agent, (outbox) => {
    for (const item of outbox.items) if (itemIds.includes(item.id)) item.delivered_at = at;
  });
}

/** Every agent's items, for `agentd outbox` and `agentd status`. Broken files are reported in `problems`. */
export async function readAllOutboxes(paths: HomePaths): Promise<{ items: OutboxItem[]; problems: string[] }> {
  const items: OutboxItem[] = [];
  const problems: string[] = [];
  for (const agent of (await listDir(paths.outboxRoot())).sort()) {
    if (agent.startsWith('.')) continue;
    try {
      items.push(...(await readOutbox(paths, agent)).items);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return { items, problems };
}
