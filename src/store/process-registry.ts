import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { HomePaths } from './paths.js';
import { listDir, readIfExists, removeDurable, writeJsonAtomic } from './durable.js';
import { hostId, pidAlive } from './host.js';
import { killGroup } from '../run/agent-process.js';

/**
 * state/<agent>/pids/<pgid>.json: every process group a run starts (the
 * agent's, each tool's) is recorded before it is handed any work and removed
 * once it is dead. A daemon killed with -9 cannot kill them; the next claim of
 * the agent on this host does, before it settles anything (README.md, "The
 * guarantee"), so a tool cannot finish a write after a person answered its
 * `unsure_side_effect` item.
 */

export interface GroupRecord {
  v: 1;
  pgid: number;
  kind: 'agent' | 'tool';
  run_id: string;
  host: string;
  daemon_pid: number;
  /** The process's start time in clock ticks (/proc/<pid>/stat), so a reused pid is never killed; null off Linux. */
  start_ticks: string | null;
}

export interface GroupFacts {
  host: string;
  myPid: number;
  /** Is this daemon pid alive on this host? */
  daemonAlive(pid: number): boolean;
  /** The start ticks of the live process `pid`, or undefined when there is none. */
  startTicks(pid: number): string | null | undefined;
}

export type GroupAction = 'kill' | 'forget' | 'keep';

/** Pure: what the claim does with one record. */
export function orphanAction(record: GroupRecord, facts: GroupFacts): GroupAction {
  if (record.host !== facts.host) return 'keep'; // another host's: only it can kill there
  if (record.daemon_pid !== facts.myPid && facts.daemonAlive(record.daemon_pid)) return 'keep'; // a live daemon's, which will end it
  const ticks = facts.startTicks(record.pgid);
  if (ticks === undefined) return 'forget';
  return record.start_ticks === null || ticks === null || ticks === record.start_ticks ? 'kill' : 'forget';
}

export async function registerGroup(paths: HomePaths, agent: string, pgid: number, kind: GroupRecord['kind'], runId: string): Promise<void> {
  const record: GroupRecord = { v: 1, pgid, kind, run_id: runId, host: hostId(), daemon_pid: process.pid, start_ticks: await readStartTicks(pgid) ?? null };
  await writeJsonAtomic(path.join(paths.pidsDir(agent), `${pgid}.json`), record);
}

export async function unregisterGroup(paths: HomePaths, agent: string, pgid: number): Promise<void> {
  await removeDurable(path.join(paths.pidsDir(agent), `${pgid}.json`));
}

/** Kill the groups a dead daemon on this host left behind for `agent`, and forget the dead ones. The caller holds the agent lock. */
export async function killOrphanGroups(paths: HomePaths, agent: string, log: Logger): Promise<void> {
  const dir = paths.pidsDir(agent);
  for (const name of await listDir(dir)) {
    if (!/^\d+\.json$/.test(name)) continue;
    const record = parseRecord(await readIfExists(path.join(dir, name)));
    if (!record) {
      await removeDurable(path.join(dir, name));
      continue;
    }
    const ticks = await readStartTicks(record.pgid);
    const action = orphanAction(record, { host: hostId(), myPid: process.pid, daemonAlive: pidAlive, startTicks: () => ticks });
    if (action === 'keep') continue;
    if (action === 'kill') {
      killGroup(record.pgid, 'SIGKILL');
      log.warn({ pgid: record.pgid, kind: record.kind, run_id: record.run_id }, 'killed a process group a stopped daemon left behind');
    }
    await removeDurable(path.join(dir, name));
  }
}

function parseRecord(bytes: Buffer | null): GroupRecord | null {
  if (!bytes) return null;
  try {
    const r = JSON.parse(bytes.toString('utf8')) as GroupRecord;
    return Number.isInteger(r.pgid) && r.pgid > 1 && typeof r.host === 'string' && Number.isInteger(r.daemon_pid) ? r : null;
  } catch {
    return null;
  }
}


/** Field 22 of /proc/<pid>/stat; undefined when the process is gone (or a zombie), null without /proc. */
async function readStartTicks(pid: number): Promise<string | null | undefined> {
  let stat: string;
  try {
    stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (await fs.access('/proc/self').then(() => true, () => false))) return undefined;
    return pidAlive(pid) ? null : undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z') return undefined;
  return fields[19] ?? null; // field 22 overall: the third field is fields[0]
}
