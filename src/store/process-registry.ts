import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { HomePaths } from './paths.js';
import { appendJsonLine, appendThrough, listDir, openForAppend, parseJsonLines, readIfExists, readJsonLines, readOpened, removeDurable, writeFileDurable } from './durable.js';
import { hostId, pidAlive } from './host.js';
import { killGroup } from '../run/agent-process.js';

/**
 * state/<agent>/pids.jsonl: every process group a run starts (the agent's,
 * each tool's) is recorded before it is handed any work, and a line says when
 * it is dead. A daemon killed with -9 cannot kill them; the next claim of the
 * agent on this host does, before it settles anything (README.md, "The
 * guarantee"), so a tool cannot finish a write after a person answered its
 * `unsure_side_effect` item.
 *
 * One append-only file per agent, not a file per group: a record costs one
 * append, not a replaced file and two folder fsyncs (README.md, Benchmark: P3).
 * The lines are not fsynced: the record only has to outlive the daemon's
 * process, which the page cache does; a crash of the machine ends the groups
 * with it. A lost `gone` line is harmless: the claim finds the group dead (or
 * its pid reused, by the start time) and forgets it. The claim, which holds
 * the agent lock, empties the file once it has dealt with every record.
 * state/<agent>/pids/<pgid>.json, the former layout, is still read at the
 * first claim of each agent.
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

/** A `gone` line: the group `gone` is dead, its record is void. */
interface GoneLine {
  v: 1;
  gone: number;
}

export async function registerGroup(paths: HomePaths, agent: string, pgid: number, kind: GroupRecord['kind'], runId: string): Promise<void> {
  const record: GroupRecord = { v: 1, pgid, kind, run_id: runId, host: hostId(), daemon_pid: process.pid, start_ticks: (await readStartTicks(pgid)) ?? null };
  await appendRecord(paths, agent, record);
}

export async function unregisterGroup(paths: HomePaths, agent: string, pgid: number): Promise<void> {
  await appendRecord(paths, agent, { v: 1, gone: pgid } satisfies GoneLine);
}

/**
 * The registry file of each claim in progress (openClaimRegistry), by file:
 * the claim's own records go through the handle its settling opened, where
 * each record opened the file by name (README.md, Benchmark: P3). A record
 * made outside a claim opens it by name, as before.
 */
const claimFiles = new Map<string, { handle: Promise<fs.FileHandle> | null }>();

async function appendRecord(paths: HomePaths, agent: string, line: GroupRecord | GoneLine): Promise<void> {
  const file = paths.processRegistry(agent);
  const claim = claimFiles.get(file);
  if (!claim) return appendJsonLine(file, line, { sync: false });
  const opening = (claim.handle ??= openForAppend(file));
  opening.catch(() => {
    if (claim.handle === opening) claim.handle = null; // the next record tries again
  });
  try {
    const handle = await opening;
    if ((await handle.stat()).nlink === 0) {
      // Replaced under its name since the claim opened it (another daemon's claim rewrote it after this
      // lease lapsed): the record goes to the file the name is now, and so do the next ones.
      if (claim.handle === opening) claim.handle = null;
      await handle.close().catch(() => undefined);
      return await appendJsonLine(file, line, { sync: false });
    }
    await appendThrough(handle, JSON.stringify(line), { sync: false });
  } catch (err) {
    if (claimFiles.get(file) === claim && claim.handle === opening) throw err;
    // The claim ended, or its handle was found replaced, while this record was on its way.
    await appendJsonLine(file, line, { sync: false });
  }
}

/** The groups recorded and not said gone, by pgid, from the file's lines. Pure. */
export function liveRecords(lines: unknown[]): GroupRecord[] {
  const live = new Map<number, GroupRecord>();
  for (const line of lines) {
    const gone = (line as Partial<GoneLine> | null)?.gone;
    if (typeof gone === 'number') live.delete(gone);
    else if (isRecord(line)) live.set(line.pgid, line);
  }
  return [...live.values()];
}

/** The groups recorded for `agent` and not said gone. */
export async function readLiveGroups(paths: HomePaths, agent: string): Promise<GroupRecord[]> {
  return liveRecords(await readJsonLines(paths.processRegistry(agent)));
}

/** Agents whose former per-group files this process has looked at. */
const legacyChecked = new Set<string>();

