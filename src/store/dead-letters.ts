import { ConfigError } from '../errors.js';
import { isReservedAgentName, isValidName, type HomePaths } from './paths.js';
import { listDir, readJsonIfExists, removeDurable } from './durable.js';
import { replaceStateJson } from './state-file.js';
import { writeInboxTask } from './inbox-writer.js';
import { escapesHome } from './home-file.js';
import { keepRawFile, readRawFile, removeRawFile } from './dead-letter-raw.js';
import type { Task } from './tasks.js';

/**
 * Dead letters (README "Tasks", "agentd dlq"): state/dead-letter/<agent>/<id>.json,
 * for a task file that is not a valid task and for a task whose last attempt
 * failed (store/current-task.ts deadLetterTask); read, listed, counted and
 * retried from here.
 */

/** state/dead-letter/<agent>/<id>.json */
export interface DeadLetterRecord {
  v: 1;
  agent: string;
  task: Task | null;
  /** The original bytes of a file that was not a valid task. */
  raw?: string;
  /** `stderr_tail`: the agent's last stderr lines when it exited non-zero on its own (why it failed). */
  error: { category: string; message: string; stderr_tail?: string[] };
  attempts: number;
  runs: string[];
  source: 'inbox' | 'current';
  dead_lettered_at: string;
}

/** Dead-letter a file that is not a valid task (category bad_input). The caller removes the file. */
export async function deadLetterMalformed(
  paths: HomePaths,
  agent: string,
  id: string,
  /** The file's bytes (or the head of an oversized file); null when it was not read. */
  bytes: Buffer | null,
  message: string,
  source: 'inbox' | 'current',
  now: Date,
  /** The malformed file, kept whole by a hard link (store/dead-letter-raw.ts). */
  file?: string,
): Promise<void> {
  if (file !== undefined) await keepRawFile(paths, agent, id, file);
  const record: DeadLetterRecord = {
    v: 1,
    agent,
    task: null,
    ...(bytes !== null ? { raw: bytes.toString('utf8') } : {}),
    error: { category: 'bad_input', message },
    attempts: 0,
    runs: [],
    source,
    dead_lettered_at: now.toISOString(),
  };
  await replaceStateJson(paths.deadLetter(agent, id), record);
}

/** The record as its file holds it, or null: for the moves that only ask whether the id is taken. */
export async function readDeadLetterRecord(paths: HomePaths, agent: string, id: string): Promise<DeadLetterRecord | null> {
  return (await readJsonIfExists(paths.deadLetter(agent, id))) as DeadLetterRecord | null;
}

/** A dead letter; a malformed file's `raw` is the kept file as it is now, with what its writer added later. */
export async function readDeadLetter(paths: HomePaths, agent: string, id: string): Promise<DeadLetterRecord | null> {
  const record = await readDeadLetterRecord(paths, agent, id);
  if (!record || record.task) return record;
  const raw = await readRawFile(paths, agent, id).catch(() => null); // too big or gone: the snapshot stands
  return raw === null ? record : { ...record, raw: raw.toString('utf8') };
}

/** `agentd dlq retry`: the task goes back to the inbox first, then its record is removed. */
export async function retryDeadLetter(paths: HomePaths, agent: string, id: string): Promise<Task | null> {
  const record = await readDeadLetter(paths, agent, id);
  if (!record) return null;
  const escape = await escapesHome(paths, paths.inboxDir(agent));
  if (escape) throw new ConfigError(paths.relative(paths.inboxDir(agent)), [escape]);
  await writeInboxTask(paths, agent, id, record.task ?? record.raw ?? '');
  await removeDurable(paths.deadLetter(agent, id));
  await removeRawFile(paths, agent, id);
  return record.task;
}

export interface DeadLetterEntry {
  agent: string;
  id: string;
  /** Null when the record is not readable JSON. */
  record: DeadLetterRecord | null;
}

/** The agents with a dead-letter folder, sorted. */
async function deadLetterAgents(paths: HomePaths): Promise<string[]> {
  return (await listDir(paths.deadLetterRoot())).filter((n) => isValidName(n) && !isReservedAgentName(n)).sort();
}

/** The ids of one agent's dead letters, sorted, without reading them. */
async function deadLetterIds(paths: HomePaths, agent: string): Promise<string[]> {
  return (await listDir(paths.deadLetterDir(agent)))
    .map((file) => (file.endsWith('.json') ? file.slice(0, -'.json'.length) : ''))
    .filter(isValidName) // not write-file-atomic temp files and strays
    .sort();
}

/** Every dead letter (or one agent's), sorted by agent then id: for `agentd dlq`. */
export async function listDeadLetters(paths: HomePaths, agent?: string): Promise<DeadLetterEntry[]> {
  const entries: DeadLetterEntry[] = [];
  for (const name of agent !== undefined ? [agent] : await deadLetterAgents(paths)) {
    for (const id of await deadLetterIds(paths, name)) entries.push({ agent: name, id, record: await readDeadLetter(paths, name, id) });
  }
  return entries;
}

/** How many dead letters each agent has (agents with none are left out), without reading them: for `agentd status`. */
export async function countDeadLetters(paths: HomePaths): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const agent of await deadLetterAgents(paths)) {
    const n = (await deadLetterIds(paths, agent)).length;
    if (n > 0) counts[agent] = n;
  }
  return counts;
}