/** The registry file of one claim: its records go through one handle until `close`. */
export interface ClaimRegistry {
  /** The claim is over: later records open the file by name. Never throws. */
  close(): Promise<void>;
}

/**
 * Kill the groups a dead daemon on this host left behind for `agent`, forget
 * the dead ones, and keep the file open for the claim's own records: it is
 * read, emptied (ftruncate) and appended to through one handle, opened once
 * per claim instead of once for the read, once for the truncation and once
 * per record. The caller holds the agent lock until it has closed what this
 * returns.
 */
export async function openClaimRegistry(paths: HomePaths, agent: string, log: Logger): Promise<ClaimRegistry> {
  const key = paths.stateDir(agent);
  if (!legacyChecked.has(key)) {
    legacyChecked.add(key);
    await killLegacyGroups(paths, agent, log);
  }
  const file = paths.processRegistry(agent);
  const handle = await openExisting(file);
  const claim = { handle: handle ? Promise.resolve(handle) : null };
  const close = async () => {
    if (claimFiles.get(file) === claim) claimFiles.delete(file);
    if (claim.handle) await (await claim.handle.catch(() => null))?.close().catch(() => undefined);
  };
  try {
    if (handle && !(await settleRecords(handle, file, log))) {
      await handle.close(); // the file was replaced: its records go to the new one, opened by name
      claim.handle = null;
    }
  } catch (err) {
    await close();
    throw err;
  }
  claimFiles.set(file, claim);
  return { close };
}

/** Opened for reading and appending, or null when missing. O_NONBLOCK: a FIFO put there must not hold the claim. */
async function openExisting(file: string): Promise<fs.FileHandle | null> {
  try {
    return await fs.open(file, constants.O_RDWR | constants.O_APPEND | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Deal with every record of the open file; false when the records kept were written to a new file in its place. */
async function settleRecords(handle: fs.FileHandle, file: string, log: Logger): Promise<boolean> {
  const bytes = await readOpened(handle, file);
  if (bytes.length === 0) return true;
  const kept: GroupRecord[] = [];
  for (const record of liveRecords(parseJsonLines(bytes.toString('utf8')))) {
    if ((await settleGroup(record, log)) === 'keep') kept.push(record);
  }
  // Every record dealt with: the file starts over (a crash before this only repeats the checks above).
  if (kept.length === 0) {
    await handle.truncate(0);
    return true;
  }
  await writeFileDurable(file, kept.map((r) => JSON.stringify(r) + '\n').join(''));
  return false;
}

/** Kill one recorded group if a dead daemon on this host left it running; 'keep' when it is not ours to decide. */
async function settleGroup(record: GroupRecord, log: Logger): Promise<GroupAction> {
  const ticks = await readStartTicks(record.pgid);
  const action = orphanAction(record, { host: hostId(), myPid: process.pid, daemonAlive: pidAlive, startTicks: () => ticks });
  if (action === 'kill') {
    killGroup(record.pgid, 'SIGKILL');
    log.warn({ pgid: record.pgid, kind: record.kind, run_id: record.run_id }, 'killed a process group a stopped daemon left behind');
  }
  return action;
}

/** state/<agent>/pids/<pgid>.json, one file per group, as daemons before pids.jsonl wrote them. */
async function killLegacyGroups(paths: HomePaths, agent: string, log: Logger): Promise<void> {
  const dir = paths.pidsDir(agent);
  for (const name of await listDir(dir)) {
    if (!/^\d+\.json$/.test(name)) continue;
    const record = parseJson(await readIfExists(path.join(dir, name))); // one indented JSON document, as writeJsonAtomic wrote it
    if (isRecord(record) && (await settleGroup(record, log)) === 'keep') continue;
    await removeDurable(path.join(dir, name));
  }
}

function parseJson(bytes: Buffer | null): unknown {
  try {
    return bytes ? (JSON.parse(bytes.toString('utf8')) as unknown) : null;
  } catch {
    return null;
  }
}

function isRecord(value: unknown): value is GroupRecord {
  const r = value as Partial<GroupRecord> | null;
  return r !== null && typeof r === 'object' && Number.isInteger(r.pgid) && r.pgid! > 1 && typeof r.host === 'string' && Number.isInteger(r.daemon_pid);
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
